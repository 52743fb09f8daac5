"""What a HelmRelease's status says, read the way Flux helm-controller (API v2) writes it.

* ``evaluate``: reconciled and ready (at a revision), still in progress (and why), or failed
  for good (Flux's reason and message); ``readiness``: the same as a ``kube.readiness`` rule.
* ``release_facts``: the facts a suite sees as ``${release.*}``.
* ``helm_test_results``: Flux's own Helm test results (``status.history[0].testHooks``) as
  report entries.
* ``parse_target``: how every command names a HelmRelease (``hr/NAME``, ``NS/NAME`` …).

Semantics (helm-controller v1.x, ``api/v2``): ``status.observedGeneration`` is the last
generation that ended ready or stalled; each condition carries its own ``observedGeneration``
too. ``Ready`` is ``Unknown`` while an install/upgrade runs and ``Reconciling=True`` is present
for as long as work (Helm tests included) is in progress. ``Stalled=True`` (reason
``RetriesExceeded``) means Flux gave up. The deployed chart version is
``status.history[0].chartVersion`` (newest snapshot first), else ``lastAttemptedRevision``,
as ``flux get hr`` shows it. A ``metadata.deletionTimestamp`` makes it Terminating (kstatus),
never ready, before any condition is read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from smokegate.core.errors import UsageError
from smokegate.helm.release import release_ref
from smokegate.kube.conditions import conditions, describe_condition
from smokegate.kube.readiness import Readiness, not_ready

API_GROUP = "helm.toolkit.fluxcd.io"
TARGET_PREFIXES = (f"helmreleases.{API_GROUP}/", "helmrelease/", "helmreleases/", "hr/")
"""How a target names the HelmRelease kind (case-insensitive), as kubectl accepts it."""

# Ready=False reasons after which this revision will not become ready by waiting: the
# install/upgrade failed, or Flux already remediated it away. (helm-controller may retry an
# UpgradeFailed later when remediation retries remain, but the attempt at *this* revision
# failed, and that is what a gate reports.) ``RetriesExceeded`` is the reason of ``Stalled``.
# Not terminal on purpose: Progressing, DependencyNotReady, ArtifactFailed (the chart is often
# simply not fetched yet right after a merge), and TestFailed (the release is deployed; the gate
# reports the failed Helm tests as failed checks instead).
TERMINAL_REASONS = frozenset(
    {
        "InstallFailed",
        "UpgradeFailed",
        "RollbackSucceeded",
        "RollbackFailed",
        "UninstallSucceeded",
        "UninstallFailed",
        "RetriesExceeded",
    }
)


@dataclass(slots=True)
class ReleaseState:
    ready: bool
    summary: str
    """Ready: what Flux said. Not ready: why (the current Ready message while it reconciles)."""
    terminal: bool = False
    reason: str | None = None
    message: str | None = None


def _generation(hr: dict[str, Any]) -> int | None:
    return (hr.get("metadata") or {}).get("generation")


def _current(cond: dict[str, Any], hr: dict[str, Any]) -> bool:
    """Does this condition speak about the latest spec (not a previous generation's)?"""
    generation = _generation(hr)
    if generation is None:
        return True
    cond_gen = cond.get("observedGeneration")
    if cond_gen is not None:
        return cond_gen >= generation
    return (hr.get("status") or {}).get("observedGeneration", -1) >= generation


def current_revision(hr: dict[str, Any]) -> str | None:
    """The chart version Flux has released (``flux get hr``'s Revision column)."""
    status = hr.get("status") or {}
    history = status.get("history") or []
    if history and isinstance(history[0], dict) and history[0].get("chartVersion"):
        return str(history[0]["chartVersion"])
    return status.get("lastAttemptedRevision") or None


def revision_matches(actual: str | None, wanted: str) -> bool:
    """``6.6.1`` matches ``6.6.1`` and ``6.6.1+0cc9a8446c95`` (Flux appends the OCI digest or a
    source checksum as build metadata)."""
    if not actual:
        return False
    return actual == wanted or actual.split("+", 1)[0] == wanted.split("+", 1)[0] == wanted


def evaluate(
    hr: dict[str, Any], revision: str | None = None, *, accept_test_failure: bool = False
) -> ReleaseState:
    """Where a HelmRelease stands. ``revision``: also require this chart version.
    ``accept_test_failure``: a release that deployed but whose Helm tests failed counts as
    reconciled (the gate reports the tests itself)."""
    meta, spec, status = hr.get("metadata") or {}, hr.get("spec") or {}, hr.get("status") or {}
    if meta.get("deletionTimestamp"):
        # kstatus checkGenericProperties: Terminating before any other rule, whatever Ready
        # says. Not terminal: Flux may create it again (a Kustomization re-applying it).
        summary = (
            "Terminating: scheduled for deletion "
            f"(metadata.deletionTimestamp {meta['deletionTimestamp']})"
        )
        return ReleaseState(False, summary, False, "Terminating", None)
    conds = conditions(hr)
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    ready = conds.get("Ready")
    stalled = conds.get("Stalled")
    reconciling = conds.get("Reconciling")
    attempted = status.get("lastAttemptedRevision")
    revision_is_attempted = (
        revision is None or not attempted or revision_matches(attempted, revision)
    )

    if (
        stalled
        and stalled.get("status") == "True"
        and _current(stalled, hr)
        and revision_is_attempted
    ):
        text = f"stalled: {describe_condition(stalled)}"
        if ready and ready.get("status") == "False":
            text += f"; {describe_condition(ready)}"
        return ReleaseState(False, text, True, stalled.get("reason"), stalled.get("message"))
    if (
        ready
        and ready.get("status") == "False"
        and ready.get("reason") in TERMINAL_REASONS
        and _current(ready, hr)
        and revision_is_attempted
    ):
        return ReleaseState(
            False, describe_condition(ready), True, ready.get("reason"), ready.get("message")
        )

    waiting = _waiting_for(hr, conds, revision, accept_test_failure)
    if waiting is None:
        assert ready is not None
        return ReleaseState(
            True, describe_condition(ready), False, ready.get("reason"), ready.get("message")
        )
    if spec.get("suspend") and (observed is None or generation is None or observed < generation):
        summary = f"suspended (spec.suspend: true) while {waiting}: Flux will not reconcile it"
        return ReleaseState(False, summary, True, "Suspended", None)
    if reconciling and reconciling.get("status") == "True":
        waiting = f"{waiting}; {describe_condition(reconciling)}"
    return ReleaseState(False, waiting)


def readiness(hr: dict[str, Any]) -> Readiness:
    """``evaluate`` as a ``kube.readiness`` rule: what a ``kube`` check with ``ready: true`` on a
    HelmRelease reports (Helm test failures count as not ready there)."""
    state = evaluate(hr)
    if state.ready:
        return Readiness(True, state.summary)
    return not_ready([state.summary], terminal=state.terminal)


READINESS_RULES = {f"{API_GROUP}/HelmRelease": readiness}
"""Flux's kinds for ``kube.readiness.evaluate(obj, rules=...)``."""


def _waiting_for(
    hr: dict[str, Any],
    conds: dict[str, dict[str, Any]],
    revision: str | None,
    accept_test_failure: bool,
) -> str | None:
    """Why the release is not (yet) where the gate wants it, or None when it is."""
    spec, status = hr.get("spec") or {}, hr.get("status") or {}
    generation = _generation(hr)
    observed = status.get("observedGeneration")
    ready = conds.get("Ready")
    if not status:
        return "no status yet: helm-controller has not reconciled it"
    if generation is not None and (observed is None or observed < generation):
        what = f"generation {generation} not reconciled yet (observed {observed})"
        return f"{what}; {describe_condition(ready)}" if ready else what
    if ready is None:
        return "no Ready condition yet"
    deployed_but_tests_failed = (
        accept_test_failure
        and ready.get("status") == "False"
        and ready.get("reason") == "TestFailed"
        and conds.get("Released", {}).get("status") == "True"
    )
    if ready.get("status") != "True" and not deployed_but_tests_failed:
        return describe_condition(ready)
    if not _current(ready, hr):
        return f"Ready condition is for an older generation; {describe_condition(ready)}"
    reconciling = conds.get("Reconciling")
    if reconciling and reconciling.get("status") == "True":
        return "still reconciling"
    if revision is not None:
        actual = current_revision(hr)
        if not revision_matches(actual, revision):
            return f"waiting for revision {revision} (released: {actual or 'none'})"
    if (spec.get("test") or {}).get("enable") and "TestSuccess" not in conds:
        return "waiting for Flux's Helm tests (spec.test.enable) to finish"
    return None


# --- naming a HelmRelease -------------------------------------------------------------------


def parse_target(target: str, namespace: str | None) -> tuple[str | None, str]:
    """A HelmRelease as the commands take it -> (namespace or None, name).

    ``helmrelease/NAME``, ``hr/NAME`` (also ``helmreleases/NAME`` and
    ``helmreleases.helm.toolkit.fluxcd.io/NAME``) and ``NAME`` are in ``namespace`` (``-n``;
    None: the caller's default); ``NS/NAME`` and ``hr/NS/NAME`` are in ``NS``, which must then
    agree with ``-n``. Anything else is a ``UsageError``."""
    text = target.strip()
    for prefix in TARGET_PREFIXES:
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
            break
    else:
        kind, sep, _ = text.partition("/")
        if sep and "." in kind:
            raise UsageError(
                f"target {target!r}: only HelmReleases are supported (helmrelease/NAME)"
            )
    parts = text.split("/")
    if len(parts) == 1 and parts[0]:
        return namespace, parts[0]
    if len(parts) == 2 and all(parts):
        ns, name = parts
        if namespace and namespace != ns:
            raise UsageError(f"target {target!r} is in namespace {ns!r} but -n says {namespace!r}")
        return ns, name
    raise UsageError(f"target {target!r}: use helmrelease/NAME, hr/NAME or NAMESPACE/NAME")


# --- release facts --------------------------------------------------------------------------


@dataclass(slots=True)
class ReleaseFacts:
    helm_release: str
    """The HelmRelease object's name and namespace."""
    helm_release_namespace: str
    name: str
    """The Helm release name (``spec.releaseName`` or derived, as helm-controller does)."""
    namespace: str
    """Where the release's workloads live (``spec.targetNamespace`` or the HelmRelease's)."""
    revision: str
    """Chart version released (``status.history[0].chartVersion``)."""
    app_version: str
    digest: str
    chart: str
    version: int | None
    """Helm's own release number (``sh.helm.release.v1.<name>.v<N>``)."""
    uid: str = ""
    resource_version: str = ""
    api_version: str = f"{API_GROUP}/v2"
    tests_enabled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def variables(self) -> dict[str, Any]:
        """``${release.*}`` for suites."""
        return {
            "release.name": self.name,
            "release.namespace": self.namespace,
            "release.revision": self.revision,
            "release.appVersion": self.app_version,
            "release.digest": self.digest,
            "release.chart": self.chart,
            "release.version": self.version if self.version is not None else "",
            "release.helmRelease": self.helm_release,
            "release.helmReleaseNamespace": self.helm_release_namespace,
        }

    def context(self) -> dict[str, Any]:
        """Run context for reports (``RunResult.context``)."""
        return {
            "helmRelease": f"{self.helm_release_namespace}/{self.helm_release}",
            "release": {
                "name": self.name,
                "namespace": self.namespace,
                "revision": self.revision,
                "appVersion": self.app_version,
                "digest": self.digest,
                "chart": self.chart,
                "version": self.version,
            },
        }


def release_facts(hr: dict[str, Any]) -> ReleaseFacts:
    meta, spec, status = hr.get("metadata") or {}, hr.get("spec") or {}, hr.get("status") or {}
    history = status.get("history") or []
    latest: dict[str, Any] = history[0] if history and isinstance(history[0], dict) else {}
    chart_spec = ((spec.get("chart") or {}).get("spec") or {}) if isinstance(spec, dict) else {}
    return ReleaseFacts(
        helm_release=meta.get("name", ""),
        helm_release_namespace=meta.get("namespace", ""),
        name=latest.get("name") or release_ref(hr).name,
        namespace=latest.get("namespace")
        or spec.get("targetNamespace")
        or meta.get("namespace", ""),
        revision=current_revision(hr) or "",
        app_version=str(latest.get("appVersion") or ""),
        digest=str(latest.get("digest") or ""),
        chart=str(latest.get("chartName") or chart_spec.get("chart") or ""),
        version=latest.get("version") if isinstance(latest.get("version"), int) else None,
        uid=meta.get("uid", ""),
        resource_version=meta.get("resourceVersion", ""),
        api_version=hr.get("apiVersion") or f"{API_GROUP}/v2",
        tests_enabled=bool((spec.get("test") or {}).get("enable")),
    )


# --- Flux's Helm test results ----------------------------------------------------------------


def _epoch(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def helm_test_results(hr: dict[str, Any], *, ignore_failures: bool = False) -> list[Any]:
    """One ``CheckResult`` (kind ``helm-test``, id ``helm-test/<hook>``) per test hook Flux ran
    for the latest release, when ``spec.test.enable``. A failed hook (or ``TestSuccess=False``)
    is a failed check unless ``ignore_failures``, which reports it as skipped, with the reason."""
    from smokegate.core.results import Attempt, CheckResult, Status

    facts = release_facts(hr)
    if not facts.tests_enabled:
        return []
    status = hr.get("status") or {}
    history = status.get("history") or []
    hooks = (
        history[0].get("testHooks") if history and isinstance(history[0], dict) else None
    ) or {}
    test_cond = conditions(hr).get("TestSuccess")
    flux_says = describe_condition(test_cond) if test_cond else ""
    hr_name = f"{facts.helm_release_namespace}/{facts.helm_release}"
    source = f"helmrelease {hr_name} status.history[0].testHooks"
    results: list[CheckResult] = []
    hook_failed = False  # before --ignore-helm-tests turns failures into skips

    def add(name: str, state: Status, message: str, started: float | None, ended: float | None,
            details: dict[str, Any]) -> None:  # fmt: skip
        nonlocal hook_failed
        hook_failed = hook_failed or state is Status.FAILED
        if state is Status.FAILED and ignore_failures:
            state, message = Status.SKIPPED, f"{message} (ignored: --ignore-helm-tests)"
        duration = max(0.0, ended - started) if started and ended else 0.0
        begun = started or time.time()
        attempts = [] if state is Status.SKIPPED else [
            Attempt(1, begun, duration, state is Status.PASSED, message)
        ]  # fmt: skip
        results.append(
            CheckResult(
                id=f"helm-test/{name}",
                name=name,
                suite="helm-test",
                kind="helm-test",
                status=state,
                source=source,
                description=f"Helm test hook run by Flux for {facts.name} {facts.revision}",
                attempts=attempts,
                started_at=begun,
                duration=duration,
                message=message,
                error_kind="expectation" if state is Status.FAILED else None,
                details=details,
            )
        )

    for name in sorted(hooks):
        hook = hooks[name] if isinstance(hooks[name], dict) else {}
        phase = hook.get("phase") or ""
        details = {k: hook[k] for k in ("phase", "lastStarted", "lastCompleted") if hook.get(k)}
        started, ended = _epoch(hook.get("lastStarted")), _epoch(hook.get("lastCompleted"))
        if phase == "Succeeded":
            add(name, Status.PASSED, "phase Succeeded", started, ended, details)
        elif phase == "Failed":
            msg = "phase Failed" + (f"; Flux: {flux_says}" if flux_says else "")
            add(name, Status.FAILED, msg, started, ended, details)
        elif not phase and not hook.get("lastStarted"):
            add(
                name,
                Status.SKIPPED,
                "not run (Helm stops at the first failed test)",
                None,
                None,
                details,
            )
        else:
            add(
                name,
                Status.FAILED,
                f"phase {phase or 'Unknown'}: did not finish",
                started,
                ended,
                details,
            )

    # Flux says the tests failed but no hook shows it (e.g. the hook list is empty): one result.
    if test_cond and test_cond.get("status") == "False" and not hook_failed:
        add("TestSuccess", Status.FAILED, flux_says, None, None, {"condition": test_cond})
    return results
