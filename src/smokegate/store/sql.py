"""``Store`` on SQLAlchemy 2 Core (async): SQLite through aiosqlite (default, a file) and
PostgreSQL through psycopg 3, one code path; the dialects differ only where they must:

* **claiming** a job: ``SELECT … FOR UPDATE SKIP LOCKED`` inside the claiming ``UPDATE`` on
  PostgreSQL, so replicas never block on or double-claim a row; on SQLite the same statement runs
  in a ``BEGIN IMMEDIATE`` transaction (SQLite has one writer at a time, and IMMEDIATE takes the
  write lock up front instead of failing to upgrade a read lock later);
* **enqueueing**: ``INSERT … ON CONFLICT DO NOTHING`` on the unique (release, revision, trigger,
  nonce) key, from each dialect's own ``insert``;
* SQLite also gets an in-process write lock (its busy handler sleeps, which is slow under a burst
  of concurrent webhooks; queueing on an asyncio lock is not), WAL (readers never wait for the
  writer) and ``synchronous=FULL`` (a job is on disk before the webhook is answered 202).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from sqlalchemy import (
    and_,
    case,
    delete,
    event,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from smokegate.store.base import (
    Enqueued,
    Job,
    JobState,
    NewRun,
    RunRecord,
    RunSummary,
)
from smokegate.store.migrations import migrate
from smokegate.store.tables import (
    SUMMARY_COLUMNS,
    dump_json,
    job_from_row,
    jobs,
    metadata,
    run_row,
    runs,
    summary_from_row,
)


def async_url(url: str) -> str:
    """``sqlite:///x.db`` -> aiosqlite, ``postgresql://`` (or ``postgres://``) -> psycopg."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"store URL {url!r}: expected sqlite:///FILE or postgresql://…")
    base = scheme.split("+", 1)[0].lower()
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if base in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    raise ValueError(f"store URL scheme {scheme!r}: use sqlite:/// or postgresql://")


def safe_url(url: str) -> str:
    """The URL with its password masked, for logs and errors."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("://", 1)[0] + "://…"


class SqlStore:
    """See the module docstring. One instance per process; safe for concurrent tasks."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = async_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        self._pool_size = pool_size
        self._engine: AsyncEngine | None = None
        # SQLite: one writer per process at a time (see the module docstring). PostgreSQL: none.
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None

    def __repr__(self) -> str:
        return f"SqlStore({safe_url(self.url)})"

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("store not opened: call open() first")
        return self._engine

    # --- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        if self._engine is not None:
            return
        if self.dialect == "sqlite":
            _check_sqlite_dir(self.url)
            engine = create_async_engine(self.url, connect_args={"timeout": 30})
            _sqlite_setup(engine)
        else:
            engine = create_async_engine(
                self.url,
                pool_size=self._pool_size,
                max_overflow=self._pool_size,
                pool_pre_ping=True,
            )
        self._engine = engine
        async with self._write() as conn:
            await migrate(conn, metadata, self.dialect)

    async def close(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: SQLite's ``BEGIN IMMEDIATE`` under the process lock; a plain
        transaction on PostgreSQL (row locks do the rest)."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.connect() as raw:
            conn = await raw.execution_options(smokegate_immediate=True)
            async with conn.begin():
                yield conn

    def _insert(self) -> Any:
        """The dialect's own ``insert`` (it has ``on_conflict_do_nothing``)."""
        from sqlalchemy.dialects import postgresql, sqlite

        return postgresql.insert if self.dialect == "postgresql" else sqlite.insert

    # --- the queue --------------------------------------------------------------------------

    async def enqueue(
        self,
        release: str,
        revision: str,
        trigger: str,
        *,
        nonce: str = "",
        payload: Mapping[str, Any] | None = None,
    ) -> Enqueued:
        now = time.time()
        values = {
            "release": release,
            "revision": revision,
            "trigger": trigger,
            "nonce": nonce,
            "state": JobState.QUEUED.value,
            "payload": dump_json(dict(payload or {})),
            "created_at": now,
            "available_at": now,
            "attempts": 0,
        }
        stmt = (
            self._insert()(jobs)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["release", "revision", "trigger", "nonce"])
            .returning(jobs.c.id)
        )
        async with self._write() as conn:
            new_id = (await conn.execute(stmt)).scalar_one_or_none()
            if new_id is not None:
                return Enqueued(int(new_id), True, JobState.QUEUED)
            row = (
                await conn.execute(
                    select(jobs.c.id, jobs.c.state, jobs.c.run_id).where(
                        jobs.c.release == release,
                        jobs.c.revision == revision,
                        jobs.c.trigger == trigger,
                        jobs.c.nonce == nonce,
                    )
                )
            ).one()
        return Enqueued(int(row.id), False, JobState(row.state), row.run_id)

    async def claim(self, worker: str, lease: float) -> Job | None:
        now = time.time()
        runnable = or_(
            and_(jobs.c.state == JobState.QUEUED.value, jobs.c.available_at <= now),
            and_(jobs.c.state == JobState.RUNNING.value, jobs.c.lease_until < now),
        )
        # A deployment waiting for its verdict (webhook, watch, manual, gates) goes before
        # scheduled runs: every schedule of one interval queues its slot at the same instant,
        # and behind such a burst (500 releases: minutes of runs) a release Ready now would
        # wait for all of it. Within each class, oldest first.
        scheduled = case((jobs.c.trigger == "schedule", 1), else_=0)
        pick = select(jobs.c.id).where(runnable).order_by(scheduled, jobs.c.id).limit(1)
        if self.dialect == "postgresql":
            # Rows another replica is claiming right now are skipped, not waited for.
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            update(jobs)
            # Re-check `runnable`: on SQLite the subquery and the update share one snapshot
            # anyway; on PostgreSQL this guards against a row that changed after the pick.
            .where(jobs.c.id == pick.scalar_subquery(), runnable)
            .values(
                state=JobState.RUNNING.value,
                claimed_by=worker,
                lease_until=now + lease,
                attempts=jobs.c.attempts + 1,
            )
            .returning(*jobs.c)
        )
        async with self._write() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return job_from_row(row) if row is not None else None

    async def renew(self, job_id: int, worker: str, lease: float) -> bool:
        stmt = (
            update(jobs)
            .where(
                jobs.c.id == job_id,
                jobs.c.claimed_by == worker,
                jobs.c.state == JobState.RUNNING.value,
            )
            .values(lease_until=time.time() + lease)
        )
        async with self._write() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def requeue(self, job_id: int, worker: str) -> None:
        stmt = (
            update(jobs)
            .where(
                jobs.c.id == job_id,
                jobs.c.claimed_by == worker,
                jobs.c.state == JobState.RUNNING.value,
            )
            .values(
                state=JobState.QUEUED.value,
                claimed_by=None,
                lease_until=None,
                available_at=time.time(),
                # An orderly hand-back is not a failed attempt.
                attempts=func.max(jobs.c.attempts - 1, 0)
                if self.dialect == "sqlite"
                else func.greatest(jobs.c.attempts - 1, 0),
            )
        )
        async with self._write() as conn:
            await conn.execute(stmt)

    async def finish(self, job_id: int | None, worker: str, run: NewRun | None) -> bool:
        async with self._write() as conn:
            if job_id is not None:
                done = await conn.execute(
                    update(jobs)
                    .where(
                        jobs.c.id == job_id,
                        jobs.c.claimed_by == worker,
                        jobs.c.state == JobState.RUNNING.value,
                    )
                    .values(
                        state=JobState.DONE.value,
                        run_id=run.id if run is not None else None,
                        lease_until=None,
                    )
                )
                if done.rowcount != 1:
                    # Our lease expired and another replica took the job: its run will count.
                    await conn.rollback()
                    return False
            if run is not None:
                await conn.execute(runs.insert().values(**run_row(job_id, run)))
        return True

    async def get_job(self, job_id: int) -> Job | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).one_or_none()
        return job_from_row(row) if row is not None else None

    async def queue_depth(self) -> dict[str, int]:
        stmt = (
            select(jobs.c.state, func.count())
            .where(jobs.c.state != JobState.DONE.value)
            .group_by(jobs.c.state)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        out = {JobState.QUEUED.value: 0, JobState.RUNNING.value: 0}
        out.update({state: int(n) for state, n in rows})
        return out

    # --- history ----------------------------------------------------------------------------

    async def list_releases(self) -> list[RunSummary]:
        rn = (
            func.row_number()
            .over(
                partition_by=(runs.c.release, runs.c.revision),
                order_by=(runs.c.finished_at.desc(), runs.c.id.desc()),
            )
            .label("rn")
        )
        sub = select(*SUMMARY_COLUMNS, rn).subquery()
        stmt = (
            select(*[sub.c[c.name] for c in SUMMARY_COLUMNS])
            .where(sub.c.rn == 1)
            .order_by(sub.c.release, sub.c.finished_at.desc())
        )
        async with self.engine.connect() as conn:
            return [summary_from_row(r) for r in (await conn.execute(stmt)).all()]

    async def list_runs(
        self, release: str | None = None, *, revision: str | None = None, limit: int = 50
    ) -> list[RunSummary]:
        stmt = select(*SUMMARY_COLUMNS).order_by(runs.c.finished_at.desc(), runs.c.id.desc())
        if release is not None:
            stmt = stmt.where(runs.c.release == release)
        if revision is not None:
            stmt = stmt.where(runs.c.revision == revision)
        stmt = stmt.limit(max(1, min(limit, 1000)))
        async with self.engine.connect() as conn:
            return [summary_from_row(r) for r in (await conn.execute(stmt)).all()]

    async def get_run(self, run_id: str) -> RunRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(runs).where(runs.c.id == run_id))).one_or_none()
        if row is None:
            return None
        return RunRecord(summary_from_row(row), orjson.loads(row.report))

    async def prune(
        self, *, max_age: float | None, max_runs_per_release: int | None, now: float | None = None
    ) -> int:
        now = time.time() if now is None else now
        removed = 0
        async with self._write() as conn:
            if max_age is not None:
                cutoff = now - max_age
                res = await conn.execute(delete(runs).where(runs.c.finished_at < cutoff))
                removed += res.rowcount or 0
                # Done jobs are the dedup memory: forget them with their runs.
                await conn.execute(
                    delete(jobs).where(
                        jobs.c.state == JobState.DONE.value, jobs.c.created_at < cutoff
                    )
                )
            if max_runs_per_release is not None:
                rn = (
                    func.row_number()
                    .over(
                        partition_by=runs.c.release,
                        order_by=(runs.c.finished_at.desc(), runs.c.id.desc()),
                    )
                    .label("rn")
                )
                ranked = select(runs.c.id, rn).subquery()
                doomed = select(ranked.c.id).where(ranked.c.rn > max_runs_per_release)
                res = await conn.execute(delete(runs).where(runs.c.id.in_(doomed)))
                removed += res.rowcount or 0
                # Their jobs too, or a schedule (one job per slot) grows the jobs table
                # forever when only the count is bounded (maxAge: null). A done job is dedup
                # memory; the newest one of each (release, trigger) stays, so a watch re-list
                # still finds the current revision tested.
                newest = (
                    select(func.max(jobs.c.id))
                    .where(jobs.c.state == JobState.DONE.value)
                    .group_by(jobs.c.release, jobs.c.trigger)
                )
                await conn.execute(
                    delete(jobs).where(
                        jobs.c.state == JobState.DONE.value,
                        jobs.c.run_id.is_not(None),
                        ~select(runs.c.id).where(runs.c.id == jobs.c.run_id).exists(),
                        jobs.c.id.not_in(newest),
                    )
                )
        return removed


def _check_sqlite_dir(url: str) -> None:
    """Fail with a clear message before aiosqlite does (its failed connect also leaves a
    worker thread that reports into a closed loop)."""
    import os

    database = make_url(url).database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    parent = os.path.dirname(os.path.abspath(database))
    if not os.path.isdir(parent):
        raise OSError(f"directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OSError(f"directory {parent} is not writable")


def _sqlite_setup(engine: AsyncEngine) -> None:
    """Take over BEGIN from the driver (SQLAlchemy's documented recipe for pysqlite/aiosqlite)
    so write transactions can be ``BEGIN IMMEDIATE``; WAL and a busy timeout for replicas
    (several processes) sharing one file."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver must not emit its own BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        # Switching to WAL needs an exclusive lock, and SQLite answers "database is locked"
        # at once (no busy wait) when replicas open a new file together: retry briefly.
        for attempt in range(50):
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                break
            except Exception as exc:  # sqlite3.OperationalError via the async driver
                if "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.05 + 0.01 * attempt)
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("smokegate_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
