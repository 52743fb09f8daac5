"""Helpers and fixtures for tests that play Flux helm-controller (and the kubelet) against the
real test apiserver.

There is no controller in the test environment: tests write HelmRelease (and Deployment, Pod…)
``status`` through the status subresource, exactly as the controllers do, with the condition
shapes helm-controller v1.x (API v2) writes. Import the fixtures you use into the test module
(they register under the names ``kubeconfig`` and ``notify_server``)::

    from fixtures_flux import kubeconfig_fixture, notify_server_fixture  # noqa: F401
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubeenv import KubeEnv

T0 = "2025-01-01T00:00:00Z"
REPO = Path(__file__).resolve().parents[2]


# --- objects -----------------------------------------------------------------------------------


def helmrelease(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "interval": "5m",
            "chart": {
                "spec": {
                    "chart": "podinfo",
                    "version": "6.x",
                    "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
                }
            },
            **spec,
        },
    }


def apply(env: KubeEnv, obj: dict[str, Any]) -> dict[str, Any]:
    env.kubectl("apply", "-f", "-", input=json.dumps(obj))
    meta = obj["metadata"]
    args = ["get", f"{obj['kind'].lower()}", meta["name"]]
    if meta.get("namespace"):
        args += ["-n", meta["namespace"]]
    return env.kubectl_json(*args)


def patch_status(env: KubeEnv, resource: str, name: str, ns: str, status: dict[str, Any]) -> None:
    """What a controller does: write ``status`` through the status subresource (a JSON merge
    patch: lists such as ``conditions`` are replaced whole)."""
    env.kubectl(
        "patch",
        resource,
        name,
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def cond(
    type_: str, status: str, reason: str, message: str = "", generation: int = 1
) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": T0,
    }


def snapshot(name: str, ns: str, chart_version: str, *, version: int = 1, **extra: Any) -> dict:
    """One ``status.history`` entry (api/v2 ``Snapshot``)."""
    return {
        "name": name,
        "namespace": ns,
        "version": version,
        "status": "deployed",
        "action": "upgrade" if version > 1 else "install",
        "chartName": "podinfo",
        "chartVersion": chart_version,
        "appVersion": chart_version.split("+")[0],
        "configDigest": "sha256:" + "c" * 64,
        "digest": "sha256:" + "d" * 64,
        "firstDeployed": T0,
        "lastDeployed": T0,
        **extra,
    }


def status_reconciling(generation: int, revision: str, previous: dict | None = None) -> dict:
    """helm-controller mid-upgrade: Ready=Unknown/Progressing, Reconciling=True. The previous
    generation stays in observedGeneration until the reconcile ends."""
    msg = "Running 'upgrade' action with timeout of 5m0s"
    return {
        "observedGeneration": generation - 1,
        "lastAttemptedRevision": revision,
        "conditions": [
            cond("Reconciling", "True", "Progressing", msg, generation),
            cond("Ready", "Unknown", "Progressing", msg, generation),
        ],
        "history": [previous] if previous else [],
    }


def status_ready(
    name: str,
    ns: str,
    generation: int,
    revision: str,
    *,
    version: int = 2,
    test_hooks: dict | None = None,
    test_success: bool | None = None,
) -> dict:
    """helm-controller after a successful upgrade (and Helm tests, when given)."""
    conditions = [
        cond(
            "Ready",
            "True",
            "UpgradeSucceeded",
            f"Helm upgrade succeeded for release {ns}/{name}.v{version} with chart "
            f"podinfo@{revision}",
            generation,
        ),
        cond("Released", "True", "UpgradeSucceeded", "Helm upgrade succeeded", generation),
    ]
    if test_success is not None:
        conditions.append(
            cond(
                "TestSuccess",
                "True" if test_success else "False",
                "TestSucceeded" if test_success else "TestFailed",
                "Helm test succeeded" if test_success else "Helm test failed: pod failed",
                generation,
            )
        )
    extra = {"testHooks": test_hooks} if test_hooks is not None else {}
    return {
        "observedGeneration": generation,
        "lastAttemptedRevision": revision,
        "lastAttemptedReleaseAction": "upgrade",
        "conditions": conditions,
        "history": [snapshot(name, ns, revision, version=version, **extra)],
    }


def status_upgrade_failed(name: str, ns: str, generation: int, revision: str) -> dict:
    msg = (
        f"Helm upgrade failed for release {ns}/{name} with chart podinfo@{revision}: "
        "context deadline exceeded"
    )
    return {
        "observedGeneration": generation,
        "lastAttemptedRevision": revision,
        "failures": 1,
        "upgradeFailures": 1,
        "conditions": [
            cond("Ready", "False", "UpgradeFailed", msg, generation),
            cond("Released", "False", "UpgradeFailed", msg, generation),
        ],
        "history": [snapshot(name, ns, "6.6.1", version=1)],
    }


# --- the CLI ---------------------------------------------------------------------------------


@pytest.fixture(name="kubeconfig")
def kubeconfig_fixture(kube_env: KubeEnv) -> str:
    assert kube_env.kubeconfig is not None
    return str(kube_env.kubeconfig)


@dataclass
class Background:
    """A ``smokegate`` process running while the test plays the controller."""

    proc: subprocess.Popen[str]
    started: float
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def wait_for_stderr(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in list(self.err)):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"{text!r} never appeared on stderr:\n{''.join(self.err)}")

    def finish(self, timeout: float = 60) -> tuple[int, str, str, float]:
        code = self.proc.wait(timeout=timeout)
        ended = time.monotonic()
        for t in self._threads:
            t.join(5)
        return code, "".join(self.out), "".join(self.err), ended


def start_cli(*args: str) -> Background:
    """Like ``tests.helpers.run_cli`` but in the background, output collected line by line."""
    import os

    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "smokegate", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=REPO,
    )
    bg = Background(proc, time.monotonic())

    def pump(stream: Any, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)

    for stream, sink in ((proc.stdout, bg.out), (proc.stderr, bg.err)):
        t = threading.Thread(target=pump, args=(stream, sink), daemon=True)
        t.start()
        bg._threads.append(t)
    return bg


# --- a stand-in for Flux's notification-controller ---------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class NotifyServer:
    url: str
    received: list[Received]
    status: list[int]


@pytest.fixture(name="notify_server")
def notify_server_fixture() -> Iterator[NotifyServer]:
    """A real HTTP server on loopback that records every POST (answers ``status[0]``, default
    202 as the notification-controller does)."""
    received: list[Received] = []
    status = [202]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            received.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            self.send_response(status[0])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield NotifyServer(f"http://127.0.0.1:{server.server_address[1]}/", received, status)
    finally:
        server.shutdown()
        server.server_close()


def events_for(env: KubeEnv, ns: str, name: str, kind: str = "HelmRelease") -> list[dict]:
    got = env.kubectl_json(
        "get",
        "events",
        "-n",
        ns,
        f"--field-selector=involvedObject.name={name},involvedObject.kind={kind}",
    )
    return got["items"]


def write_kubeconfig_for_token(env: KubeEnv, path: Path, token: str, namespace: str) -> Path:
    """A kubeconfig for the test apiserver that authenticates with ``token`` (a service account's,
    from the TokenRequest API), as a CI job would have."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "test", "cluster": {"server": env.server, "insecure-skip-tls-verify": True}}
        ],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [
            {"name": "sa", "context": {"cluster": "test", "user": "sa", "namespace": namespace}}
        ],
        "current-context": "sa",
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path
