"""Helpers for the helm-test tests (not fixtures, so test modules import them directly).

``Namespace`` (the ``ns`` fixture) is the scaffolding every scenario shares: install the chart,
run ``smokegate helm-test`` with a JSON report and check its exit code, look at what is left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from helmtest_cluster import Api
from kubeenv import REPO_ROOT, KubeEnv
from tests.helpers import CliResult as Result
from tests.helpers import run_cli, write_suite

RUN_LABEL = "smokegate.io/helm-test-run"


# --- helm --------------------------------------------------------------------------------------


@dataclass
class Helm:
    path: Path
    kubeconfig: Path
    home: Path

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        r = subprocess.run(
            [str(self.path), *args], capture_output=True, text=True, env=env, timeout=120
        )
        if check and r.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} exited {r.returncode}:\n{r.stderr}")
        return r


# --- test hooks ----------------------------------------------------------------------------------


def pod_hook(
    name: str,
    script: str,
    *,
    weight: int | None = None,
    delete_policy: str | None = None,
    init_script: str | None = None,
) -> str:
    """A ``helm.sh/hook: test`` Pod whose container runs ``script`` (the stand-in kubelet runs
    it with /bin/sh, so its output is the pod's log and its exit code the verdict)."""
    annotations = {"helm.sh/hook": "test"}
    if weight is not None:
        annotations["helm.sh/hook-weight"] = str(weight)
    if delete_policy:
        annotations["helm.sh/hook-delete-policy"] = delete_policy
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [{"name": "test", "image": "busybox", "command": ["sh", "-c", script]}],
    }
    if init_script:
        spec["initContainers"] = [
            {"name": "wait", "image": "busybox", "command": ["sh", "-c", init_script]}
        ]
    return _manifest("v1", "Pod", name, annotations, spec)


def job_hook(
    name: str, script: str, *, weight: int | None = None, delete_policy: str | None = None
) -> str:
    annotations = {"helm.sh/hook": "test"}
    if weight is not None:
        annotations["helm.sh/hook-weight"] = str(weight)
    if delete_policy:
        annotations["helm.sh/hook-delete-policy"] = delete_policy
    spec = {
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": 0,
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {"name": "test", "image": "busybox", "command": ["sh", "-c", script]}
                ],
            }
        },
    }
    return _manifest("batch/v1", "Job", name, annotations, spec)


def _manifest(api_version: str, kind: str, name: str, annotations: dict, spec: dict) -> str:
    # The name goes through the chart's helper like helm create's own test does (single-quoted
    # YAML leaves the template's double quotes alone).
    body = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": f'{{{{ include "myapp.fullname" . }}}}-{name}',
            "labels": {"app.kubernetes.io/instance": "{{ .Release.Name }}"},
            "annotations": annotations,
        },
        "spec": spec,
    }
    return yaml.safe_dump(body, sort_keys=False, width=1000)


# The acceptance chart: `helm create myapp` (its own Pod hook `myapp-test-connection`, weight 0)
# plus a failing Pod hook (weight 1) and a Job hook (weight 2) whose delete policy is
# hook-succeeded, the policy that makes `helm test --logs` lose logs (helm/helm#9098).
ORDERS_LOG = "orders API returned 503 Service Unavailable"
DB_LOG = "schema at migration 0042: ok"
THREE_HOOKS = {
    "test-orders.yaml": pod_hook(
        "test-orders",
        f"echo 'GET http://myapp/api/orders'; echo '{ORDERS_LOG}' >&2; exit 1",
        weight=1,
    ),
    "test-db.yaml": job_hook(
        "test-db",
        f"echo 'checking schema version'; echo '{DB_LOG}'",
        weight=2,
        delete_policy="hook-succeeded",
    ),
}


# --- running smokegate ---------------------------------------------------------------------------


def cli_env() -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    env.pop("KUBECONFIG", None)
    return env


def helm_test(kubeconfig: Path | str, *args: str, timeout: float = 120) -> Result:
    """``smokegate helm-test ARGS`` (through the subcommand's own entry point) as a subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "smokegate", "helm-test", *args, "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=REPO_ROOT,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class Background:
    proc: subprocess.Popen[str]
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def signal(self, sig: int = signal.SIGINT) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = 60) -> Result:
        code = self.proc.wait(timeout=timeout)
        for t in self.threads:
            t.join(5)
        return Result(code, "".join(self.out), "".join(self.err))


def helm_test_background(kubeconfig: Path | str, *args: str) -> Background:
    proc = subprocess.Popen(
        [sys.executable, "-m", "smokegate", "helm-test", *args, "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=cli_env(),
        cwd=REPO_ROOT,
    )
    bg = Background(proc)
    for stream, sink in ((proc.stdout, bg.out), (proc.stderr, bg.err)):
        t = threading.Thread(target=lambda s=stream, k=sink: k.extend(s), daemon=True)
        t.start()
        bg.threads.append(t)
    return bg


# --- what is left in the cluster -----------------------------------------------------------------


def smokegate_objects(api: Api, namespace: str) -> list[str]:
    """Every Pod, Job and ConfigMap in ``namespace`` that smokegate created (by its run label)."""
    found = []
    for kind, path in (
        ("pod", f"/api/v1/namespaces/{namespace}/pods"),
        ("job", f"/apis/batch/v1/namespaces/{namespace}/jobs"),
        ("configmap", f"/api/v1/namespaces/{namespace}/configmaps"),
    ):
        items = api.get(f"{path}?labelSelector={RUN_LABEL}")["items"]
        found += [f"{kind}/{i['metadata']['name']}" for i in items]
    return found


def wait_for(predicate: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def running_smokegate_pods(api: Api, namespace: str) -> list[dict[str, Any]]:
    pods = api.get(f"/api/v1/namespaces/{namespace}/pods?labelSelector={RUN_LABEL}")["items"]
    return [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]


def load_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def results_by_name(report: Any) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in report["results"]}


# --- Flux ----------------------------------------------------------------------------------------


def helm_release(namespace: str, test: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """A Flux HelmRelease ``myapp`` of the chart ``myapp``, with ``spec.test`` = ``test`` and any
    other ``spec`` fields (``targetNamespace=…``)."""
    source = {"kind": "HelmRepository", "name": "charts"}
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "myapp", "namespace": namespace},
        "spec": {
            "interval": "5m",
            **spec,
            "chart": {"spec": {"chart": "myapp", "sourceRef": source}},
            "test": test,
        },
    }


# --- one scenario's namespace --------------------------------------------------------------------


@dataclass
class Reported(Result):
    """A run's console output and exit code, with the JSON report it wrote."""

    report: Any = None
    junit: Path | None = None

    @property
    def results(self) -> dict[str, dict[str, Any]]:
        return results_by_name(self.report)


@dataclass
class Namespace:
    """The namespace a scenario runs in (the ``ns`` fixture): the chart installed there, the
    ``smokegate helm-test`` runs against it, and the smokegate objects left in it."""

    name: str
    kube_env: KubeEnv
    api: Api
    helm: Helm
    make_chart: Callable[..., Path]
    kubeconfig: Path
    tmp_path: Path

    @property
    def report_path(self) -> Path:
        return self.tmp_path / "report.json"

    def report(self) -> Any:
        """The JSON report the last run wrote."""
        return load_json(self.report_path)

    def install(
        self,
        hooks: dict[str, str],
        *helm_args: str,
        keep_default: bool = True,
        release: str = "myapp",
        namespace: str | None = None,
    ) -> None:
        """``helm install`` of ``helm create myapp`` plus ``hooks`` (``make_chart``), here
        unless ``namespace`` says otherwise."""
        chart = self.make_chart(hooks, keep_default=keep_default)
        self.helm("install", release, str(chart), "-n", namespace or self.name, *helm_args)

    def helm_test(self, *args: str, code: int | None = None) -> Result:
        """``smokegate helm-test ARGS -n NAME``; with ``code``, asserts the exit code."""
        r = helm_test(self.kubeconfig, *args, "-n", self.name)
        if code is not None:
            assert r.code == code, r.text
        return r

    def run(self, *args: str, code: int, junit: bool = False) -> Reported:
        """``helm_test`` with a JSON report (and a JUnit one if ``junit``), read back."""
        reports = ["--report", f"json={self.report_path}"]
        junit_path = self.tmp_path / "junit.xml" if junit else None
        if junit_path:
            reports += ["--report", f"junit={junit_path}"]
        r = self.helm_test(*args, *reports, code=code)
        return Reported(r.code, r.out, r.err, self.report(), junit_path)

    def start(self, *args: str, report: bool = False) -> Background:
        """``helm_test`` in the background (to interrupt it), with a JSON report if ``report``."""
        reports = ["--report", f"json={self.report_path}"] if report else []
        return helm_test_background(self.kubeconfig, *args, *reports, "-n", self.name)

    def run_suite(self, checks_yaml: str, *, code: int) -> Reported:
        """``smokegate run`` of a suite of these checks against this namespace."""
        suite = write_suite(self.tmp_path, checks_yaml)
        r = run_cli("run", str(suite), "-n", self.name, "--kubeconfig", str(self.kubeconfig),
                    "--report", f"json={self.report_path}")  # fmt: skip
        assert r.code == code, r.text
        return Reported(r.code, r.out, r.err, self.report())

    def apply(self, obj: dict[str, Any]) -> None:
        self.kube_env.kubectl("apply", "-f", "-", input=json.dumps(obj))

    def wait_for_running_pods(self, count: int) -> None:
        wait_for(
            lambda: len(running_smokegate_pods(self.api, self.name)) >= count,
            what=f"{count} running test pods",
        )

    def left(self, namespace: str | None = None) -> list[str]:
        """The smokegate objects left here (or in ``namespace``): ``[]`` after every scenario."""
        return smokegate_objects(self.api, namespace or self.name)
