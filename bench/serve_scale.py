"""``smokegate serve`` at fleet scale: 500 HelmReleases on the real test apiserver (this script
plays Flux helm-controller: it writes their ``status`` through the status subresource), one
schedule per release running a 10-check suite every minute against a local nginx (5,000 checks
a minute), and a steady trickle of upgrades (a release Ready at a new revision) for the watch.

    make bench-serve      # or: .venv/bin/python bench/serve_scale.py [--duration 180] ...

Phases: start the apiserver, nginx and the HelmReleases (all Ready at 1.0.0); start ``serve``
and let it drain the start-up burst (one watch run per release, the first schedule slot); fill
the history up to ``--history`` runs (copies of real runs) with a retention that holds it
there (``maxRunsPerRelease`` = history / releases); then the measured window of ``--duration``
seconds: schedules, upgrades (``--upgrades`` per second, round-robin over the releases), the
retention sweep, a dashboard and API read every few seconds.

Printed (one ``key=value`` a line, then a note):

* ``rss_mb_max``/``rss_mb_end``: serve's resident memory (target ≤ 150 MB), with the history
  at ``--history`` runs;
* ``cpu_core_pct``: serve's CPU over the window, in % of one core, everything included (runs'
  set-up, the store, the apiserver reads and Events); ``checks_cpu_core_pct``: the checks' own
  share, measured by running the same checks per minute through the engine alone in this
  process (target ≤ 5 %);
* ``ready_to_first_check_p50_s``/``_p99_s``: from the status patch that makes a release Ready
  at a new revision to the first check of its run starting (target p99 ≤ 0.5 s);
* ``store_growth_mb_per_day`` without retention (bytes per stored run × runs a day) and
  ``store_bound_mb`` with it; ``history_runs_end`` against ``history_bound``.

The machine may be shared: CPU and latency are then upper bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import sqlite3
import ssl
import statistics
import sys
import tempfile
import textwrap
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "kube"))

from fixtures_flux import helmrelease, status_ready, status_reconciling  # noqa: E402
from kubeenv import KubeEnv  # noqa: E402
from tests.server.support import ServeProcess, get_json, request  # noqa: E402
from tests.servers.nginx import NginxServer  # noqa: E402

NS = "fleet"
HR_PATH = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/{ns}/helmreleases"


class Kube:
    """The apiserver's REST API on one keep-alive connection per thread (``kubectl`` per call
    would cost 0.2 s of the machine each; helm-controller talks to the API the same way)."""

    def __init__(self, env: KubeEnv) -> None:
        url = urllib.parse.urlsplit(env.server)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 443
        self.token = env.token
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname, self.ctx.verify_mode = False, ssl.CERT_NONE
        self.local = threading.local()

    def call(
        self, method: str, path: str, body: Any = None, ctype: str = "application/json"
    ) -> Any:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=30)
            self.local.conn = conn
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": ctype}
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: {resp.status} {data[:300]!r}")
        return json.loads(data) if data else None

    def patch_status(self, name: str, status: dict[str, Any]) -> None:
        self.call(
            "PATCH",
            HR_PATH.format(ns=NS) + f"/{name}/status",
            {"status": status},
            "application/merge-patch+json",
        )


def write_suite(directory: Path, url: str, checks: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "fleet.yaml").write_text(
        textwrap.dedent(f"""\
        apiVersion: smokegate.io/v1
        kind: Suite
        metadata: {{name: fleet}}
        spec:
          defaults: {{timeout: 5s}}
          checks:
            - name: api
              matrix: {{i: {{range: [0, {checks}]}}}}
              http:
                url: "{url}/json?release=${{release.name}}&i=${{i}}"
                expect:
                  status: 200
                  json: {{"$.status": ok}}
        """)
    )


def serve_config(port: int, store: str, kubeconfig: str, args: argparse.Namespace) -> str:
    per_release = max(1, args.history // args.releases)
    schedules = "".join(
        f"  - {{name: hr-{i}, every: {args.every}s, release: {NS}/hr-{i}, suites: [fleet]}}\n"
        for i in range(args.releases)
    )
    return (
        "apiVersion: smokegate.io/v1\nkind: ServerConfig\n"
        f"listen: 127.0.0.1:{port}\n"
        f'store: {{url: "{store}", retention: {{maxAge: null, maxRunsPerRelease: {per_release}, '
        f"interval: {args.retention_interval}s}}}}\n"
        "suites: {directories: [suites]}\n"
        f"releases:\n  - match: {{namespace: {NS}}}\n    suites: [fleet]\n"
        f"schedules:\n{schedules}"
        "kubernetes:\n  enabled: true\n"
        f"  kubeconfig: {kubeconfig}\n  namespaces: [{NS}]\n  watch: true\n  waitTimeout: 30s\n"
        "webhooks:\n  flux:\n    secrets: [{env: SG_TEST_WEBHOOK_SECRET}]\n"
        "api: {token: {env: SG_TEST_API_TOKEN}}\n"
        f"worker: {{concurrency: {args.serve_workers}, poll_interval: 1s}}\n"
        "dashboard: {refresh: 0}\n"
    )


def proc_sample(pid: int) -> tuple[float, float]:
    """(RSS in MB, CPU seconds so far) of ``pid``."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, cpu


def queue_depth(serve: ServeProcess) -> float:
    text = request("GET", serve.url + "/metrics")[2].decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("smokegate_queue_depth{")
    )


def wait_drained(serve: ServeProcess, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if queue_depth(serve) == 0:
            return time.monotonic() - t0
        time.sleep(0.5)
    raise SystemExit(f"serve did not drain its queue within {timeout:.0f}s:\n{serve.log[-3000:]}")


def count_runs(db: Path) -> tuple[int, int, int]:
    """(runs, jobs, bytes of reports) in the store, read beside serve (WAL: no blocking)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        runs, size = conn.execute(
            "SELECT count(*), coalesce(sum(length(report)), 0) FROM runs"
        ).fetchone()
        jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
    return runs, jobs, size


def live_bytes(db: Path) -> int:
    """The store's live size: pages in use (the file keeps freed pages for reuse, and the WAL
    is rewritten at checkpoints, so neither file's size is the history's)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def runs_since(db: Path, since: float) -> dict[str, int]:
    """Runs finished since ``since``, by trigger."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute(
            "SELECT trigger, count(*) FROM runs WHERE finished_at >= ? GROUP BY trigger", (since,)
        ).fetchall()
    return {str(t): int(n) for t, n in rows}


def fill_history(db: Path, serve: ServeProcess, target: int, releases: int) -> int:
    """Copies of a real stored run, older than anything serve writes, until ``target`` runs."""
    from smokegate.store.base import NewRun, Verdict
    from smokegate.store.sql import SqlStore

    have = count_runs(db)[0]
    if have >= target:
        return have
    sample = serve.runs()[0]
    report = get_json(f"{serve.url}/api/v1/runs/{sample['id']}")["report"]

    async def fill() -> None:
        from smokegate.store.tables import run_row, runs

        store = SqlStore(f"sqlite:///{db}")
        await store.open()
        rows = []
        day_ago = time.time() - 86400
        for k in range(target - have):
            rid, at = f"fill{k:06d}", day_ago - k
            run = NewRun(
                rid, f"{NS}/hr-{k % releases}", "1.0.0", "schedule", Verdict.PASSED, at - 1, at,
                sample["counts"], {**report, "runId": rid},
            )  # fmt: skip
            rows.append(run_row(None, run))
        try:
            async with store.engine.begin() as conn:  # one transaction: seconds, not minutes
                await conn.execute(runs.insert(), rows)
        finally:
            await store.close()

    asyncio.run(fill())
    return count_runs(db)[0]


def checks_cpu_per_minute(suite_dir: Path, runs_per_minute: int) -> float:
    """CPU seconds the engine alone spends on one minute's worth of the fleet's checks."""
    import resource

    from smokegate.api import RunSettings, plan_run, run_plan

    plan = plan_run([str(suite_dir / "fleet.yaml")], release_vars={"release.name": "hr-0"})
    settings = RunSettings(concurrency=32)
    run_plan(plan, settings)  # warm: imports, the first connections
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(runs_per_minute):
        run = run_plan(plan, settings)
        assert run.ok, run
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--releases", type=int, default=500)
    ap.add_argument("--checks", type=int, default=10, help="checks per scheduled run")
    ap.add_argument("--every", type=int, default=60, help="each release's schedule, seconds")
    ap.add_argument("--duration", type=float, default=180, help="measured window, seconds")
    ap.add_argument("--upgrades", type=float, default=1.0, help="upgrades per second")
    ap.add_argument("--history", type=int, default=10_000, help="runs kept in the history")
    ap.add_argument("--retention-interval", type=int, default=30, help="seconds")
    ap.add_argument(
        "--serve-workers", type=int, default=8, help="serve's worker.concurrency (runs in flight)"
    )
    args = ap.parse_args()
    per_minute = args.releases * args.checks * 60 / args.every
    print(
        f"releases: {args.releases}  checks/min: {per_minute:,.0f}  window: {args.duration:.0f}s  "
        f"upgrades/s: {args.upgrades}  history: {args.history}  cores: "
        f"{len(os.sched_getaffinity(0))}  load: {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    with (
        tempfile.TemporaryDirectory(prefix="smokegate-serve-scale-") as tmp,
        NginxServer() as nginx,
    ):
        work = Path(tmp)
        env = KubeEnv().start(work / "kube")
        try:
            env.apply_crd()
            return _bench(env, nginx, work, args, per_minute)
        finally:
            env.stop()


def _bench(
    env: KubeEnv, nginx: NginxServer, work: Path, args: argparse.Namespace, per_minute: float
) -> int:
    kube = Kube(env)
    kube.call("POST", "/api/v1/namespaces", {"metadata": {"name": NS}})
    t0 = time.monotonic()
    for i in range(args.releases):
        kube.call("POST", HR_PATH.format(ns=NS), helmrelease(f"hr-{i}", NS))
        kube.patch_status(f"hr-{i}", status_ready(f"hr-{i}", NS, 1, "1.0.0", version=1))
    print(
        f"{args.releases} HelmReleases Ready at 1.0.0 in {time.monotonic() - t0:.1f}s", flush=True
    )
    write_suite(work / "suites", nginx.url, args.checks)
    db = work / "history.db"
    serve = ServeProcess(work, "")
    serve.config_path.write_text(
        serve_config(serve.port, f"sqlite:///{db}", str(env.kubeconfig), args)
    )
    serve.start(timeout=60)
    try:
        return _measure(serve, kube, db, work, args, per_minute)
    finally:
        serve.stop()


def _measure(
    serve: ServeProcess,
    kube: Kube,
    db: Path,
    work: Path,
    args: argparse.Namespace,
    per_minute: float,
) -> int:
    assert serve.proc is not None
    pid = serve.proc.pid
    time.sleep(2)  # the watch's list and the first schedule slot
    burst = wait_drained(serve, timeout=600)
    runs0 = count_runs(db)[0]
    print(f"start-up burst ({runs0} runs) drained in {burst:.1f}s", flush=True)
    history = fill_history(db, serve, args.history, args.releases)
    print(f"history filled to {history} runs", flush=True)

    samples: list[tuple[float, float]] = []
    upgrades: list[tuple[str, str, float]] = []
    stop = threading.Event()

    def sampler() -> None:
        while not stop.is_set():
            samples.append(proc_sample(pid))
            stop.wait(1.0)

    def upgrader() -> None:
        k = 0
        while not stop.is_set():
            name = f"hr-{k % args.releases}"
            revision = f"1.0.{k // args.releases + 1}"
            # Flux mid-upgrade, then Ready at the new revision: the watch must skip the first.
            kube.patch_status(name, status_reconciling(2, revision))
            t_ready = time.time()
            kube.patch_status(name, status_ready(name, NS, 2, revision, version=2))
            upgrades.append((name, revision, t_ready))
            k += 1
            stop.wait(1.0 / args.upgrades)

    board_ms: list[float] = []

    def reader() -> None:
        # One open dashboard (it reloads every 30 s by default) and an API client.
        while not stop.is_set():
            t = time.perf_counter()
            request("GET", serve.url + "/", timeout=60)
            board_ms.append((time.perf_counter() - t) * 1000)
            request("GET", serve.url + "/api/v1/releases", timeout=60)
            stop.wait(30.0)

    size0 = live_bytes(db)
    _, cpu0 = proc_sample(pid)
    threads = [threading.Thread(target=f, daemon=True) for f in (sampler, upgrader, reader)]
    t_start = time.monotonic()
    epoch_start = time.time()
    for t in threads:
        t.start()
    time.sleep(args.duration)
    stop.set()
    for t in threads:
        t.join(30)
    window = time.monotonic() - t_start
    _, cpu1 = proc_sample(pid)
    runs_end = count_runs(db)
    by_trigger = runs_since(db, epoch_start)
    in_window = sum(by_trigger.values())
    slots = int((epoch_start + window) // args.every) - int(epoch_start // args.every)
    size1 = live_bytes(db)
    depth_end = queue_depth(serve)
    # Let the last upgrades' runs finish, then read when each one's first check started.
    wait_drained(serve, timeout=300)
    latencies = _latencies(serve, upgrades)
    rss_end, _ = proc_sample(pid)
    cpu_pct = (cpu1 - cpu0) / window * 100
    per_run_bytes = runs_end[2] / max(1, runs_end[0])
    runs_per_day = (per_minute / args.checks) * 1440 + args.upgrades * 86400
    bound = max(1, args.history // args.releases) * args.releases
    checks_cpu = checks_cpu_per_minute(work / "suites", int(per_minute / args.checks))
    print()
    print(f"rss_mb_max={max(r for r, _ in samples):.1f}")
    print(f"rss_mb_end={rss_end:.1f}")
    print(f"cpu_core_pct={cpu_pct:.1f}")
    print(f"runs_in_window={in_window}  ({in_window / window * 60:.0f}/min)  {by_trigger}")
    print(
        f"schedule_runs={by_trigger.get('schedule', 0)}  expected={slots * args.releases}  "
        f"({slots} slot boundaries in the window)"
    )
    print(f"cpu_ms_per_run={(cpu1 - cpu0) / max(1, in_window) * 1000:.1f}")
    print(f"checks_cpu_core_pct={checks_cpu / 60 * 100:.1f}")
    print(f"ready_to_first_check_p50_s={_pct(latencies, 50):.3f}")
    print(f"ready_to_first_check_p99_s={_pct(latencies, 99):.3f}")
    print(f"ready_to_first_check_max_s={max(latencies):.3f}")
    print(f"upgrades_measured={len(latencies)}/{len(upgrades)}")
    print(f"dashboard_ms_max={max(board_ms):.0f}  ({len(board_ms)} loads)")
    print(f"bytes_per_run={per_run_bytes:,.0f}")
    print(f"store_growth_mb_per_day={per_run_bytes * runs_per_day / 1e6:,.0f}  (no retention)")
    print(f"store_bound_mb={per_run_bytes * bound / 1e6:,.0f}  (maxRunsPerRelease x releases)")
    print(
        f"store_live_mb={size1 / 1e6:.1f}  store_live_growth_mb_per_day="
        f"{(size1 - size0) / window * 86400 / 1e6:,.0f}  (with retention, history at its bound)"
    )
    print(f"queue_depth_end={depth_end:.0f}  (jobs waiting when the window closed)")
    print(f"history_runs_end={runs_end[0]}  history_bound={bound}  jobs_end={runs_end[1]}")
    print(f"load_after={os.getloadavg()[0]:.2f}  (a shared machine: CPU and latency are bounds)")
    return 0


def _latencies(serve: ServeProcess, upgrades: list[tuple[str, str, float]]) -> list[float]:
    out = []
    for name, revision, t_ready in upgrades:
        runs = get_json(
            f"{serve.url}/api/v1/runs?release={NS}/{name}&revision={revision}&limit=20"
        )["items"]
        watch = [r for r in runs if r["trigger"] == "watch"]
        if not watch:
            continue
        report = get_json(f"{serve.url}/api/v1/runs/{watch[-1]['id']}")["report"]
        starts = [a["startedAt"] for r in report["results"] for a in r.get("attempts", [])[:1]]
        if starts:
            out.append(min(starts) - t_ready)
    if not out:
        raise SystemExit(f"no upgrade produced a watch run:\n{serve.log[-3000:]}")
    return out


def _pct(values: list[float], p: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


if __name__ == "__main__":
    raise SystemExit(main())
