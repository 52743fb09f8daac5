"""`smokegate validate` on a generated GitOps repository of N HelmReleases (default 50) of the
`helm create` chart, against the same rendering done by a shell loop.

    .venv/bin/python bench/premerge.py [--releases N] [--repeat R]

Contenders (each a whole process, start-up included; best of R runs):
* floor: `for i ...; do helm template ... > /dev/null; done`, the shell loop a CI job runs:
  the same N renders, with the same values, and no validation at all;
* floor, parallel: the same renders through `xargs -P <cores>`, the best a script can do;
* smokegate validate: kustomize build, values merge, N renders in parallel, schema validation
  of every built and rendered object, suite lint.

kubeconform (the usual `helm template | kubeconform` validator) is not installable here: it is
in neither Debian, PyPI nor npm, and no other download is reachable, so the loop without
validation is the floor. Output: a table and ``ratio_vs_floor=`` / ``ratio_vs_parallel_floor=``
(smokegate's wall time over the floor's; the target is at most 1.5).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.premerge import gitops  # noqa: E402

HR = """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: app-{i:02d}
  namespace: team-{i:02d}
spec:
  interval: 10m
  chart:
    spec:
      chart: ./charts/app
      sourceRef: {{kind: GitRepository, name: flux-system, namespace: flux-system}}
  values:
    replicaCount: {replicas}
    image: {{tag: "1.{i}.0"}}
    service: {{port: {port}}}
"""

VALUES = """replicaCount: {replicas}
image: {{tag: "1.{i}.0"}}
service: {{port: {port}}}
"""

KS = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 10m
  prune: true
  path: ./apps
  sourceRef: {kind: GitRepository, name: flux-system}
"""


def generate(root: Path, n: int) -> Path:
    (root / "charts").mkdir(parents=True)
    gitops.helm("create", "app", cwd=root / "charts")
    gitops.write(root, "clusters/bench/apps.yaml", KS)
    values = root.parent / "values"
    values.mkdir()
    resources = []
    for i in range(n):
        args = {"i": i, "replicas": 1 + i % 3, "port": 8000 + i}
        gitops.write(root, f"apps/app-{i:02d}.yaml", HR.format(**args))
        (values / f"app-{i:02d}.yaml").write_text(VALUES.format(**args))
        resources.append(f"  - app-{i:02d}.yaml")
    gitops.write(root, "apps/kustomization.yaml", "resources:\n" + "\n".join(resources) + "\n")
    return values


def best_of(repeat: int, argv: list[str] | str, *, shell: bool = False) -> tuple[float, float]:
    """(best wall seconds, CPU seconds of that run, children included)."""
    times = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run(argv, shell=shell, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        times.append((wall, cpu))
        if proc.returncode not in (0,):
            raise SystemExit(
                f"{argv!r} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--releases", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    bin_dir = gitops.ensure_tools()
    helm = str(bin_dir / "helm")
    smokegate = str(Path(sys.executable).parent / "smokegate")
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="smokegate-bench-") as tmp:
        root = Path(tmp) / "repo"
        values = generate(root, args.releases)
        chart = root / "charts" / "app"
        names = [f"app-{i:02d}" for i in range(args.releases)]
        loop = "; ".join(
            f"{helm} template {n} {chart} --namespace team-{n[4:]} --values {values}/{n}.yaml "
            "--skip-tests > /dev/null"
            for n in names
        )
        floor = best_of(args.repeat, loop, shell=True)
        parallel = best_of(
            args.repeat,
            f"printf '%s\\n' {' '.join(names)} | xargs -P {cores} -I{{}} sh -c "
            f"'{helm} template {{}} {chart} --values {values}/{{}}.yaml --skip-tests > /dev/null'",
            shell=True,
        )
        validate = best_of(args.repeat, [smokegate, "validate", str(root), "--no-pull", "-q"])
        out = (
            subprocess.run(
                [smokegate, "validate", str(root), "--no-pull", "-q"],
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
    print(
        f"{args.releases} HelmReleases x `helm create` chart, {cores} cores, best of {args.repeat}"
    )
    print("kubeconform: not installable here (not in Debian, PyPI or npm): floor = helm template")
    print()
    print(f"{'contender':<40}{'wall s':>10}{'CPU s':>10}")
    for label, (wall, cpu) in (
        ("helm template loop (floor)", floor),
        (f"helm template, xargs -P {cores}", parallel),
        ("smokegate validate", validate),
    ):
        print(f"{label:<40}{wall:>10.2f}{cpu:>10.2f}")
    print()
    print(f"smokegate: {out}")
    print(f"ratio_vs_floor={validate[0] / floor[0]:.3f}")
    print(f"ratio_vs_parallel_floor={validate[0] / parallel[0]:.3f}")
    print(f"cpu_ratio_vs_floor={validate[1] / floor[1]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
