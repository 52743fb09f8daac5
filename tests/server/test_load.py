"""1,000 Flux webhook events posted concurrently: every distinct (release, revision) runs
exactly once, none is lost; the time it takes is measured and printed (run with -s)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from smokegate.httpclient import HttpClient
from tests.server.support import ServeProcess, Target, flux_event, hook_headers, write_suites

EVENTS = 1000
RELEASES = 20
REVISIONS = 5  # 100 distinct (release, revision) pairs, each announced 10 times


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


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


def test_1000_concurrent_webhooks_run_each_revision_exactly_once(
    tmp_path: Path, store_url: str, target: Target
) -> None:
    write_suites(tmp_path / "suites", target.url)
    server = ServeProcess.for_store(
        tmp_path,
        store_url,
        rules="  - match: {namespace: load}\n    suites: [web]\n",
        worker=", concurrency: 4",
    ).start()
    try:
        reasons = ["UpgradeSucceeded", "TestSucceeded", "InstallSucceeded"]
        bodies = [
            flux_event(
                name=f"app{i % RELEASES}",
                namespace="load",
                revision=f"1.{(i // RELEASES) % REVISIONS}.0",
                reason=reasons[i % 3],
                prefixed=bool(i % 2),
            )
            for i in range(EVENTS)
        ]
        t0 = time.perf_counter()
        results, latencies = asyncio.run(_post_all(server.url + "/hooks/flux", bodies))
        accepted = time.perf_counter() - t0
        assert Counter(status for status, _ in results) == {202: EVENTS}
        created = [a for _, a in results if a["queued"]]
        distinct = {
            (f"load/app{i % RELEASES}", f"1.{(i // RELEASES) % REVISIONS}.0") for i in range(EVENTS)
        }
        assert len(created) == len(distinct) == RELEASES * REVISIONS
        assert len({a["jobId"] for _, a in results}) == len(distinct)

        server.wait_for_runs(len(distinct), timeout=180)
        all_done = time.perf_counter() - t0
        server.wait_idle()
        runs = server.runs()
        assert Counter((r["release"], r["revision"]) for r in runs) == dict.fromkeys(distinct, 1)
        assert all(r["verdict"] == "passed" for r in runs)
        latencies.sort()
        print(
            f"\n[{store_url.split(':')[0]}] {EVENTS} concurrent webhooks -> {len(distinct)} jobs: "
            f"all answered 202 in {accepted:.2f}s ({EVENTS / accepted:.0f}/s; latency p50 "
            f"{latencies[len(latencies) // 2] * 1000:.0f}ms, p99 "
            f"{latencies[int(len(latencies) * 0.99)] * 1000:.0f}ms); all {len(distinct)} runs "
            f"done after {all_done:.2f}s"
        )
    finally:
        server.stop()
