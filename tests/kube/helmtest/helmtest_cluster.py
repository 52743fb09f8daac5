"""The parts of a cluster the test environment lacks, played by the test through the real API.

The test apiserver (tests/kube/kubeenv.py) runs no scheduler, no kubelet and no job controller,
so nothing would ever happen to a test pod. ``ClusterActors`` plays all three for one namespace,
writing through the real kube-apiserver exactly what those components write:

* **job controller**: for every new Job, create one Pod from ``spec.template`` with the labels
  the real controller adds (the template already carries ``controller-uid``/``job-name`` from
  the apiserver's selector generation) and an ownerReference to the Job; once that pod ends,
  patch the Job's status: ``succeeded: 1`` + condition ``Complete``, or ``failed: 1`` +
  ``Failed``/``BackoffLimitExceeded`` (as if ``backoffLimit: 0``).
* **scheduler**: bind every new Pod to the stand-in node (``POST pods/NAME/binding``). smokegate
  creates hook objects exactly as the chart defines them, so it never sets ``nodeName`` itself.
* **kubelet**: run the pod's containers, init containers first, and patch ``pods/NAME/status``
  (``Running``, then ``Succeeded``/``Failed`` with ``containerStatuses`` holding exit codes).
  A container whose command is ``sh -c SCRIPT`` (or ``/bin/sh``/``bash``) really runs SCRIPT
  with the local ``/bin/sh`` (so a chart's hook says what it prints and how it exits);
  any other command "succeeds" with a one-line log. Output goes, as it is produced, to
  ``LOGS/NS/POD/CONTAINER.log``, which ``scripts/kube/stand-in-kubelet.py`` serves to the
  apiserver, so ``GET pods/NAME/log`` works through the real API, live while it runs.

Pods and Jobs are handled whoever created them (smokegate, or ``helm test`` itself).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SHELLS = {"sh", "/bin/sh", "bash", "/bin/bash"}
SCRIPT_TIMEOUT = 120.0


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    def __init__(self, code: int, body: str) -> None:
        super().__init__(f"HTTP {code}: {body[:300]}")
        self.code = code


class Api:
    """Minimal admin REST client for the test apiserver (no kubectl per call: actors poll)."""

    def __init__(self, server: str, token: str) -> None:
        self.server = server
        self.token = token
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname, self.ctx.verify_mode = False, ssl.CERT_NONE

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
                text = r.read().decode()
        except urllib.error.HTTPError as e:
            raise ApiError(e.code, e.read().decode(errors="replace")) from None
        return json.loads(text) if text.startswith("{") else text

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def merge_patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body, "application/merge-patch+json")


class ClusterActors:
    """Scheduler + kubelet + job controller for the pods and Jobs of one namespace."""

    def __init__(self, api: Api, namespace: str, node: str, logs_dir: Path) -> None:
        self.api = api
        self.ns = namespace
        self.node = node
        self.logs_dir = logs_dir
        self._seen_pods: set[str] = set()
        self._seen_jobs: set[str] = set()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        self.errors: list[str] = []
        self.pods_started: list[str] = []

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> ClusterActors:
        t = threading.Thread(target=self._loop, name=f"actors-{self.ns}", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            procs = list(self._procs)
        for p in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
        for t in self._threads:
            t.join(5)

    def _loop(self) -> None:
        base = f"/api/v1/namespaces/{self.ns}"
        while not self._stop.is_set():
            try:
                for job in self.api.get(f"/apis/batch/v1/namespaces/{self.ns}/jobs")["items"]:
                    uid = job["metadata"]["uid"]
                    if uid not in self._seen_jobs and not job["metadata"].get("deletionTimestamp"):
                        self._seen_jobs.add(uid)
                        self._spawn(self._run_job, job)
                for pod in self.api.get(f"{base}/pods")["items"]:
                    uid = pod["metadata"]["uid"]
                    owned_by_job = any(
                        o.get("kind") == "Job" for o in pod["metadata"].get("ownerReferences", [])
                    )
                    if uid in self._seen_pods or owned_by_job or pod["spec"].get("nodeName"):
                        continue
                    self._seen_pods.add(uid)
                    self._spawn(self._run_pod, pod)
            except Exception as exc:  # keep playing; the test asserts on `errors` if it matters
                self.errors.append(f"poll: {exc}")
            self._stop.wait(0.1)

    def _spawn(self, fn: Any, obj: dict[str, Any]) -> None:
        t = threading.Thread(target=fn, args=(obj,), daemon=True)
        t.start()
        self._threads.append(t)

    # --- job controller ---------------------------------------------------------------------------

    def _run_job(self, job: dict[str, Any]) -> None:
        meta, tmpl = job["metadata"], job["spec"]["template"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{meta['name']}-{secrets.token_hex(3)[:5]}",
                "namespace": self.ns,
                "labels": {**tmpl.get("metadata", {}).get("labels", {})},
                "annotations": {**tmpl.get("metadata", {}).get("annotations", {})},
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": tmpl["spec"],
        }
        try:
            created = self.api.post(f"/api/v1/namespaces/{self.ns}/pods", pod)
            self.api.merge_patch(
                f"/apis/batch/v1/namespaces/{self.ns}/jobs/{meta['name']}/status",
                {"status": {"startTime": now(), "active": 1}},
            )
            ok = self._run_pod(created)
            if ok is None:
                return
            cond = (
                {"type": "Complete", "status": "True", "lastProbeTime": now(),
                 "lastTransitionTime": now()}
                if ok
                else {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                      "message": "Job has reached the specified backoff limit",
                      "lastProbeTime": now(), "lastTransitionTime": now()}
            )  # fmt: skip
            status: dict[str, Any] = {"active": None, "conditions": [cond]}
            status["succeeded" if ok else "failed"] = 1
            if ok:
                status["completionTime"] = now()
            self.api.merge_patch(
                f"/apis/batch/v1/namespaces/{self.ns}/jobs/{meta['name']}/status",
                {"status": status},
            )
        except ApiError as exc:
            if exc.code != 404:  # deleted while it ran: what smokegate does on timeout/Ctrl-C
                self.errors.append(f"job {meta['name']}: {exc}")

    # --- scheduler + kubelet ----------------------------------------------------------------------

    def _run_pod(self, pod: dict[str, Any]) -> bool | None:
        """Bind, run, report. True/False: succeeded/failed; None: the pod went away meanwhile."""
        name = pod["metadata"]["name"]
        path = f"/api/v1/namespaces/{self.ns}/pods/{name}"
        try:
            self.api.post(
                f"{path}/binding",
                {
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": name},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": self.node},
                },
            )
            self.pods_started.append(name)
            spec = pod["spec"]
            inits, mains = spec.get("initContainers") or [], spec.get("containers") or []
            started = now()
            init_status = [_waiting(c) for c in inits]
            main_status = [_waiting(c) for c in mains]
            self._status(path, "Pending", started, init_status, main_status)
            for i, c in enumerate(inits):
                init_status[i] = _running(c)
                self._status(path, "Pending", started, init_status, main_status)
                code = self._exec(name, c)
                init_status[i] = _terminated(c, code)
                if code != 0:
                    self._status(path, "Failed", started, init_status, main_status)
                    return False
            main_status = [_running(c) for c in mains]
            self._status(path, "Running", started, init_status, main_status)
            codes = [self._exec(name, c) for c in mains]
            main_status = [_terminated(c, code) for c, code in zip(mains, codes, strict=True)]
            ok = all(code == 0 for code in codes)
            self._status(path, "Succeeded" if ok else "Failed", started, init_status, main_status)
            return ok
        except ApiError as exc:
            if exc.code in (404, 409):  # deleted while it ran
                return None
            self.errors.append(f"pod {name}: {exc}")
            return None

    def _status(
        self, path: str, phase: str, started: str, inits: list[Any], mains: list[Any]
    ) -> None:
        ready = phase == "Running"
        status: dict[str, Any] = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "podIP": "10.244.0.10",
            "startTime": started,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
                {"type": "Initialized", "status": "True", "lastTransitionTime": started},
                {"type": "Ready", "status": str(ready), "lastTransitionTime": now()},
                {"type": "ContainersReady", "status": str(ready), "lastTransitionTime": now()},
            ],
            "containerStatuses": mains,
        }
        if inits:
            status["initContainerStatuses"] = inits
        self.api.merge_patch(f"{path}/status", {"status": status})

    def _exec(self, pod: str, container: dict[str, Any]) -> int:
        log = self.logs_dir / self.ns / pod / f"{container['name']}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        if len(argv) >= 3 and argv[0] in SHELLS and argv[1] == "-c":
            env = {e["name"]: str(e.get("value", "")) for e in container.get("env") or []}
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    ["/bin/sh", "-c", argv[2]],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
                    start_new_session=True,
                )
                with self._lock:
                    self._procs.append(proc)
                try:
                    return proc.wait(timeout=SCRIPT_TIMEOUT)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    return 137
        log.write_text(f"(stand-in kubelet) ran: {' '.join(argv) or container.get('image')}\n")
        return 0


def _waiting(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": c["name"],
        "image": c.get("image", ""),
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": "PodInitializing"}},
    }


def _running(c: dict[str, Any]) -> dict[str, Any]:
    return {**_waiting(c), "state": {"running": {"startedAt": now()}}, "started": True}


def _terminated(c: dict[str, Any], code: int) -> dict[str, Any]:
    state = {
        "exitCode": code,
        "reason": "Completed" if code == 0 else "Error",
        "startedAt": now(),
        "finishedAt": now(),
    }
    return {**_waiting(c), "state": {"terminated": state}, "started": False}


# --- the stand-in kubelet process and its Node ---------------------------------------------------


class StandInNode:
    """``scripts/kube/stand-in-kubelet.py`` on a free port, and a Node pointing at it."""

    def __init__(self, api: Api, repo: Path, workdir: Path, name: str) -> None:
        self.api = api
        self.name = name
        self.logs_dir = workdir / "kubelet-logs"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._repo = repo
        self._proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> StandInNode:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._proc = subprocess.Popen(
            [
                "python3",
                str(self._repo / "scripts" / "kube" / "stand-in-kubelet.py"),
                "--port",
                str(self.port),
                "--logs-dir",
                str(self.logs_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                break
            time.sleep(0.1)
        self.api.post("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                         "metadata": {"name": self.name}})  # fmt: skip
        self.api.merge_patch(
            f"/api/v1/nodes/{self.name}/status",
            {
                "status": {
                    "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                    "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
                }
            },
        )  # fmt: skip
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)
            if self._proc.poll() is None:
                self._proc.kill()
