"""Helpers for the helm-test tests (not fixtures, so test modules import them directly)."""

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
from kubeenv import REPO_ROOT

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


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


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
