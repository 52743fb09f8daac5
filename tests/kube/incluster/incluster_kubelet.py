"""The cluster parts ``run --in-cluster`` needs and the test apiserver lacks, played through the
real kube-apiserver. ``RunnerActors`` extends the helm-test tests' ``ClusterActors``
(tests/kube/helmtest/helmtest_cluster.py: job controller, scheduler, kubelet) with what a
kubelet does for the runner pod, which runs ``smokegate``:

* **job controller** (inherited): for the Job, one Pod from ``spec.template`` with an
  ownerReference to the Job; the Job's status once the pod ends (``backoffLimit: 0``).
  Not played: ``activeDeadlineSeconds`` and ``ttlSecondsAfterFinished`` (no controller acts on
  them here; tests check that the Job carries them), and the garbage collector (nothing
  deletes dependents: every deletion the tests see is smokegate's own).
* **scheduler** (inherited): binds the pod to the stand-in node.
* **kubelet**, for a container whose command is ``smokegate``:
  - *volumes*: each ``configMap`` volume is read through the API (retried while it does not
    exist yet, as the kubelet retries a mount) and written, ``items`` at their paths, into a
    temporary directory; each ``emptyDir`` is an empty temporary directory. The container's
    ``workingDir`` and any argument or environment value under a mount path are mapped onto
    those directories: that is how the pod's paths reach the local process;
  - *service account*: a token for the pod's ``serviceAccountName`` from the TokenRequest API,
    bound to the pod (as the kubelet's projected token is); it reaches the process as
    ``KUBECONFIG`` (a kubeconfig with that token, the test apiserver's address and the pod's
    namespace) instead of files under /var/run/secrets/kubernetes.io/serviceaccount, which a
    test cannot mount. RBAC is enforced on it by the real apiserver;
  - *the process*: the real ``smokegate`` of this virtualenv, with the container's arguments
    and environment; its stdout+stderr are the container log, served live (``follow``) by
    scripts/kube/stand-in-kubelet.py; ``CONTAINER.log.done`` marks the container's exit;
  - *images*: a reference that does not parse leaves the container waiting with
    ``InvalidImageName``, as the kubelet does; any other image "is present" (none is pulled);
  - *graceful deletion*: when the pod gets a ``deletionTimestamp``, SIGTERM to the process,
    SIGKILL after the pod's ``deletionGracePeriodSeconds``; then the status (terminated, exit
    code) and the final ``DELETE`` with grace period 0, as a kubelet confirms a deletion.
  Not faked, so not shown here: the image (the local checkout runs instead), ``runAsUser``
  65532 and the read-only root filesystem (tests/image runs the image that way), resource
  limits, the network namespace (the process shares the test host's network).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from helmtest_cluster import Api, ApiError, ClusterActors

SMOKEGATE = Path(sys.executable).parent / "smokegate"
# A Docker image reference, simplified: [host[:port]/]path[:tag][@sha256:digest], lower case.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = re.compile(
    rf"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)


class RunnerActors(ClusterActors):
    """``ClusterActors`` whose kubelet runs ``smokegate`` containers for real (see above)."""

    def __init__(self, api: Api, namespace: str, node: str, logs_dir: Path) -> None:
        super().__init__(api, namespace, node, logs_dir)
        self._pods: dict[str, dict[str, Any]] = {}
        self.volumes_root = Path(tempfile.mkdtemp(prefix="incluster-volumes-"))
        self.runs: list[dict[str, Any]] = []
        """One entry per smokegate container run: argv, cwd, env, exit code, signals sent."""
        self.jobs: list[dict[str, Any]] = []
        self.configmaps: list[dict[str, Any]] = []
        """The Jobs and mounted ConfigMaps as the API served them (what smokegate created)."""

    def _run_job(self, job: dict[str, Any]) -> None:
        self.jobs.append(job)
        super()._run_job(job)

    def _run_pod(self, pod: dict[str, Any]) -> bool | None:
        name = pod["metadata"]["name"]
        self._pods[name] = pod
        bad = [c for c in pod["spec"]["containers"] if not IMAGE_REFERENCE.match(c["image"])]
        if bad:
            self._invalid_image(pod, bad[0])
            return None
        for c in pod["spec"].get("containers") or []:
            log = self.logs_dir / self.ns / name / f"{c['name']}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.touch()  # the log exists once the container is reported running
        ok = super()._run_pod(pod)
        path = f"/api/v1/namespaces/{self.ns}/pods/{name}"
        with contextlib.suppress(ApiError):
            if self.api.get(path)["metadata"].get("deletionTimestamp"):
                # The kubelet confirms a graceful deletion once the containers have stopped.
                self.api.request("DELETE", f"{path}?gracePeriodSeconds=0")
        return ok

    def _exec(self, pod: str, container: dict[str, Any]) -> int:
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        if not argv or argv[0] != "smokegate":
            return super()._exec(pod, container)
        obj = self._pods[pod]
        mounts = self._mount(obj, container)
        env = {
            e["name"]: _mapped(str(e.get("value", "")), mounts) for e in container.get("env") or []
        }
        env["PATH"] = f"{SMOKEGATE.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        if obj["spec"].get("automountServiceAccountToken", True):
            try:
                env["KUBECONFIG"] = str(self._service_account_kubeconfig(obj, mounts))
            except ApiError as exc:  # a real cluster's admission would have refused the pod
                self.errors.append(f"pod {pod}: no token for its service account: {exc}")
                Path(self.logs_dir / self.ns / pod / f"{container['name']}.log.done").touch()
                return 1
        cwd = _mapped(container.get("workingDir") or "/", mounts)
        args = [str(SMOKEGATE), *(_mapped(a, mounts) for a in argv[1:])]
        log = self.logs_dir / self.ns / pod / f"{container['name']}.log"
        record: dict[str, Any] = {"pod": pod, "argv": argv, "cwd": cwd, "env": env, "signals": []}
        self.runs.append(record)
        try:
            with open(log, "ab") as out:
                proc = subprocess.Popen(
                    args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                )  # fmt: skip
                with self._lock:
                    self._procs.append(proc)
                code = self._supervise(pod, proc, record)
        finally:
            Path(f"{log}.done").touch()  # the container has exited: a followed log ends
        record["exit"] = code
        return code

    def _supervise(self, pod: str, proc: subprocess.Popen[bytes], record: dict[str, Any]) -> int:
        """Wait for the process; on the pod's graceful deletion, stop it as a kubelet does."""
        path = f"/api/v1/namespaces/{self.ns}/pods/{pod}"
        kill_at: float | None = None
        deadline = time.monotonic() + 300
        while proc.poll() is None:
            if time.monotonic() > deadline or self._stop.is_set():
                os.killpg(proc.pid, signal.SIGKILL)
                break
            if kill_at is None:
                try:
                    meta = self.api.get(path)["metadata"]
                except ApiError as exc:
                    meta = {"deletionTimestamp": "gone"} if exc.code == 404 else {}
                if meta.get("deletionTimestamp"):
                    record["signals"].append("SIGTERM")
                    proc.send_signal(signal.SIGTERM)
                    grace = meta.get("deletionGracePeriodSeconds")
                    kill_at = time.monotonic() + (30 if grace is None else grace)
            elif time.monotonic() > kill_at:
                record["signals"].append("SIGKILL")
                os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.1)
        return proc.wait()

    def _invalid_image(self, pod: dict[str, Any], container: dict[str, Any]) -> None:
        name, image = pod["metadata"]["name"], container["image"]
        path = f"/api/v1/namespaces/{self.ns}/pods/{name}"
        self.api.post(f"{path}/binding", {
            "apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node},
        })  # fmt: skip
        waiting = {
            "reason": "InvalidImageName",
            "message": f'Failed to apply default image tag "{image}": couldn\'t parse image '
            f'reference "{image}": invalid reference format',
        }
        status = {"name": container["name"], "image": image, "imageID": "", "ready": False,
                  "restartCount": 0, "state": {"waiting": waiting}}  # fmt: skip
        self.api.merge_patch(
            f"{path}/status",
            {"status": {"phase": "Pending", "hostIP": "127.0.0.1", "containerStatuses": [status]}},
        )

    # --- volumes and the service account ---------------------------------------------------------

    def _mount(self, pod: dict[str, Any], container: dict[str, Any]) -> list[tuple[str, str]]:
        """(mount path, local directory) for each of the container's volume mounts."""
        name = pod["metadata"]["name"]
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        mounts = []
        for m in container.get("volumeMounts") or []:
            volume = volumes[m["name"]]
            where = self.volumes_root / name / m["name"]
            where.mkdir(parents=True, exist_ok=True)
            if "configMap" in volume:
                self._write_configmap(volume["configMap"], where)
            mounts.append((m["mountPath"].rstrip("/") or "/", str(where)))
        # Longest mount path first, so /a/b wins over /a.
        return sorted(mounts, key=lambda m: len(m[0]), reverse=True)

    def _write_configmap(self, source: dict[str, Any], where: Path) -> None:
        path = f"/api/v1/namespaces/{self.ns}/configmaps/{source['name']}"
        deadline = time.monotonic() + 20
        while True:
            try:
                cm = self.api.get(path)
                break
            except ApiError as exc:
                if exc.code != 404 or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)  # the kubelet retries a mount whose ConfigMap is not there yet
        self.configmaps.append(cm)
        data = cm.get("data") or {}
        items = source.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            target = where / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data[item["key"]])

    def _service_account_kubeconfig(self, pod: dict[str, Any], mounts: Any) -> Path:
        meta = pod["metadata"]
        named = pod["spec"].get("serviceAccountName")
        account = named or "default"
        spec: dict[str, Any] = {"expirationSeconds": 3600}
        if named:
            # Bound to the pod, as the kubelet's projected token is. A pod without the name is
            # one the (disabled) ServiceAccount admission would have given `default`; the API
            # refuses to bind a token to a pod that does not name its account, so it is unbound.
            spec["boundObjectRef"] = {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                      "uid": meta["uid"]}  # fmt: skip
        answer = self.api.post(
            f"/api/v1/namespaces/{self.ns}/serviceaccounts/{account}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
        )
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "in-cluster", "cluster": {"server": self.api.server,
                                                             "insecure-skip-tls-verify": True}}],
            "users": [{"name": account, "user": {"token": answer["status"]["token"]}}],
            "contexts": [{"name": "in-cluster", "context": {"cluster": "in-cluster",
                                                             "user": account,
                                                             "namespace": self.ns}}],
            "current-context": "in-cluster",
        }  # fmt: skip
        path = self.volumes_root / meta["name"] / "serviceaccount.kubeconfig"
        path.write_text(json.dumps(config))
        path.chmod(0o600)
        return path


def _mapped(value: str, mounts: list[tuple[str, str]]) -> str:
    """A pod path under a mount, as the local directory standing in for it."""
    for mount, local in mounts:
        if value == mount or value.startswith(mount + "/"):
            return local + value[len(mount) :]
    return value
