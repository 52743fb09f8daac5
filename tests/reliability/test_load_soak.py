"""Part 5 of the reliability suite: load and soak, against real ``smokegate serve`` processes
(SQLite store, the default).

* **Load**: 1,000 signed Flux events posted at once for 100 HelmReleases (two revisions each,
  every (release, revision) announced five times with varying reasons and metadata shapes):
  every event answered 202, 200 jobs (deduplicated), each run exactly once, none lost; the
  p99 time to the 202 is the figure.
* **Soak**: scheduled runs (20 schedules, ``every: 10s``: two runs a second) with the server's
  RSS sampled — CI profile 60 s sampled every 5 s (warm-up 15 s), long profile
  (``SMOKEGATE_RELIABILITY_PROFILE=long``) 10 minutes sampled each minute (warm-up 2 min).
  After warm-up the RSS must stay within 10% of its first post-warm-up sample.

The soak server starts with the module and is sampled in a background thread while the load
test runs against another server: the two overlap to keep ``make test`` short, and the load's
CPU use only slows the soak's runs down (RSS is per process).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from smokegate.httpclient import HttpClient
from tests.reliability._outage_env import PlaneStarting, wants_plane
from tests.reliability._serve import figures_fixture, profile, rss_kib, sqlite_counts, start_serve
from tests.server.support import ServeProcess, Target, flux_event, hook_headers, write_suites

RELEASES = 100
REVISIONS = 2
COPIES = 5  # 100 x 2 x 5 = 1,000 events
SCHEDULES = 20
PROFILES = {  # duration, sample every, warm-up (seconds)
    "ci": (60.0, 5.0, 15.0),
    "long": (600.0, 60.0, 120.0),
}


figures = figures_fixture("load")


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


@dataclass
class Soak:
    proc: ServeProcess
    duration: float
    every: float
    warmup: float
    started: float = field(default_factory=time.monotonic)
    samples: list[tuple[float, int]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def sample_loop(self) -> None:
        assert self.proc.proc is not None
        pid = self.proc.proc.pid
        n = 0
        while not self.done.is_set():
            elapsed = time.monotonic() - self.started
            self.samples.append((round(elapsed, 1), rss_kib(pid)))
            if elapsed >= self.duration:
                break
            n += 1
            # Sample on a fixed grid, so a slow sample does not shift the rest.
            self.done.wait(max(0.0, self.started + n * self.every - time.monotonic()))


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory, target: Target) -> Iterator[Soak]:
    work = tmp_path_factory.mktemp("soak")
    write_suites(work / "suites", target.url)
    schedules = "".join(
        f"  - {{name: s{i:02d}, every: 10s, suites: [web]}}\n" for i in range(SCHEDULES)
    )
    proc = start_serve(
        work,
        f"sqlite:///{work / 'h.db'}",
        extra=f"schedules:\n{schedules}",
        worker=", concurrency: 2",
    )
    duration, every, warmup = PROFILES[profile()]
    state = Soak(proc, duration, every, warmup)
    sampler = threading.Thread(target=state.sample_loop, name="rss-sampler", daemon=True)
    sampler.start()
    yield state
    state.done.set()
    sampler.join(timeout=10)
    proc.stop()


@pytest.fixture(autouse=True)
def _soak_from_the_start(soak: Soak) -> None:
    """Every test of the module starts the soak (so it overlaps the load test)."""


async def _post_all(url: str, bodies: list[bytes]) -> tuple[list[tuple[int, dict]], list[float]]:
    latencies: list[float] = []
    async with HttpClient(max_connections_per_origin=len(bodies)) as http:

        async def post(body: bytes) -> tuple[int, dict]:
            t0 = time.perf_counter()
            resp = await http.request(
                "POST", url, headers=hook_headers(body), body=body, timeout=120
            )
            latencies.append(time.perf_counter() - t0)
            return resp.status, json.loads(resp.text())

        results = await asyncio.gather(*(post(b) for b in bodies))
    return results, latencies


def test_1000_concurrent_events_for_100_releases_none_lost_each_run_once(
    tmp_path: Path, target: Target, figures: dict[str, Any]
) -> None:
    write_suites(tmp_path / "suites", target.url)
    proc = start_serve(
        tmp_path,
        f"sqlite:///{tmp_path / 'h.db'}",
        rules="  - match: {namespace: load}\n    suites: [web]\n",
        worker=", concurrency: 4",
    )
    try:
        reasons = ["UpgradeSucceeded", "TestSucceeded", "InstallSucceeded"]
        events = [
            (f"app{r:03d}", f"2.{v}.0", c)
            for c in range(COPIES)
            for v in range(REVISIONS)
            for r in range(RELEASES)
        ]
        bodies = [
            flux_event(
                name=name,
                namespace="load",
                revision=rev,
                reason=reasons[c % 3],
                prefixed=bool(c % 2),
            )
            for name, rev, c in events
        ]
        distinct = {(f"load/{name}", rev) for name, rev, _ in events}
        t0 = time.perf_counter()
        results, latencies = asyncio.run(_post_all(proc.url + "/hooks/flux", bodies))
        accepted = time.perf_counter() - t0
        statuses = Counter(status for status, _ in results)
        assert statuses == {202: len(bodies)}, statuses
        created = [a for _, a in results if a["queued"]]
        assert len(created) == len(distinct) == RELEASES * REVISIONS
        assert len({a["jobId"] for _, a in results}) == len(distinct)
        proc.wait_for_runs(len(distinct), timeout=240)
        all_done = time.perf_counter() - t0
        proc.wait_idle()
        runs = proc.runs()
        per_key = Counter((r["release"], r["revision"]) for r in runs)
        lost = len(distinct - set(per_key))
        assert lost == 0 and per_key == dict.fromkeys(distinct, 1)
        assert sqlite_counts(tmp_path / "h.db") == {"jobs": len(distinct), "runs": len(distinct)}
        assert all(r["verdict"] == "passed" for r in runs)
        latencies.sort()
        figures["load"] = {
            "events": len(bodies),
            "releases": RELEASES,
            "jobs": len(created),
            "runs": len(runs),
            "lost": lost,
            "duplicatesRun": sum(n - 1 for n in per_key.values()),
            "p50To202Ms": round(latencies[len(latencies) // 2] * 1000),
            "p99To202Ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000),
            "all202AfterS": round(accepted, 2),
            "allRunAfterS": round(all_done, 2),
        }
    finally:
        proc.stop()


def test_soak_of_scheduled_runs_keeps_rss_flat(
    soak: Soak,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    figures: dict[str, Any],
) -> None:
    if wants_plane(request.session):
        # The soak leaves the CPU mostly idle: start test_outages' control plane meanwhile.
        PlaneStarting.shared(tmp_path_factory)
    remaining = soak.started + soak.duration - time.monotonic()
    if remaining > 0:
        time.sleep(remaining + 0.5)
    soak.done.set()
    samples = list(soak.samples)
    after = [kib for t, kib in samples if t >= soak.warmup]
    assert len(after) >= 3, samples
    base = after[0]
    growth = (max(after) - base) / base
    counts = sqlite_counts(soak.proc.workdir / "h.db")
    elapsed = time.monotonic() - soak.started
    figures["soak"] = {
        "profile": profile(),
        "durationS": round(elapsed),
        "samples": len(samples),
        "runs": counts["runs"],
        "rssKiB": [kib for _, kib in samples],
        "growthAfterWarmup": f"{growth * 100:.1f}%",
    }
    # The schedules did run (a soak of an idle server would prove little), every slot of
    # every schedule: no slot skipped (a scheduler that woke a hair early, then a hair late,
    # skipped one), none queued twice.
    slots = _slots(soak.proc.workdir / "h.db")
    figures["soak"]["slots"] = len(slots)
    figures["soak"]["slotsSkipped"] = max(slots) - min(slots) + 1 - len(slots)
    assert len(slots) >= int(elapsed // 10), slots
    assert list(slots) == list(range(min(slots), max(slots) + 1)), slots
    # (The last slot may be being queued right now.)
    assert all(n == SCHEDULES for n in list(slots.values())[:-1]), slots
    assert counts["runs"] >= SCHEDULES * (len(slots) - 2), counts
    assert growth <= 0.10, samples


def _slots(db: Path) -> dict[int, int]:
    """Jobs per schedule slot (the slot number is the part of the job's nonce after ':')."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        rows = conn.execute("SELECT nonce FROM jobs WHERE trigger = 'schedule'").fetchall()
    return dict(sorted(Counter(int(n.rsplit(":", 1)[1]) for (n,) in rows).items()))
