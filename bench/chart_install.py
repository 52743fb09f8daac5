"""How long `helm install` of deploy/chart/smokegate takes on the test apiserver (real helm v4,
real kube-apiserver + etcd on loopback: tests/kube/kubeenv.py), per value set.

    .venv/bin/python bench/chart_install.py [--runs 5]

Each run installs into a fresh namespace without --wait (nothing runs the pods here: there is no
kubelet), i.e. the time helm needs to render, validate against values.schema.json, and create
every object through the API. Prints the median, min and max per value set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "kube"))

from kubeenv import KubeEnv, ensure_binaries  # noqa: E402

CHART = ROOT / "deploy" / "chart" / "smokegate"
VALUE_SETS = {
    "defaults (every namespace)": ["-f", str(CHART / "ci" / "default-values.yaml")],
    "3 replicas, PostgreSQL, Lease": ["-f", str(CHART / "ci" / "ha-postgres-values.yaml")],
    "two namespaces, suites, PVC": ["-f", str(CHART / "ci" / "namespaced-values.yaml")],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = KubeEnv()
    if env.missing_binaries():
        ensure_binaries(env.bin_dir)
    with tempfile.TemporaryDirectory(prefix="chart-bench-") as work:
        env.start(work)
        try:
            env.apply_crd()
            for ns in ("apps", "shop"):  # the namespaced value set's Roles live there
                env.kubectl("create", "namespace", ns)
            helm_env = {
                **os.environ,
                "KUBECONFIG": str(env.kubeconfig),
                "HELM_CACHE_HOME": f"{work}/helm-cache",
                "HELM_CONFIG_HOME": f"{work}/helm-config",
                "HELM_DATA_HOME": f"{work}/helm-data",
            }
            print(f"helm install of {CHART.relative_to(ROOT)}, {args.runs} runs each")
            for label, values in VALUE_SETS.items():
                times = []
                for i in range(args.runs):
                    ns = f"bench-{len(times)}-{abs(hash(label)) % 10000}-{i}"
                    env.kubectl("create", "namespace", ns)
                    t0 = time.perf_counter()
                    r = subprocess.run(
                        [str(env.helm_path), "install", "sg", str(CHART), "-n", ns, *values],
                        env=helm_env, capture_output=True, text=True,
                    )  # fmt: skip
                    times.append(time.perf_counter() - t0)
                    if r.returncode != 0:
                        print(r.stderr, file=sys.stderr)
                        return 1
                    # Roles in apps/shop are per release name: uninstall before the next run.
                    subprocess.run(
                        [str(env.helm_path), "uninstall", "sg", "-n", ns],
                        env=helm_env, capture_output=True,
                    )  # fmt: skip
                print(
                    f"  {label:32} median {statistics.median(times):.2f}s "
                    f"(min {min(times):.2f}s, max {max(times):.2f}s)"
                )
        finally:
            env.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
