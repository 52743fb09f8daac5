"""Helpers for the ``run --in-cluster`` tests (not fixtures, so test modules import them).

``Cluster`` (the ``cluster`` fixture) is one scenario's namespace: the ServiceAccounts and the
objects the suites read, ``smokegate run --in-cluster`` against it (to completion or in the
background, to interrupt it), and what is left in it afterwards, every namespaced kind listed.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helmtest_cluster import Api
from incluster_kubelet import RunnerActors
from kubeenv import REPO_ROOT, KubeEnv
from tests.helpers import CliResult

RBAC = REPO_ROOT / "deploy" / "rbac"
DB_PASSWORD = "pw-8812-NeverShown"  # the Secret's value: must appear in no output


@functools.cache
def namespaced_kinds(kubectl: str, kubeconfig: str) -> tuple[str, ...]:
    """Every namespaced kind the apiserver can list (discovery, as ``kubectl api-resources``)."""
    out = subprocess.run(
        [kubectl, f"--kubeconfig={kubeconfig}", "api-resources", "--namespaced=true",
         "--verbs=list", "-o", "name"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return tuple(sorted(set(out.split())))


def cli_env() -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    env.pop("KUBECONFIG", None)
    return env


@dataclass
class Background:
    proc: subprocess.Popen[str]
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def signal(self, sig: int = signal.SIGINT) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = 90) -> CliResult:
        code = self.proc.wait(timeout=timeout)
        for t in self.threads:
            t.join(5)
        return CliResult(code, "".join(self.out), "".join(self.err))

    def output_so_far(self) -> str:
        return "".join(self.out)


@dataclass
class Reported(CliResult):
    report: Any = None

    @property
    def results(self) -> dict[str, dict[str, Any]]:
        return {r["id"]: r for r in self.report["results"]}


@dataclass
class Cluster:
    name: str
    kube_env: KubeEnv
    api: Api
    actors: RunnerActors
    tmp_path: Path
    baseline: set[str] = field(default_factory=set)

    @property
    def kubeconfig(self) -> Path:
        assert self.kube_env.kubeconfig is not None
        return self.kube_env.kubeconfig

    @property
    def report_path(self) -> Path:
        return self.tmp_path / "report.json"

    def kubectl(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.kube_env.kubectl(*args, **kw)

    def setup(self) -> Cluster:
        """What a real namespace has (the ServiceAccount controller's ``default``) and what the
        suites read: ServiceAccount ``smokegate`` bound to deploy/rbac/role.yaml, Secret ``db``,
        ConfigMap ``settings``. Then the baseline every "nothing left" compares against."""
        ns = self.name
        self.kubectl("create", "serviceaccount", "default", "-n", ns)
        self.service_account("smokegate", role_file="role.yaml", role_name="smokegate")
        self.kubectl("create", "secret", "generic", "db", "-n", ns,
                     f"--from-literal=password={DB_PASSWORD}")  # fmt: skip
        self.kubectl("create", "configmap", "settings", "-n", ns, "--from-literal=mode=blue")
        self.baseline = self.objects()
        return self

    def service_account(self, name: str, *, role_file: str | None, role_name: str = "") -> None:
        """ServiceAccount ``name``, bound to the Role in deploy/rbac/``role_file`` if given."""
        ns = self.name
        self.kubectl("create", "serviceaccount", name, "-n", ns)
        if role_file:
            self.kubectl("apply", "-n", ns, "-f", str(RBAC / role_file))
            self.kubectl("create", "rolebinding", f"{name}-{role_name}", "-n", ns,
                         f"--role={role_name}", f"--serviceaccount={ns}:{name}")  # fmt: skip

    # --- what is there ------------------------------------------------------------------------

    def objects(self) -> set[str]:
        """Every object of every namespaced kind in the namespace, as ``kind/name``."""
        kinds = namespaced_kinds(str(self.kube_env.kubectl_path), str(self.kubeconfig))
        items = self.kube_env.kubectl_json("get", ",".join(kinds), "-n", self.name)["items"]
        return {f"{i['kind']}/{i['metadata']['name']}" for i in items}

    def left(self) -> list[str]:
        """What the run added to the namespace and did not delete: ``[]`` after every run."""
        return sorted(self.objects() - self.baseline)

    # --- running smokegate ----------------------------------------------------------------------

    def suite(self, text: str, name: str = "suite.yaml") -> Path:
        path = self.tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def argv(self, *args: str, kubeconfig: Path | None = None) -> list[str]:
        return [sys.executable, "-m", "smokegate", "run", "--in-cluster", "-n", self.name,
                "--kubeconfig", str(kubeconfig or self.kubeconfig), *args]  # fmt: skip

    def run(
        self,
        *args: str,
        code: int,
        kubeconfig: Path | None = None,
        report: bool = True,
        env_extra: dict[str, str] | None = None,
    ) -> Reported:
        """``smokegate run --in-cluster -n NS ARGS`` from ``tmp_path`` (so relative suite paths
        are as a user types them), with a JSON report read back; asserts the exit code."""
        reports = ["--report", f"json={self.report_path}"] if report else []
        if report and self.report_path.exists():
            self.report_path.unlink()
        proc = subprocess.run(
            self.argv(*args, *reports, kubeconfig=kubeconfig),
            capture_output=True, text=True, env={**cli_env(), **(env_extra or {})},
            cwd=self.tmp_path, timeout=180,
        )  # fmt: skip
        r = Reported(proc.returncode, proc.stdout, proc.stderr)
        assert r.code == code, r.text
        if report and self.report_path.exists():
            r.report = json.loads(self.report_path.read_text())
        return r

    def start(self, *args: str) -> Background:
        proc = subprocess.Popen(
            self.argv(*args, "--report", f"json={self.report_path}"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            text=True, env=cli_env(), cwd=self.tmp_path,
        )  # fmt: skip
        bg = Background(proc)
        for stream, sink in ((proc.stdout, bg.out), (proc.stderr, bg.err)):
            t = threading.Thread(target=lambda s=stream, k=sink: k.extend(s), daemon=True)
            t.start()
            bg.threads.append(t)
        return bg

    def report(self) -> Any:
        return json.loads(self.report_path.read_text())


def wait_for(predicate: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
