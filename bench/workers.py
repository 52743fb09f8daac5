"""``smokegate run -j N`` against the single-process run: the 10,000-check matrix bench of
bench/run.py (same suite, same nginx, same concurrency), both whole processes, alternated in
one run so that both see the same machine load.

    .venv/bin/python bench/workers.py [--checks N] [--concurrency C] [--workers 2] [--rounds 3]

Prints each round, then ``wall_single_s=``, ``wall_workers_s=`` (medians) and
``ratio_workers_vs_single=`` (target ≤ 0.65 on 2 cores), plus what handing a worker its shard
costs three ways (``--costs``): forking after the plan (what ``app.shard`` does), re-planning the
suites in the worker (a spawned worker), pickling the compiled checks to it.

For bench/run.py: ``measure_workers(url, n, conc, work, workers=2, rounds=3)`` returns the
``WorkersMeasurement`` (the medians and the ratio).
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import bench_smokegate, timed  # noqa: E402  (bench/run.py: the suite and the timer)
from tests.servers.nginx import NginxServer  # noqa: E402


@dataclass
class WorkersMeasurement:
    workers: int
    single: list[float] = field(default_factory=list)
    sharded: list[float] = field(default_factory=list)
    single_cpu: list[float] = field(default_factory=list)
    sharded_cpu: list[float] = field(default_factory=list)

    @property
    def wall_single(self) -> float:
        return statistics.median(self.single)

    @property
    def wall_workers(self) -> float:
        return statistics.median(self.sharded)

    @property
    def ratio(self) -> float:
        return self.wall_workers / self.wall_single


def _run_sharded(suite: Path, n: int, conc: int, workers: int) -> tuple[float, float]:
    exe = str(Path(sys.executable).with_name("smokegate"))
    cmd = [exe, "run", str(suite), "-c", str(conc), "-j", str(workers), "-q", "--no-color"]
    wall, cpu, proc = timed(cmd)
    passed = re.search(r"PASSED (\d+) passed", proc.stdout)
    if proc.returncode != 0 or not passed or int(passed.group(1)) != n:
        raise SystemExit(
            f"smokegate run -j {workers} failed ({proc.returncode}):\n{proc.stdout[-2000:]}"
            f"\n{proc.stderr[-2000:]}"
        )
    return wall, cpu


def measure_workers(
    url: str, n: int, conc: int, work: Path, *, workers: int = 2, rounds: int = 3
) -> WorkersMeasurement:
    """``rounds`` × (single process, then ``-j workers``) on bench/run.py's suite."""
    m = WorkersMeasurement(workers)
    suite = work / f"bench-suite-{n}.yaml"  # written by bench_smokegate
    for r in range(rounds):
        single = bench_smokegate(url, n, conc, work)
        m.single.append(single.wall)
        m.single_cpu.append(single.cpu or 0.0)
        wall, cpu = _run_sharded(suite, n, conc, workers)
        m.sharded.append(wall)
        m.sharded_cpu.append(cpu)
        print(
            f"round {r + 1}: single {single.wall:.3f} s (CPU {single.cpu:.2f} s)  "
            f"-j {workers} {wall:.3f} s (CPU {cpu:.2f} s)",
            flush=True,
        )
    return m


def handoff_costs(suite: Path, workers: int) -> dict[str, float]:
    """Seconds to give ``workers`` processes their shards of the plan, three ways."""
    from smokegate.api import plan_run

    t0 = time.perf_counter()
    plan = plan_run([str(suite)])
    replan = time.perf_counter() - t0  # what every spawned worker would do again
    t0 = time.perf_counter()
    for s in range(workers):
        pickle.loads(pickle.dumps(plan.checks[s::workers], pickle.HIGHEST_PROTOCOL))
    pickled = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            # What a forked worker touches first: every check of its shard (copy-on-write).
            sum(len(c.id) for c in plan.checks)
            os._exit(0)
        os.waitpid(pid, 0)
    forked = time.perf_counter() - t0
    return {"fork": forked, "replan": replan, "pickle": pickled}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checks", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--costs", action="store_true", help="also measure the shard hand-off")
    args = ap.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="smokegate-bench-") as tmp,
        NginxServer(worker_processes=1) as nginx,
    ):
        work = Path(tmp)
        url = f"{nginx.url}/json"
        print(
            f"target: {url}  checks: {args.checks}  concurrency: {args.concurrency}  "
            f"cores: {len(os.sched_getaffinity(0))}  load: {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        m = measure_workers(
            url, args.checks, args.concurrency, work, workers=args.workers, rounds=args.rounds
        )
        costs = (
            handoff_costs(work / f"bench-suite-{args.checks}.yaml", args.workers)
            if args.costs
            else {}
        )
    print()
    print(f"wall_single_s={m.wall_single:.3f}")
    print(f"wall_workers_s={m.wall_workers:.3f}")
    print(f"cpu_single_s={statistics.median(m.single_cpu):.2f}")
    print(f"cpu_workers_s={statistics.median(m.sharded_cpu):.2f}")
    print(f"ratio_workers_vs_single={m.ratio:.3f}")
    for way, seconds in costs.items():
        print(f"handoff_{way}_s={seconds:.3f}")
    print(f"load_after={os.getloadavg()[0]:.2f}  (a shared machine: compare ratios, not walls)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
