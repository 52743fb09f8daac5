"""Prometheus metrics (``/metrics``).

Per check and per release the gauges describe the *latest* run of each release, read from the
store at scrape time (cached briefly), so every replica exports the same, complete picture
whichever replica ran what. Counters (``smokegate_runs_total``, webhooks) are per process, as
Prometheus counters always are: ``sum()`` over replicas.

Label sets are bounded by what is deployed and configured: ``release`` (namespace/name),
``suite`` and ``check``. There is deliberately no ``revision`` label: each new revision would
start a new series and the old ones would linger until they go stale.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from smokegate.store.base import Store, Verdict

if TYPE_CHECKING:
    from smokegate.server.config_sections import Schedule

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """A registry per app (tests run several apps in one process)."""

    def __init__(self, *, cache_seconds: float = 5.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.check_success = Gauge(
            "smokegate_check_success",
            "1 if the check passed in the release's latest run, else 0",
            ["release", "suite", "check"],
            registry=r,
        )
        self.check_duration = Gauge(
            "smokegate_check_duration_seconds",
            "How long the check took in the release's latest run",
            ["release", "suite", "check"],
            registry=r,
        )
        self.release_verdict = Gauge(
            "smokegate_release_verdict",
            "1 if the release's latest run passed, 0 if it failed or errored",
            ["release"],
            registry=r,
        )
        self.release_last_run = Gauge(
            "smokegate_release_last_run_timestamp_seconds",
            "When the release's latest run finished (alert on staleness)",
            ["release"],
            registry=r,
        )
        self.runs_total = Counter(
            "smokegate_runs",
            "Runs finished by this replica",
            ["trigger", "outcome"],
            registry=r,
        )
        self.webhooks_total = Counter(
            "smokegate_webhooks",
            "Flux webhook requests by outcome (queued, duplicate, ignored, rejected)",
            ["outcome"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "smokegate_queue_depth",
            "Jobs waiting or running, in the shared store",
            ["state"],
            registry=r,
        )
        self.schedule_interval = Gauge(
            "smokegate_schedule_interval_seconds",
            "A schedule's interval (every:), so alerts can tell a stale release from a quiet one",
            ["schedule", "release"],
            registry=r,
        )
        self._cache_seconds = cache_seconds
        self._refreshed = 0.0

    def describe_schedules(self, schedules: Iterable[Schedule]) -> None:
        """Export each schedule's interval, labelled with the release its runs are recorded
        under (the one it names, else ``schedule/NAME``, as the scheduler queues them)."""
        for s in schedules:
            release = s.release or f"schedule/{s.name}"
            self.schedule_interval.labels(schedule=s.name, release=release).set(s.every)

    def run_finished(self, trigger: str, verdict: Verdict) -> None:
        self.runs_total.labels(trigger=trigger, outcome=verdict.value).inc()

    async def render(self, store: Store) -> bytes:
        """The exposition text, with store-derived gauges refreshed."""
        # Queue depth is one cheap query: always fresh. The per-release gauges read each
        # release's latest report, so they are cached for a few seconds.
        for state, n in (await store.queue_depth()).items():
            self.queue_depth.labels(state=state).set(n)
        now = time.monotonic()
        if now - self._refreshed >= self._cache_seconds:
            await self._refresh(store)
            self._refreshed = now
        return generate_latest(self.registry)

    async def _refresh(self, store: Store) -> None:
        latest: dict[str, Any] = {}
        for summary in await store.list_releases():
            have = latest.get(summary.release)
            if have is None or summary.finished_at > have.finished_at:
                latest[summary.release] = summary
        # Rebuild, so releases and checks that disappeared stop being exported.
        self.check_success.clear()
        self.check_duration.clear()
        self.release_verdict.clear()
        self.release_last_run.clear()
        for release, summary in latest.items():
            self.release_verdict.labels(release=release).set(
                1 if summary.verdict is Verdict.PASSED else 0
            )
            self.release_last_run.labels(release=release).set(summary.finished_at)
            record = await store.get_run(summary.id)
            for result in (record.report.get("results") if record else None) or []:
                if result.get("status") == "skipped":
                    continue
                labels = {
                    "release": release,
                    "suite": str(result.get("suite", "")),
                    "check": str(result.get("name", "")),
                }
                self.check_success.labels(**labels).set(
                    1 if result.get("status") == "passed" else 0
                )
                self.check_duration.labels(**labels).set(float(result.get("duration") or 0.0))
