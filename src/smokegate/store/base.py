"""The history store's one interface: a durable job queue (triggers) and the runs' history.

Every trigger (Flux webhook, watch, schedule, manual, Flagger) becomes a *job*, deduplicated on
``(release, revision, trigger, nonce)`` by a unique constraint, so a revision is tested once per
trigger however many replicas receive the same event; ``nonce`` is empty except for explicit
re-runs (a fresh id) and schedules (the time slot). Workers *claim* jobs atomically (several
replicas may share one store), renew their lease while they run, and *finish* them with a run:
the JSON report (``RunResult.to_dict()``, every check with its evidence and attempts).

``release`` is ``NAMESPACE/NAME`` of the HelmRelease (``schedule/NAME`` for a schedule that is
bound to no release).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


class Verdict(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    """Nothing could be tested: release not found, suite error, cluster unreachable…"""


@dataclass(slots=True)
class Job:
    id: int
    release: str
    revision: str
    trigger: str
    nonce: str
    state: JobState
    created_at: float
    attempts: int = 0
    payload: dict[str, Any] = field(default_factory=dict)
    """What the trigger said (event reason, Flagger checksum, requested suites…)."""
    claimed_by: str | None = None
    lease_until: float | None = None
    run_id: str | None = None

    @property
    def namespace(self) -> str:
        return self.release.partition("/")[0]

    @property
    def name(self) -> str:
        return self.release.partition("/")[2]


@dataclass(slots=True)
class Enqueued:
    job_id: int
    created: bool
    """False: the same (release, revision, trigger, nonce) was already queued or done."""
    state: JobState
    run_id: str | None = None


@dataclass(slots=True)
class RunSummary:
    """A run without its report: what lists and the release board need."""

    id: str
    job_id: int | None
    release: str
    revision: str
    trigger: str
    verdict: Verdict
    started_at: float
    finished_at: float
    counts: dict[str, int]
    message: str = ""

    @property
    def duration(self) -> float:
        return max(0.0, self.finished_at - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "jobId": self.job_id,
            "release": self.release,
            "revision": self.revision,
            "trigger": self.trigger,
            "verdict": self.verdict.value,
            "passed": self.verdict is Verdict.PASSED,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "duration": round(self.duration, 3),
            "counts": self.counts,
            "message": self.message,
        }


@dataclass(slots=True)
class RunRecord:
    summary: RunSummary
    report: dict[str, Any]
    """The JSON report (schema smokegate.io/report/v1)."""


@dataclass(slots=True)
class NewRun:
    """What a worker hands the store when a job is done."""

    id: str
    release: str
    revision: str
    trigger: str
    verdict: Verdict
    started_at: float
    finished_at: float
    counts: Mapping[str, int]
    report: dict[str, Any]
    message: str = ""


class Store(Protocol):
    """Implemented by ``smokegate.store.sql.SqlStore`` (SQLite and PostgreSQL)."""

    async def open(self) -> None:
        """Connect and create or migrate the schema (safe when replicas start together)."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the store cannot be reached (``/readyz``)."""

    async def enqueue(
        self,
        release: str,
        revision: str,
        trigger: str,
        *,
        nonce: str = "",
        payload: Mapping[str, Any] | None = None,
    ) -> Enqueued:
        """Queue a job unless the same one exists; durable once this returns."""

    async def claim(self, worker: str, lease: float) -> Job | None:
        """Take the oldest runnable job (queued, or running with an expired lease: its worker
        died) for ``lease`` seconds; None when there is nothing to do. Atomic across replicas."""

    async def renew(self, job_id: int, worker: str, lease: float) -> bool:
        """Extend the lease; False if the job is no longer ours (it expired and was re-claimed)."""

    async def requeue(self, job_id: int, worker: str) -> None:
        """Give a claimed job back (graceful shutdown), without counting the attempt."""

    async def finish(self, job_id: int | None, worker: str, run: NewRun | None) -> bool:
        """Save the run and mark the job done, in one transaction. False (and nothing saved)
        when the job is no longer ours. ``run`` None: nothing ran (no suites map to it)."""

    async def get_job(self, job_id: int) -> Job | None: ...

    async def queue_depth(self) -> dict[str, int]:
        """Jobs per state (``queued``, ``running``)."""

    async def list_releases(self) -> list[RunSummary]:
        """The latest run of every (release, revision), newest first within each release."""

    async def list_runs(
        self, release: str | None = None, *, revision: str | None = None, limit: int = 50
    ) -> list[RunSummary]:
        """Runs, newest first."""

    async def get_run(self, run_id: str) -> RunRecord | None: ...

    async def prune(
        self, *, max_age: float | None, max_runs_per_release: int | None, now: float | None = None
    ) -> int:
        """Retention: delete old runs (and finished jobs); returns how many runs went."""


def verdict_of(report: Mapping[str, Any]) -> Verdict:
    return Verdict.PASSED if report.get("ok") else Verdict.FAILED


def run_from_report(report: Mapping[str, Any]) -> Any:
    """The stored JSON report back as a ``RunResult`` (for the JUnit/HTML renderers)."""
    from smokegate.core.cases import cases_from
    from smokegate.core.outcome import Mismatch
    from smokegate.core.results import Attempt, CheckResult, RunResult, Status, SuiteInfo

    run = RunResult(
        run_id=str(report.get("runId", "")),
        started_at=float(report.get("startedAt") or 0.0),
        finished_at=float(report.get("finishedAt") or 0.0),
        suites=[
            SuiteInfo(s.get("name", ""), s.get("file", ""), s.get("release"))
            for s in report.get("suites") or []
        ],
        interrupted=bool(report.get("interrupted")),
        context=dict(report.get("context") or {}),
    )
    for r in report.get("results") or []:
        run.results.append(
            CheckResult(
                id=r.get("id", ""),
                name=r.get("name", ""),
                suite=r.get("suite", ""),
                kind=r.get("kind", ""),
                status=Status(r.get("status", "error")),
                tags=tuple(r.get("tags") or ()),
                source=r.get("source") or "",
                description=r.get("description"),
                attempts=[
                    Attempt(
                        a.get("number", i + 1),
                        float(a.get("startedAt") or 0.0),
                        float(a.get("duration") or 0.0),
                        bool(a.get("ok")),
                        a.get("message") or "",
                        a.get("errorKind"),
                    )
                    for i, a in enumerate(r.get("attempts") or [])
                ],
                started_at=float(r.get("startedAt") or 0.0),
                duration=float(r.get("duration") or 0.0),
                message=r.get("message") or "",
                error_kind=r.get("errorKind"),
                evidence=[
                    Mismatch(m.get("subject", ""), m.get("expected", ""), m.get("actual", ""))
                    for m in r.get("evidence") or []
                ],
                snippet=r.get("snippet"),
                details=dict(r.get("details") or {}),
                log=r.get("log"),
                cases=cases_from(r.get("cases")),
            )
        )
    return run
