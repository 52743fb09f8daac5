"""Schedules and job execution in-process (the subprocess tests cover the HTTP side)."""

from __future__ import annotations

import time
from pathlib import Path

from smokegate.server.config import parse_config
from smokegate.server.execute import JobRunner
from smokegate.server.worker import Scheduler
from smokegate.store.base import Job, JobState, Verdict
from smokegate.store.sql import SqlStore
from tests.server.support import Target, write_suites

HEAD = "apiVersion: smokegate.io/v1\nkind: ServerConfig\n"


async def test_schedules_queue_one_job_per_slot_across_replicas(store: SqlStore, tmp_path: Path):
    config = parse_config(
        HEAD + "schedules:\n  - {name: every-5m, every: 5m, suites: [web]}\n"
        "  - {name: podinfo, every: 1m, release: apps/podinfo}\n",
        str(tmp_path / "serve.yaml"),
        check_suites=False,
    )
    woken: list[int] = []
    replicas = [Scheduler(config, store, lambda: woken.append(1)) for _ in range(2)]
    t = 1_800_000_000.0  # a multiple of 5m: both schedules start a slot here
    assert await replicas[0].tick(t) == 2
    assert await replicas[1].tick(t + 1) == 0  # same slots, other replica: duplicates
    assert await replicas[1].tick(t + 60) == 1  # the 1m schedule's next slot only
    assert await replicas[0].tick(t + 300) == 2
    assert (await store.queue_depth())["queued"] == 5
    job = await store.claim("w", 30)
    assert job is not None and job.trigger == "schedule" and job.release == "schedule/every-5m"
    assert job.payload == {"schedule": "every-5m", "suites": ["web"]}
    assert len(woken) == 3


def _job(release: str = "apps/podinfo", **payload: object) -> Job:
    return Job(1, release, "1.0.0", "webhook", "", JobState.RUNNING, time.time(), 1, dict(payload))


async def test_runner_maps_suites_and_records_setup_errors(tmp_path: Path) -> None:
    target = Target()
    try:
        write_suites(tmp_path / "suites", target.url)
        config = parse_config(
            HEAD + "suites: {directories: [suites]}\nreleases:\n"
            "  - {match: {namespace: apps}, suites: [web], vars: {extra: x}}\n",
            str(tmp_path / "serve.yaml"),
        )
        runner = JobRunner(config)
        ok = (await runner.run(_job())).run
        assert ok is not None and ok.verdict is Verdict.PASSED and ok.counts["passed"] == 2
        assert ok.report["context"]["trigger"] == "webhook"
        # Suites named by the job (a manual run) win; an unknown one is a setup error.
        bad = (await runner.run(_job(suites=["nope"]))).run
        assert bad is not None and bad.verdict is Verdict.ERROR
        assert bad.message == "no suite named nope (suites: slow, web)"
        assert bad.report["results"][0]["id"] == "smokegate/setup"
        # Nothing maps to it: nothing runs, and no run is recorded.
        assert (await runner.run(_job("other/x"))).run is None
    finally:
        target.close()
