"""Helpers for server tests: a real ``smokegate serve`` subprocess, a tiny target service the
suites check, Flux events built exactly like notification-controller's, and stdlib HTTP."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.server
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.helpers import free_port

REPO = Path(__file__).resolve().parents[2]
SECRET = "flux-hmac-secret"
TOKEN = "api-token-123"


# --- HTTP -------------------------------------------------------------------------------------


def request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15,
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) for any status (urllib raises on >= 400; we do not)."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get_json(url: str, **kw: Any) -> Any:
    status, _, body = request("GET", url, **kw)
    assert status == 200, (status, body[:500])
    return json.loads(body)


# --- Flux events ----------------------------------------------------------------------------


def flux_event(
    name: str = "podinfo",
    namespace: str = "apps",
    reason: str = "UpgradeSucceeded",
    revision: str = "6.6.1",
    *,
    prefixed: bool = False,
    kind: str = "HelmRelease",
) -> bytes:
    """A helm-controller event as notification-controller forwards it (flux_helm.md §3.2).
    ``prefixed``: the pre-v1.5 metadata shape (``helm.toolkit.fluxcd.io/revision``)."""
    meta = {"revision": revision, "app-version": revision, "oci-digest": "sha256:" + "a" * 64}
    if prefixed:
        meta = {f"helm.toolkit.fluxcd.io/{k}": v for k, v in meta.items()}
    event = {
        "involvedObject": {
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "uid": "0c6f3bd6-4b1e-4ba1-9d0f-6a4c5e3a1b2c",
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "resourceVersion": "12345",
        },
        "severity": "info",
        "timestamp": "2024-05-07T05:02:34Z",
        "message": f"Helm upgrade succeeded for release {namespace}/{name}.v2 with chart "
        f"podinfo@{revision}",
        "reason": reason,
        "metadata": meta,
        "reportingController": "helm-controller",
        "reportingInstance": "helm-controller-7c7b47f5f-8bhrp",
    }
    # Go's json.Marshal: compact, no spaces; the signature covers exactly these bytes.
    return json.dumps(event, separators=(",", ":")).encode()


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def hook_headers(body: bytes, secret: str | None = SECRET) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "gotk-component": "helm-controller"}
    if secret is not None:
        headers["X-Signature"] = signature(body, secret)
    return headers


# --- the target the suites check ------------------------------------------------------------


class Target:
    """An HTTP service on loopback: ``/health`` answers 200 ``{"status": "ok"}`` while
    ``healthy``, else 503; ``/slow`` sleeps ``slow`` seconds first. Counts hits per path."""

    def __init__(self) -> None:
        self.healthy = True
        self.slow = 0.0
        self.hits: dict[str, int] = {}
        self.requests: list[str] = []  # every request target, query included
        self.lock = threading.Lock()
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                with target.lock:
                    target.hits[path] = target.hits.get(path, 0) + 1
                    target.requests.append(self.path)
                if path == "/slow":
                    time.sleep(target.slow)
                ok = target.healthy
                body = json.dumps({"status": "ok" if ok else "down"}).encode()
                self.send_response(200 if ok else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                # The check may have been cancelled (shutdown, crash tests): nobody is reading.
                with contextlib.suppress(OSError):
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_suites(directory: Path, target_url: str) -> Path:
    """Suite ``web`` (health check with JSON evidence, revision variable) and ``slow``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "web.yaml").write_text(
        textwrap.dedent(
            f"""\
            apiVersion: smokegate.io/v1
            kind: Suite
            metadata: {{name: web}}
            spec:
              defaults: {{timeout: 3s}}
              checks:
                - name: health
                  http:
                    url: "{target_url}/health?rev=${{release.revision}}&ns=${{release.namespace}}"
                    expect:
                      status: 200
                      json: {{"$.status": ok}}
                - name: health-again
                  http:
                    url: "{target_url}/health"
                    expect: {{status: 2xx}}
            """
        )
    )
    (directory / "slow.yaml").write_text(
        textwrap.dedent(
            f"""\
            apiVersion: smokegate.io/v1
            kind: Suite
            metadata: {{name: slow}}
            spec:
              checks:
                - name: slow
                  timeout: 60s
                  http: {{url: "{target_url}/slow", expect: {{status: 200}}}}
            """
        )
    )
    return directory


def config_text(
    port: int,
    store_url: str,
    *,
    suites_dir: str = "suites",
    extra: str = "",
    rules: str = "",
    worker: str = "",
) -> str:
    rules = rules or "  - match: {namespace: apps}\n    suites: [web]\n"
    return (
        "apiVersion: smokegate.io/v1\nkind: ServerConfig\n"
        f"listen: 127.0.0.1:{port}\n"
        f'store: {{url: "{store_url}"}}\n'
        f"suites: {{directories: [{suites_dir}]}}\n"
        f"releases:\n{rules}"
        "webhooks:\n  flux:\n    secrets: [{env: SG_TEST_WEBHOOK_SECRET}]\n"
        "api: {token: {env: SG_TEST_API_TOKEN}}\n"
        f"worker: {{poll_interval: 200ms, lease: 3s, shutdown_grace: 2s{worker}}}\n"
        "dashboard: {refresh: 0}\n" + extra
    )


# --- the server process -----------------------------------------------------------------------


class ServeProcess:
    """``python -m smokegate serve --config …`` as a user (or a pod) runs it."""

    def __init__(self, workdir: Path, config: str, *, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "serve.yaml"
        self.config_path.write_text(config)
        self.log_path = workdir / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def for_store(cls, workdir: Path, store_url: str, **kw: Any) -> ServeProcess:
        port = free_port()
        return cls(workdir, config_text(port, store_url, **kw), port=port)

    def start(self, timeout: float = 30) -> ServeProcess:
        env = {
            **os.environ,
            "SG_TEST_WEBHOOK_SECRET": SECRET,
            "SG_TEST_API_TOKEN": TOKEN,
            "PYTHONPATH": str(REPO / "src"),
        }
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "smokegate",
                    "serve",
                    "--config",
                    str(self.config_path),
                ],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}:\n{self.log}")
            try:
                if request("GET", self.url + "/readyz", timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"serve not ready within {timeout}s:\n{self.log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        proc, self.proc = self.proc, None
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    # --- API shortcuts -------------------------------------------------------------------------

    def post_hook(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        status, _, raw = request(
            "POST",
            self.url + "/hooks/flux",
            body,
            hook_headers(body) if headers is None else headers,
        )
        return status, json.loads(raw) if raw.startswith(b"{") else raw

    def runs(self, release: str | None = None) -> list[dict[str, Any]]:
        q = f"&release={release}" if release else ""
        return get_json(self.url + "/api/v1/runs?limit=1000" + q)["items"]

    def wait_for_runs(self, n: int, release: str | None = None, timeout: float = 30) -> list[Any]:
        deadline = time.monotonic() + timeout
        runs: list[Any] = []
        while time.monotonic() < deadline:
            runs = self.runs(release)
            if len(runs) >= n:
                return runs
            time.sleep(0.1)
        raise AssertionError(f"expected {n} runs, have {len(runs)}:\n{self.log[-3000:]}")

    def wait_idle(self, timeout: float = 30) -> None:
        """Until the queue is empty (nothing queued or running)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = request("GET", self.url + "/metrics")[2].decode()
            depth = {
                line.split('"')[1]: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("smokegate_queue_depth{")
            }
            if depth and not any(depth.values()):
                return
            time.sleep(0.2)
        raise AssertionError(f"queue not idle:\n{self.log[-3000:]}")
