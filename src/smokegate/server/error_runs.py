"""Runs that could not start (no HelmRelease, a suite error, Flux reporting a failure, the
cluster unreachable) recorded as a run with verdict ``error`` and one ``setup`` check saying
why, so the dashboard and API show them next to the other runs."""

from __future__ import annotations

import time
import uuid

from smokegate.store.base import Job, NewRun, Verdict


def error_run(job: Job, message: str, started: float) -> NewRun:
    """A run that could not start, as a report with one ``setup`` check that says why."""
    from smokegate.core.results import CheckResult, RunResult, Status

    finished = time.time()
    result = CheckResult(
        id="smokegate/setup",
        name="setup",
        suite="smokegate",
        kind="setup",
        status=Status.ERROR,
        source="smokegate serve",
        started_at=started,
        duration=finished - started,
        message=message,
        error_kind="config",
    )
    run = RunResult(
        run_id=uuid.uuid4().hex[:12],
        started_at=started,
        finished_at=finished,
        results=[result],
        context={"trigger": job.trigger, "jobId": job.id, "release": {"revision": job.revision}},
    )
    return NewRun(
        id=run.run_id,
        release=job.release,
        revision=job.revision,
        trigger=job.trigger,
        verdict=Verdict.ERROR,
        started_at=started,
        finished_at=finished,
        counts=run.counts(),
        report=run.to_dict(),
        message=message[:2000],
    )


def describe_error(exc: BaseException) -> str:
    problems = getattr(exc, "problems", None)
    if problems:
        return "; ".join(str(p) for p in problems)
    from smokegate.core.errors import SmokegateError

    return (
        str(exc)
        if isinstance(exc, SmokegateError)
        else f"internal error: {type(exc).__name__}: {exc}"
    )
