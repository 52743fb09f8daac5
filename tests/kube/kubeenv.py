"""A real Kubernetes API server (etcd + kube-apiserver v1.20) on loopback, for tests.

No pytest dependency: usable from fixtures (see conftest.py), scripts or a REPL::

    env = KubeEnv().start(workdir)      # raises KubeEnvError if binaries are missing
    env.apply_crd()                     # smokegate's HelmRelease CRD, waits until Established
    env.kubectl("get", "ns")            # cached kubectl v1.35 against this apiserver
    env.stop()

What runs: API server, etcd, admission, RBAC, CRDs, watches, status subresources. What does not:
scheduler, controller-manager, kubelet, namespace controller. Tests play those parts by writing
through the API (e.g. patching `status`). Binaries come from `scripts/kube/ensure.sh`
(`$SMOKEGATE_KUBE_BIN` or ~/.cache/smokegate/kube/bin; etcd from the `etcd-server` package).
The apiserver flags mirror scripts/kube/start.sh; keep the two in sync.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
ENSURE_SCRIPT = REPO_ROOT / "scripts" / "kube" / "ensure.sh"
CRD_FILE = HERE / "helmrelease-crd.yaml"
CRD_NAME = "helmreleases.helm.toolkit.fluxcd.io"
LOOPBACK = "127.0.0.1"


class KubeEnvError(RuntimeError):
    """The test environment could not be set up or used."""


class KubectlError(KubeEnvError):
    """A kubectl command exited non-zero (with check=True)."""

    def __init__(self, args: list[str], result: subprocess.CompletedProcess[str]):
        self.cmd_args = args
        self.returncode = result.returncode
        self.stdout = result.stdout
        self.stderr = result.stderr
        super().__init__(
            f"kubectl {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}"
        )


def default_bin_dir() -> Path:
    env = os.environ.get("SMOKEGATE_KUBE_BIN")
    return Path(env) if env else Path.home() / ".cache" / "smokegate" / "kube" / "bin"


def ensure_binaries(bin_dir: Path | None = None, timeout: float = 1800) -> Path:
    """Run scripts/kube/ensure.sh (installs packages, builds/fetches binaries; slow only once)."""
    bin_dir = Path(bin_dir) if bin_dir else default_bin_dir()
    try:
        r = subprocess.run(
            ["bash", str(ENSURE_SCRIPT), str(bin_dir)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        raise KubeEnvError(f"{ENSURE_SCRIPT} did not finish within {timeout:.0f}s") from e
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-30:])
        raise KubeEnvError(f"{ENSURE_SCRIPT} failed (exit {r.returncode}):\n{tail}")
    return bin_dir


def _free_ports(n: int) -> list[int]:
    # Hold all sockets open until every port is picked, so the n ports are distinct.
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent() -> None:
    # Linux: the child gets SIGTERM if the test process dies without running stop() (e.g. SIGKILL),
    # so no etcd/apiserver outlives a crashed test run.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class KubeEnv:
    """etcd + kube-apiserver on free loopback ports, with an admin token and a kubeconfig.

    After start(): ``server`` (https URL), ``token`` (admin bearer token, group system:masters),
    ``kubeconfig`` (Path), ``workdir``, ``apiserver_port``, ``etcd_port``.
    ``bin_dir`` is set from construction on.
    """

    def __init__(
        self, bin_dir: str | os.PathLike[str] | None = None, *, ready_timeout: float = 60.0
    ):
        self.bin_dir = Path(bin_dir) if bin_dir else default_bin_dir()
        self.ready_timeout = ready_timeout
        self.workdir: Path | None = None
        self.server = ""
        self.token = ""
        self.kubeconfig: Path | None = None
        self.apiserver_port = 0
        self.etcd_port = 0
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    # --- binaries -------------------------------------------------------------------------------

    @property
    def kubectl_path(self) -> Path:
        return self.bin_dir / "kubectl"

    @property
    def helm_path(self) -> Path:
        return self.bin_dir / "helm"

    def _etcd_path(self) -> str | None:
        own = self.bin_dir / "etcd"
        return str(own) if os.access(own, os.X_OK) else shutil.which("etcd")

    def missing_binaries(self) -> list[str]:
        missing = [
            n
            for n in ("kube-apiserver", "kubectl", "helm")
            if not os.access(self.bin_dir / n, os.X_OK)
        ]
        if not self._etcd_path():
            missing.append("etcd")
        return missing

    def check_binaries(self) -> None:
        missing = self.missing_binaries()
        if missing:
            raise KubeEnvError(
                f"Kubernetes test binaries missing: {', '.join(missing)} (looked in {self.bin_dir}"
                f"{' and PATH for etcd' if 'etcd' in missing else ''}). "
                f"Run `bash scripts/kube/ensure.sh` (first run builds kube-apiserver, ~3 min)."
            )

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, workdir: str | os.PathLike[str], attempts: int = 3) -> KubeEnv:
        """Start etcd + kube-apiserver, wait for /readyz, write ``workdir/kubeconfig``."""
        if self._procs:
            raise KubeEnvError("KubeEnv already started")
        self.check_binaries()
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, attempts + 1):
            try:
                self._start_once()
                return self
            except KubeEnvError as e:
                self.stop()
                # A free port can be taken between picking and binding it: retry with new ports.
                if attempt == attempts or "address already in use" not in str(e):
                    raise
        raise AssertionError("unreachable")

    def _start_once(self) -> None:
        assert self.workdir is not None
        wd = self.workdir
        self.apiserver_port, self.etcd_port, peer_port = _free_ports(3)
        self.server = f"https://{LOOPBACK}:{self.apiserver_port}"
        self.token = secrets.token_hex(16)
        sa_key = wd / "sa.key"
        if not sa_key.exists():
            subprocess.run(
                ["openssl", "genrsa", "-out", str(sa_key), "2048"], check=True, capture_output=True
            )
        tokens = wd / "tokens.csv"
        tokens.write_text(f"{self.token},admin,admin,system:masters\n")
        tokens.chmod(0o600)
        etcd_url, peer_url = f"http://{LOOPBACK}:{self.etcd_port}", f"http://{LOOPBACK}:{peer_port}"
        shutil.rmtree(wd / "etcd", ignore_errors=True)  # a fresh, empty cluster on every start
        self._spawn(
            "etcd",
            [
                self._etcd_path() or "etcd",
                "--data-dir",
                str(wd / "etcd"),
                "--listen-client-urls",
                etcd_url,
                "--advertise-client-urls",
                etcd_url,
                "--listen-peer-urls",
                peer_url,
                "--initial-advertise-peer-urls",
                peer_url,
                "--initial-cluster",
                f"default={peer_url}",
            ],
        )
        self._spawn(
            "apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={LOOPBACK}",
                f"--secure-port={self.apiserver_port}",
                "--insecure-port=0",
                f"--advertise-address={LOOPBACK}",
                "--endpoint-reconciler-type=none",
                f"--cert-dir={wd / 'certs'}",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={sa_key}",
                f"--service-account-signing-key-file={sa_key}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.96.0.0/16",
                # No token controller gives ServiceAccounts tokens, so its admission plugin is off.
                "--disable-admission-plugins=ServiceAccount",
                # Alpha in v1.20 (GA in 1.23): without it the apiserver drops a Job's
                # ttlSecondsAfterFinished, which `run --in-cluster` sets (tests check it is kept).
                "--feature-gates=TTLAfterFinished=true",
            ],
        )
        self.kubeconfig = wd / "kubeconfig"
        # JSON is valid YAML; insecure-skip-tls-verify because the serving cert is self-signed.
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "test",
                    "cluster": {"server": self.server, "insecure-skip-tls-verify": True},
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "test",
                    "context": {"cluster": "test", "user": "admin", "namespace": "default"},
                }
            ],
            "current-context": "test",
        }
        self.kubeconfig.write_text(json.dumps(config, indent=2) + "\n")
        self.kubeconfig.chmod(0o600)
        self._wait_ready()

    def _spawn(self, name: str, cmd: list[str]) -> None:
        assert self.workdir is not None
        with open(self.workdir / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,  # no terminal Ctrl-C
                preexec_fn=_die_with_parent,
            )
        self._procs.append((name, proc))

    def _get(self, path: str) -> tuple[int, str]:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # self-signed serving cert
        req = urllib.request.Request(
            self.server + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def _wait_ready(self) -> None:
        assert self.workdir is not None
        deadline = time.monotonic() + self.ready_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            for name, proc in self._procs:
                if proc.poll() is not None:
                    log = self.workdir / f"{name}.log"
                    raise KubeEnvError(
                        f"{name} exited with {proc.returncode} during start; {log}:\n{_tail(log)}"
                    )
            try:
                status, body = self._get("/readyz")
                # /readyz ok, then the `default` namespace (kubeconfig's) from the bootstrap loop.
                if status == 200 and self._get("/api/v1/namespaces/default")[0] == 200:
                    return
                last = f"HTTP {status}: {body[-300:]}"
            except (OSError, urllib.error.URLError) as e:
                last = str(e)
            time.sleep(0.3)
        raise KubeEnvError(
            f"kube-apiserver not ready after {self.ready_timeout:.0f}s ({last}); "
            f"{self.workdir / 'apiserver.log'}:\n{_tail(self.workdir / 'apiserver.log')}"
        )

    def stop(self) -> None:
        """Stop apiserver, then etcd; wait for both to exit (SIGKILL after 10 s). Idempotent."""
        for _name, proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._procs = []

    @property
    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self._procs}

    def __enter__(self) -> KubeEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- using it -------------------------------------------------------------------------------

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        token: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run the cached kubectl against this apiserver (admin, or ``token`` if given).

        Raises KubectlError on a non-zero exit when ``check`` (the default)."""
        if not self.kubeconfig:
            raise KubeEnvError("KubeEnv not started")
        assert self.workdir is not None
        cmd = [
            str(self.kubectl_path),
            f"--kubeconfig={self.kubeconfig}",
            # per-env discovery cache: another env on the same port must not see stale API groups
            f"--cache-dir={self.workdir / 'kubectl-cache'}",
        ]
        if token is not None:
            cmd.append(f"--token={token}")
        r = subprocess.run(
            cmd + list(args), input=input, capture_output=True, text=True, timeout=timeout
        )
        if check and r.returncode != 0:
            raise KubectlError(list(args), r)
        return r

    def kubectl_json(self, *args: str, **kw: Any) -> Any:
        """kubectl ... -o json, parsed."""
        return json.loads(self.kubectl(*args, "-o", "json", **kw).stdout)

    def apply_crd(self, path: str | os.PathLike[str] = CRD_FILE, timeout: int = 60) -> None:
        """Apply the HelmRelease CRD and wait until it is Established and served."""
        self.kubectl("apply", "-f", str(path))
        self.kubectl(
            "wait",
            "--for=condition=Established",
            f"crd/{CRD_NAME}",
            f"--timeout={timeout}s",
            timeout=timeout + 10,
        )
        self.kubectl("get", "helmreleases.helm.toolkit.fluxcd.io", "--all-namespaces")
