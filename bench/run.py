"""smokegate vs its peers on one job: 10,000 HTTP checks with a JSON assertion against a local
nginx, at concurrency 100, all measured in the same run on the same machine.

    make bench            # or: .venv/bin/python bench/run.py [--checks N] [--concurrency C]

Peers:
* wrk: the target's own limit. Its requests/s over a few seconds, turned into the time it would
  take for N requests. Not a checker (no assertions), so this is the floor.
* xargs -P C curl: what people script today; one process per check, `grep` for the JSON field.
* prometheus-blackbox-exporter: one /probe per check (http prober with a body regexp; it has no
  JSONPath), driven at concurrency C by a small asyncio driver whose own cost is not counted
  against the exporter's wall time (it is tiny next to the exporter's per-probe work).
* aiohttp + uvloop: the hand-written asyncio checker a user would write instead (one session,
  C workers, GET, status 200 and ``body["status"] == "ok"`` as the JSONPath ``$.status``).

Every contender is a whole process: start-up, suite loading and teardown count. Output: a table
and the lines ``ratio_vs_wrk=``, ``ratio_vs_curl=``, ``ratio_vs_blackbox=``,
``ratio_vs_aiohttp=`` (smokegate's wall time divided by the peer's; lower is better),
``ratio_whole_vs_engine=`` (smokegate's whole process against the run time its engine reports),
the cold start of ``smokegate --version``, and a scaling curve: wall time and peak RSS of
``smokegate run`` for 1k / 10k / 100k matrix checks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers.nginx import NginxServer  # noqa: E402


@dataclass
class Measurement:
    name: str
    wall: float
    cpu: float | None
    checks: int
    note: str = ""
    engine: float | None = None  # smokegate: the run time its engine reports

    @property
    def per_second(self) -> float:
        return self.checks / self.wall if self.wall else 0.0

    @property
    def cpu_us_per_check(self) -> float | None:
        return None if self.cpu is None else self.cpu / self.checks * 1e6


def timed(
    cmd: list[str] | str,
    *,
    shell: bool = False,
    env: dict[str, str] | None = None,
) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall and CPU (user+sys of the child processes) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, shell=shell, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


def bench_smokegate(url: str, n: int, conc: int, work: Path) -> Measurement:
    wall, cpu, _rss, engine = run_smokegate(url, n, conc, work)
    return Measurement("smokegate", wall, cpu, n, f"{n} passed; engine {engine:.3f}s", engine)


def run_smokegate(url: str, n: int, conc: int, work: Path) -> tuple[float, float, int, float]:
    """Wall, CPU, peak RSS (bytes) of one ``smokegate run`` of an n-row matrix, and the run
    time its engine reports."""
    suite = work / f"bench-suite-{n}.yaml"
    suite.write_text(f"""\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {{name: bench}}
spec:
  checks:
    - name: json
      matrix: {{i: {{range: [0, {n}]}}}}
      http:
        url: "{url}?i=${{i}}"
        expect:
          status: 200
          json: {{"$.status": ok}}
""")
    exe = str(Path(sys.executable).with_name("smokegate"))
    # No report file: the peers write none either. The summary line proves every check passed.
    wall, cpu, rss, code, out, err = timed_rss(
        [exe, "run", str(suite), "-c", str(conc), "-q", "--no-color"], work
    )
    passed = re.search(r"PASSED (\d+) passed.* in ([\d.]+)(ms|s)", out)
    if code != 0 or not passed or int(passed.group(1)) != n:
        raise SystemExit(f"smokegate run failed ({code}):\n{out[-2000:]}\n{err[-2000:]}")
    engine = float(passed.group(2)) / (1000 if passed.group(3) == "ms" else 1)
    return wall, cpu, rss, engine


def timed_rss(cmd: list[str], work: Path) -> tuple[float, float, int, int, str, str]:
    """Wall, CPU, peak RSS (bytes), exit code, stdout and stderr of one command: ``wait4``
    gives this child's own resource usage (RUSAGE_CHILDREN would mix in earlier children)."""
    out_path, err_path = work / "stdout.txt", work / "stderr.txt"
    with out_path.open("w") as out, err_path.open("w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return (
        wall,
        cpu,
        usage.ru_maxrss * 1024,
        proc.returncode,
        out_path.read_text(),
        err_path.read_text(),
    )


# The checker a user writes by hand with aiohttp on uvloop (kept minimal and idiomatic: one
# session with a connection limit, a fixed pool of workers, `resp.json()`).
AIOHTTP_CHECKER = """\
import asyncio, sys
import aiohttp, uvloop

async def main(url, n, conc):
    ok = 0
    todo = iter(range(n))
    async def worker(session):
        nonlocal ok
        for i in todo:
            async with session.get(f"{url}?i={i}") as resp:
                body = await resp.json()
                if resp.status == 200 and body.get("status") == "ok":
                    ok += 1
    connector = aiohttp.TCPConnector(limit=conc)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(conc)))
    print(f"ok={ok}")

uvloop.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


def bench_aiohttp(url: str, n: int, conc: int, work: Path) -> Measurement:
    try:
        import aiohttp  # noqa: F401
        import uvloop  # noqa: F401
    except ImportError:
        raise SystemExit("aiohttp/uvloop not installed: pip install -e '.[dev]'") from None
    script = work / "aiohttp_checker.py"
    script.write_text(AIOHTTP_CHECKER)
    wall, cpu, _rss, code, out, err = timed_rss(
        [sys.executable, str(script), url, str(n), str(conc)], work
    )
    if code != 0 or f"ok={n}" not in out:
        raise SystemExit(f"aiohttp checker failed ({code}):\n{out[-2000:]}\n{err[-2000:]}")
    return Measurement("aiohttp+uvloop", wall, cpu, n, "hand-written asyncio checker")


def bench_wrk(url: str, n: int, conc: int) -> Measurement:
    wrk = shutil.which("wrk")
    if not wrk:
        raise SystemExit("wrk not found: run `make deps`")
    _wall, cpu, proc = timed([wrk, "-t2", f"-c{conc}", "-d3s", url])
    m = re.search(r"Requests/sec:\s+([\d.]+)", proc.stdout)
    if not m:
        raise SystemExit(f"cannot parse wrk output:\n{proc.stdout}")
    rps = float(m.group(1))
    # CPU scaled to the same number of requests as the others.
    total = rps * 3
    return Measurement("wrk", n / rps, cpu * n / total, n, f"{rps:,.0f} req/s over 3s")


def bench_curl(url: str, n: int, conc: int) -> Measurement:
    if not shutil.which("curl"):
        raise SystemExit("curl not found: run `make deps`")
    # What a CI script does: one curl per check, fail on HTTP errors, grep the JSON field.
    cmd = (
        f"seq {n} | xargs -P {conc} -I{{}} sh -c "
        f'\'curl -sf "{url}?i={{}}" | grep -q "\\"status\\":\\"ok\\"" || echo FAIL\''
    )
    wall, cpu, proc = timed(cmd, shell=True)
    fails = proc.stdout.count("FAIL")
    if fails:
        raise SystemExit(f"curl loop: {fails} failures")
    return Measurement("xargs -P curl", wall, cpu, n, "curl -sf | grep")


def bench_blackbox(url: str, n: int, conc: int, work: Path) -> Measurement:
    exe = shutil.which("prometheus-blackbox-exporter")
    if not exe:
        raise SystemExit("prometheus-blackbox-exporter not found: run `make deps`")
    cfg = work / "blackbox.yml"
    cfg.write_text("""\
modules:
  http_json:
    prober: http
    timeout: 5s
    http:
      valid_status_codes: [200]
      fail_if_body_not_matches_regexp: ['"status":"ok"']
""")
    from tests.helpers import free_port

    port = free_port()
    proc = subprocess.Popen(
        [
            exe,
            f"--config.file={cfg}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        probe = f"http://127.0.0.1:{port}/probe?module=http_json&target={url}"
        asyncio.run(_wait_http(f"http://127.0.0.1:{port}/"))
        cpu_before = _proc_cpu(proc.pid)
        wall, ok = asyncio.run(_drive(probe, n, conc))
        cpu = _proc_cpu(proc.pid) - cpu_before
    finally:
        proc.terminate()
        proc.wait(10)
    if ok != n:
        raise SystemExit(f"blackbox: only {ok}/{n} probes succeeded")
    return Measurement("blackbox_exporter", wall, cpu, n, "exporter CPU only")


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def _wait_http(url: str) -> None:
    from smokegate.httpclient import HttpClient, HttpError

    async with HttpClient() as client:
        for _ in range(100):
            try:
                await client.request("GET", url, timeout=1)
                return
            except HttpError:
                await asyncio.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


async def _drive(url: str, n: int, conc: int) -> tuple[float, int]:
    from smokegate.httpclient import HttpClient

    ok = 0
    todo = iter(range(n))

    async def worker(client: HttpClient) -> None:
        nonlocal ok
        for _ in todo:
            resp = await client.request("GET", url, timeout=10)
            if resp.status == 200 and b"probe_success 1" in resp.body:
                ok += 1

    async with HttpClient(max_connections_per_origin=conc) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(conc)))
        return time.perf_counter() - t0, ok


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def cold_start(runs: int = 15) -> float:
    exe = str(Path(sys.executable).with_name("smokegate"))
    subprocess.run([exe, "--version"], capture_output=True, check=True)  # warm the page cache
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([exe, "--version"], capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checks", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["curl", "blackbox", "aiohttp", "workers", "scaling"],
        help="leave out a slow peer (ratios for it are then not printed)",
    )
    ap.add_argument(
        "--scaling",
        default="1000,10000,100000",
        help="matrix sizes of the scaling curve (comma-separated)",
    )
    args = ap.parse_args()
    n, conc = args.checks, args.concurrency
    with tempfile.TemporaryDirectory(prefix="smokegate-bench-") as tmp, NginxServer() as nginx:
        work = Path(tmp)
        url = f"{nginx.url}/json"
        print(
            f"target: {url}  checks: {n}  concurrency: {conc}  cores: {os.cpu_count()}  "
            f"cpu: {_cpu_model()}  load average at start: {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        results = {"smokegate": bench_smokegate(url, n, conc, work)}
        results["wrk"] = bench_wrk(url, n, conc)
        if "curl" not in args.skip:
            results["curl"] = bench_curl(url, n, conc)
        if "blackbox" not in args.skip:
            results["blackbox"] = bench_blackbox(url, n, conc, work)
        if "aiohttp" not in args.skip:
            results["aiohttp"] = bench_aiohttp(url, n, conc, work)
        sharded = None
        if "workers" not in args.skip:
            from workers import measure_workers  # bench/workers.py; it imports this module

            sharded = measure_workers(url, n, conc, work, workers=2, rounds=3)
        startup = cold_start()
        curve = []
        if "scaling" not in args.skip:
            for size in (int(x) for x in args.scaling.split(",")):
                curve.append((size, *run_smokegate(url, size, conc, work)))
    print()
    print(f"{'tool':<20}{'wall s':>10}{'CPU s':>10}{'checks/s':>12}{'CPU µs/check':>14}  note")
    for m in results.values():
        cpu = f"{m.cpu:.2f}" if m.cpu is not None else "-"
        per = f"{m.cpu_us_per_check:.0f}" if m.cpu_us_per_check is not None else "-"
        print(f"{m.name:<20}{m.wall:>10.3f}{cpu:>10}{m.per_second:>12,.0f}{per:>14}  {m.note}")
    print()
    print(f"smokegate_cold_start_ms={startup * 1000:.0f}")
    sg = results["smokegate"].wall
    for key in ("wrk", "curl", "blackbox", "aiohttp"):
        if key in results:
            print(f"ratio_vs_{key}={sg / results[key].wall:.3f}")
    print(f"ratio_whole_vs_engine={sg / (results['smokegate'].engine or sg):.3f}")
    if sharded is not None:
        # Medians of 3 alternated rounds (single, then -j 2), as bench/workers.py.
        print(f"smokegate_j2_wall_s={sharded.wall_workers:.3f}")
        print(f"ratio_workers_vs_single={sharded.ratio:.3f}")
        print(f"ratio_vs_wrk_j2={sharded.wall_workers / results['wrk'].wall:.3f}")
    if curve:
        print()
        print("scaling (matrix checks, one process):")
        print(f"{'checks':>8}{'wall s':>10}{'engine s':>10}{'CPU s':>10}{'peak RSS MB':>13}")
        for size, wall, cpu, rss, eng in curve:
            print(f"{size:>8}{wall:>10.3f}{eng:>10.3f}{cpu:>10.2f}{rss / 2**20:>13.0f}")
        for size, wall, _cpu, rss, _eng in curve:
            print(f"scaling_{size}_wall_s={wall:.3f} scaling_{size}_peak_rss_mb={rss / 2**20:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
