"""The store's schema (the ``jobs`` and ``runs`` tables, one ``MetaData`` for every dialect) and
the mapping between rows and ``store.base``'s records."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import (
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from smokegate.store.base import Job, JobState, NewRun, RunSummary, Verdict

metadata = MetaData()

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("release", String(320), nullable=False),
    Column("revision", String(255), nullable=False),
    Column("trigger", String(32), nullable=False),
    Column("nonce", String(64), nullable=False, server_default=""),
    Column("state", String(16), nullable=False),
    Column("payload", Text, nullable=False, server_default="{}"),
    Column("created_at", Double, nullable=False),
    Column("available_at", Double, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("claimed_by", String(255)),
    Column("lease_until", Double),
    Column("run_id", String(64)),
    UniqueConstraint("release", "revision", "trigger", "nonce", name="uq_jobs_trigger"),
    Index("ix_jobs_state_id", "state", "id"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("job_id", Integer),
    Column("release", String(320), nullable=False),
    Column("revision", String(255), nullable=False),
    Column("trigger", String(32), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("started_at", Double, nullable=False),
    Column("finished_at", Double, nullable=False),
    Column("passed", Integer, nullable=False, server_default="0"),
    Column("failed", Integer, nullable=False, server_default="0"),
    Column("errors", Integer, nullable=False, server_default="0"),
    Column("skipped", Integer, nullable=False, server_default="0"),
    Column("total", Integer, nullable=False, server_default="0"),
    Column("message", Text, nullable=False, server_default=""),
    Column("report", Text, nullable=False),
    Index("ix_runs_release_finished", "release", "finished_at"),
    Index("ix_runs_finished", "finished_at"),
)

SUMMARY_COLUMNS = [c for c in runs.c if c.name != "report"]


def dump_json(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def run_row(job_id: int | None, run: NewRun) -> dict[str, Any]:
    counts = run.counts
    return {
        "id": run.id,
        "job_id": job_id,
        "release": run.release,
        "revision": run.revision,
        "trigger": run.trigger,
        "verdict": run.verdict.value,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "passed": int(counts.get("passed", 0)),
        "failed": int(counts.get("failed", 0)),
        "errors": int(counts.get("error", 0)),
        "skipped": int(counts.get("skipped", 0)),
        "total": int(counts.get("total", 0)),
        "message": run.message,
        "report": dump_json(run.report),
    }


def job_from_row(row: Any) -> Job:
    return Job(
        id=int(row.id),
        release=row.release,
        revision=row.revision,
        trigger=row.trigger,
        nonce=row.nonce,
        state=JobState(row.state),
        created_at=row.created_at,
        attempts=int(row.attempts),
        payload=orjson.loads(row.payload or "{}"),
        claimed_by=row.claimed_by,
        lease_until=row.lease_until,
        run_id=row.run_id,
    )


def summary_from_row(row: Any) -> RunSummary:
    return RunSummary(
        id=row.id,
        job_id=row.job_id,
        release=row.release,
        revision=row.revision,
        trigger=row.trigger,
        verdict=Verdict(row.verdict),
        started_at=row.started_at,
        finished_at=row.finished_at,
        counts={
            "passed": row.passed,
            "failed": row.failed,
            "error": row.errors,
            "skipped": row.skipped,
            "total": row.total,
        },
        message=row.message,
    )
