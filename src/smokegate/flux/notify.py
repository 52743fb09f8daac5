"""Send a gate result to Flux's notification-controller, in Flux's own event format, so existing
Alerts and Providers forward it (Slack, Teams, generic webhooks, commit statuses…) unchanged.

The body is a serialized ``eventv1.Event`` (``fluxcd/pkg`` ``apis/event/v1beta1``), the same
thing helm-controller POSTs::

    {"involvedObject": {"kind": "HelmRelease", "namespace": "apps", "name": "podinfo",
                        "uid": "…", "apiVersion": "helm.toolkit.fluxcd.io/v2",
                        "resourceVersion": "…"},
     "severity": "info",                      # info | error
     "timestamp": "2024-05-07T05:02:34Z",     # RFC 3339, seconds
     "message": "5 passed, 0 failed",
     "reason": "SmokeTestSucceeded",
     "metadata": {"revision": "6.6.1", "summary": "…",
                  "helm.toolkit.fluxcd.io/revision": "6.6.1",
                  "helm.toolkit.fluxcd.io/summary": "…"},
     "reportingController": "smokegate",
     "reportingInstance": "<hostname>"}

Why metadata carries each key twice: the notification-controller keeps only keys prefixed with
the involved object's API group and strips the prefix before forwarding (v1.5+; earlier
versions forwarded them prefixed), so the prefixed keys are the ones Alerts forward, as
``revision``/``summary``. The plain keys make the same body read right when ``--notify-flux``
points straight at a generic webhook receiver. The controller drops unprefixed keys, so
nothing is duplicated downstream. Its rate limiter keys on object, message and revision: a
re-run with the very same result within its interval (default 5m) is answered 429, reported
here as a warning.
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from smokegate.flux.helmrelease import API_GROUP, ReleaseFacts

REPORTING_CONTROLLER = "smokegate"
REASON_SUCCEEDED = "SmokeTestSucceeded"
REASON_FAILED = "SmokeTestFailed"
MAX_MESSAGE = 39000  # eventv1.Event message limit


@dataclass(frozen=True, slots=True)
class GateOutcome:
    """The result of one gate run, as reported to Kubernetes and Flux."""

    ok: bool
    passed: int
    failed: int
    failed_names: tuple[str, ...]
    total: int
    duration: float

    @property
    def reason(self) -> str:
        return REASON_SUCCEEDED if self.ok else REASON_FAILED

    def message(self, limit: int = MAX_MESSAGE) -> str:
        """``N passed, M failed: <failed names>``."""
        text = f"{self.passed} passed, {self.failed} failed"
        if not self.failed_names:
            return text
        names = list(self.failed_names)
        shown = text + ": " + ", ".join(names)
        while len(shown) > limit and names:
            names.pop()
            shown = f"{text}: {', '.join(names)}, … (+{len(self.failed_names) - len(names)} more)"
        return shown[:limit]

    def summary(self, facts: ReleaseFacts) -> str:
        verdict = "passed" if self.ok else "failed"
        return (
            f"smoke tests {verdict} for {facts.name} {facts.revision}: "
            f"{self.passed}/{self.total} checks passed in {self.duration:.1f}s"
        )


def outcome_of(run: Any, redactor: Any = None) -> GateOutcome:
    """From a ``RunResult``: errors count as failures; skipped checks as neither. Check ids are
    scrubbed with the run's ``redactor`` (a check name may be built from a Secret value)."""
    from smokegate.core.results import Status

    scrub = redactor.redact if redactor is not None else (lambda text: text)
    bad = [r for r in run.results if r.status in (Status.FAILED, Status.ERROR)]
    passed = sum(1 for r in run.results if r.status is Status.PASSED)
    return GateOutcome(
        ok=bool(run.ok),
        passed=passed,
        failed=len(bad),
        failed_names=tuple(scrub(r.id) for r in bad),
        total=len(run.results),
        duration=run.duration,
    )


def timestamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_event(
    facts: ReleaseFacts, outcome: GateOutcome, *, now: datetime | None = None
) -> dict[str, Any]:
    """The notification-controller event body (see the module docstring)."""
    prefix = f"{facts.api_version.rpartition('/')[0] or API_GROUP}/"
    summary = outcome.summary(facts)
    metadata = {"revision": facts.revision, "summary": summary}
    metadata |= {prefix + k: v for k, v in list(metadata.items())}
    return {
        "involvedObject": {
            "kind": "HelmRelease",
            "namespace": facts.helm_release_namespace,
            "name": facts.helm_release,
            "uid": facts.uid,
            "apiVersion": facts.api_version,
            "resourceVersion": facts.resource_version,
        },
        "severity": "info" if outcome.ok else "error",
        "timestamp": timestamp(now),
        "message": outcome.message(),
        "reason": outcome.reason,
        "metadata": metadata,
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": socket.gethostname(),
    }


class NotifyError(Exception):
    pass


async def post_event(
    url: str, event: dict[str, Any], *, attempts: int = 3, timeout: float = 10.0
) -> str:
    """POST ``event`` to the notification-controller. Returns a short status line; raises
    ``NotifyError`` when it could not be delivered. Retries connection errors and 5xx (the
    controller may be restarting), as Flux's own clients do, but not 4xx."""
    from smokegate.httpclient import HttpClient, HttpError

    body = json.dumps(event, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        # What Flux controllers send (fluxcd/pkg runtime/events): the reporting component.
        "gotk-component": REPORTING_CONTROLLER,
    }
    last = ""
    async with HttpClient(max_connections_per_origin=1) as http:
        for attempt in range(1, attempts + 1):
            try:
                resp = await http.request("POST", url, headers=headers, body=body, timeout=timeout)
            except (HttpError, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if 200 <= resp.status < 300:
                    return f"HTTP {resp.status}"
                if resp.status == 429:
                    return "HTTP 429: rate-limited as a duplicate of a recent event (not resent)"
                last = f"HTTP {resp.status} {resp.text()[:200]}".strip()
                if resp.status < 500:
                    break
            if attempt < attempts:
                await asyncio.sleep(min(2.0 * attempt, 5.0))
    raise NotifyError(f"could not notify Flux at {url}: {last}")
