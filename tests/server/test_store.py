"""The history store against SQLite and a real PostgreSQL: dedup, atomic claims across
"replicas" (separate store instances = separate connection pools), leases, history, retention,
migrations."""

from __future__ import annotations

import asyncio
import time

import pytest

from smokegate.store.base import JobState, NewRun, Verdict, run_from_report
from smokegate.store.migrations import LATEST, current_version
from smokegate.store.sql import SqlStore, async_url, safe_url


def new_run(
    run_id: str,
    release: str,
    revision: str,
    *,
    ok: bool = True,
    at: float | None = None,
    trigger: str = "webhook",
) -> NewRun:
    at = time.time() if at is None else at
    report = {
        "schema": "smokegate.io/report/v1",
        "runId": run_id,
        "ok": ok,
        "startedAt": at - 1,
        "finishedAt": at,
        "counts": {"passed": 1 if ok else 0, "failed": 0 if ok else 1, "total": 1},
        "results": [
            {
                "id": "s/c",
                "name": "c",
                "suite": "s",
                "kind": "http",
                "status": "passed" if ok else "failed",
                "message": "ok" if ok else "status: expected 200, got 503",
                "evidence": []
                if ok
                else [{"subject": "status", "expected": "200", "actual": "503"}],
                "attempts": [{"number": 1, "startedAt": at - 1, "duration": 0.5, "ok": ok}],
            }
        ],
    }
    return NewRun(
        run_id,
        release,
        revision,
        trigger,
        Verdict.PASSED if ok else Verdict.FAILED,
        at - 1,
        at,
        {"passed": int(ok), "failed": int(not ok), "total": 1},
        report,
    )


async def test_enqueue_dedups_on_release_revision_trigger(store: SqlStore) -> None:
    a = await store.enqueue("apps/podinfo", "6.6.1", "webhook", payload={"reason": "x"})
    b = await store.enqueue("apps/podinfo", "6.6.1", "webhook")
    assert a.created and not b.created and a.job_id == b.job_id
    # Another revision, another trigger, or an explicit re-run (nonce): new jobs.
    others = [
        await store.enqueue("apps/podinfo", "6.6.2", "webhook"),
        await store.enqueue("apps/podinfo", "6.6.1", "manual"),
        await store.enqueue("apps/podinfo", "6.6.1", "webhook", nonce="rerun-1"),
        await store.enqueue("apps/other", "6.6.1", "webhook"),
    ]
    assert all(e.created for e in others)
    assert len({a.job_id, *(e.job_id for e in others)}) == 5
    assert (await store.queue_depth())["queued"] == 5
    job = await store.get_job(a.job_id)
    assert job is not None and job.payload == {"reason": "x"} and job.namespace == "apps"


async def test_a_deployment_is_claimed_before_a_burst_of_schedule_slots(store: SqlStore) -> None:
    """Every schedule of one interval queues its slot at the same moment; a release that
    became Ready just after must not wait behind all of them (bench/serve_scale.py: p99
    Ready->first check went from 14.4 s to 0.5 s with 500 schedules)."""
    for i in range(5):
        await store.enqueue(f"apps/r{i}", "", "schedule", nonce=f"every:{i}")
    watch = await store.enqueue("apps/r3", "2.0.0", "watch")
    hook = await store.enqueue("apps/r4", "2.0.0", "webhook")
    order = []
    while (job := await store.claim("w", 30)) is not None:
        order.append((job.trigger, job.release))
    assert order[:2] == [("watch", "apps/r3"), ("webhook", "apps/r4")]
    assert order[2:] == [("schedule", f"apps/r{i}") for i in range(5)]  # then oldest first
    assert watch.job_id < hook.job_id


async def test_concurrent_enqueues_from_two_replicas_make_one_job_per_key(store_url: str) -> None:
    replicas = [SqlStore(store_url), SqlStore(store_url)]
    for r in replicas:
        await r.open()
    try:
        keys = [(f"ns/r{i % 10}", f"1.0.{i % 7}") for i in range(300)]
        results = await asyncio.gather(
            *(replicas[i % 2].enqueue(rel, rev, "webhook") for i, (rel, rev) in enumerate(keys))
        )
        distinct = set(keys)
        created = [e for e in results if e.created]
        assert len(created) == len(distinct)
        by_key: dict[tuple[str, str], set[int]] = {}
        for key, e in zip(keys, results, strict=True):
            by_key.setdefault(key, set()).add(e.job_id)
        assert all(len(ids) == 1 for ids in by_key.values())
        assert (await replicas[0].queue_depth())["queued"] == len(distinct)
    finally:
        for r in replicas:
            await r.close()


async def test_claims_are_atomic_across_replicas(store_url: str) -> None:
    replicas = [SqlStore(store_url) for _ in range(3)]
    for r in replicas:
        await r.open()
    try:
        for i in range(40):
            await replicas[0].enqueue(f"ns/r{i}", "1", "webhook")
        claimed: list[tuple[str, int]] = []

        async def worker(store: SqlStore, name: str) -> None:
            while (job := await store.claim(name, 30)) is not None:
                claimed.append((name, job.id))

        await asyncio.gather(*(worker(replicas[i % 3], f"w{i}") for i in range(9)))
        ids = [job_id for _, job_id in claimed]
        assert sorted(ids) == sorted(set(ids)) and len(ids) == 40
        assert len({name for name, _ in claimed}) > 1  # the work was actually shared
        assert await replicas[1].queue_depth() == {"queued": 0, "running": 40}
    finally:
        for r in replicas:
            await r.close()


async def test_expired_lease_is_reclaimed_and_the_old_worker_loses_it(store: SqlStore) -> None:
    await store.enqueue("apps/a", "1", "webhook")
    job = await store.claim("dead-worker", lease=0.2)
    assert job is not None and job.attempts == 1
    assert await store.claim("w2", 30) is None  # leased
    await asyncio.sleep(0.3)
    again = await store.claim("w2", 30)
    assert again is not None and again.id == job.id and again.attempts == 2
    assert not await store.renew(job.id, "dead-worker", 30)
    assert not await store.finish(job.id, "dead-worker", new_run("late", "apps/a", "1"))
    assert await store.get_run("late") is None
    assert await store.finish(job.id, "w2", new_run("r2", "apps/a", "1"))
    done = await store.get_job(job.id)
    assert done is not None and done.state is JobState.DONE and done.run_id == "r2"


async def test_requeue_hands_a_job_back_without_counting_the_attempt(store: SqlStore) -> None:
    await store.enqueue("apps/a", "1", "webhook")
    job = await store.claim("w1", 30)
    assert job is not None
    await store.requeue(job.id, "w1")
    again = await store.claim("w2", 30)
    assert again is not None and again.id == job.id and again.attempts == 1


async def test_history_releases_runs_and_reports(store: SqlStore) -> None:
    t = time.time()
    await store.finish(None, "w", new_run("a1", "apps/a", "1.0.0", ok=False, at=t - 30))
    await store.finish(None, "w", new_run("a2", "apps/a", "1.0.0", ok=True, at=t - 20))
    await store.finish(None, "w", new_run("a3", "apps/a", "1.1.0", ok=False, at=t - 10))
    await store.finish(None, "w", new_run("b1", "apps/b", "2.0.0", ok=True, at=t - 5))
    latest = {(r.release, r.revision): (r.id, r.verdict) for r in await store.list_releases()}
    assert latest == {
        ("apps/a", "1.0.0"): ("a2", Verdict.PASSED),
        ("apps/a", "1.1.0"): ("a3", Verdict.FAILED),
        ("apps/b", "2.0.0"): ("b1", Verdict.PASSED),
    }
    assert [r.id for r in await store.list_runs("apps/a")] == ["a3", "a2", "a1"]
    assert [r.id for r in await store.list_runs("apps/a", revision="1.0.0")] == ["a2", "a1"]
    assert [r.id for r in await store.list_runs(limit=2)] == ["b1", "a3"]
    record = await store.get_run("a3")
    assert record is not None and record.summary.counts["failed"] == 1
    evidence = record.report["results"][0]["evidence"]
    assert evidence == [{"subject": "status", "expected": "200", "actual": "503"}]
    run = run_from_report(record.report)
    assert not run.ok and run.results[0].evidence[0].actual == "503"
    assert await store.get_run("nope") is None


async def test_retention_by_age_and_count(store: SqlStore) -> None:
    now = time.time()
    for i in range(6):
        await store.finish(None, "w", new_run(f"a{i}", "apps/a", str(i), at=now - 100 + i))
    await store.finish(None, "w", new_run("old", "apps/b", "1", at=now - 10_000))
    removed = await store.prune(max_age=5_000, max_runs_per_release=4, now=now)
    assert removed == 3
    assert [r.id for r in await store.list_runs("apps/a")] == ["a5", "a4", "a3", "a2"]
    assert await store.list_runs("apps/b") == []


async def test_retention_by_count_bounds_a_schedules_jobs_too(store: SqlStore) -> None:
    """A schedule queues one job per slot; with only a count limit (maxAge: null) the history
    (runs and jobs) must stay within it however many slots pass, and the newest job of each
    (release, trigger) stays as dedup memory (a watch re-list must not re-run it)."""
    from sqlalchemy import func, select

    from smokegate.store.tables import jobs, runs

    now = time.time()
    watch = await store.enqueue("apps/a", "1.0.0", "watch")
    claimed = await store.claim("w", 30)
    assert claimed is not None and claimed.id == watch.job_id
    await store.finish(claimed.id, "w", new_run("watch-run", "apps/a", "1.0.0", at=now - 500))
    for slot in range(40):
        queued = await store.enqueue("apps/a", "", "schedule", nonce=f"every:{slot}")
        job = await store.claim("w", 30)
        assert job is not None and job.id == queued.job_id
        await store.finish(job.id, "w", new_run(f"s{slot}", "apps/a", "", at=now - 400 + slot))
        await store.prune(max_age=None, max_runs_per_release=5, now=now)

    async with store.engine.connect() as conn:
        n_runs = (await conn.execute(select(func.count()).select_from(runs))).scalar_one()
        done = (await conn.execute(select(jobs.c.trigger, jobs.c.nonce))).all()
    assert n_runs == 5
    assert [r.id for r in await store.list_runs("apps/a")] == [f"s{i}" for i in range(39, 34, -1)]
    # The five jobs of the kept runs, plus the watch job (its run is gone, but it is the newest
    # watch job of apps/a): re-announcing revision 1.0.0 is still a duplicate.
    assert len(done) == 6
    assert ("watch", "") in done
    again = await store.enqueue("apps/a", "1.0.0", "watch")
    assert not again.created


async def test_migrations_are_idempotent_and_safe_for_concurrent_starts(store_url: str) -> None:
    stores = [SqlStore(store_url) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        async with stores[0].engine.connect() as conn:
            assert await current_version(conn) == LATEST
        await stores[1].close()
        await stores[1].open()  # a restart: nothing to do, nothing breaks
        await stores[1].ping()
    finally:
        for s in stores:
            await s.close()


def test_urls_map_to_async_drivers_and_passwords_are_masked() -> None:
    assert async_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert async_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert async_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(ValueError):
        async_url("mysql://h/db")
    assert "hunter2" not in safe_url("postgresql+psycopg://u:hunter2@h/db")
    assert "hunter2" not in repr(SqlStore("postgresql://u:hunter2@h/db"))
