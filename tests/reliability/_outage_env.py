"""Servers that can be taken down and brought back in place, for the outage tests (part 4):

* ``ControlPlane``: a private etcd + kube-apiserver (``KubeEnv``; the session's shared one must
  not be disturbed) plus a **second** kube-apiserver on the same etcd — as in an HA control
  plane. Stopping the first (the one smokegate talks to) is the outage; the test, playing Flux,
  keeps publishing through the second, so a revision really is published *during* it.
* ``RestartablePostgres``: the test PostgreSQL, stopped and started again on the same port
  with the same data directory.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.servers.postgres import PostgresServer

_KUBE_TESTS = Path(__file__).resolve().parents[1] / "kube"
if str(_KUBE_TESTS) not in sys.path:
    sys.path.insert(0, str(_KUBE_TESTS))

from fixtures_flux import apply, helmrelease, patch_status, status_ready  # noqa: E402
from kubeenv import KubeEnv, _free_ports, ensure_binaries  # noqa: E402

__all__ = [
    "ControlPlane",
    "PlaneStarting",
    "RestartablePostgres",
    "apply",
    "helmrelease",
    "patch_status",
]


class _Via:
    """``KubeEnv.kubectl`` through another API server of the same cluster."""

    def __init__(self, env: KubeEnv, server: str) -> None:
        self.env = env
        self.server = server

    def kubectl(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.env.kubectl(f"--server={self.server}", *args, **kw)


class ControlPlane(KubeEnv):
    def _spawn(self, name: str, cmd: list[str]) -> None:
        self.cmds = {**getattr(self, "cmds", {}), name: cmd}
        super()._spawn(name, cmd)

    @classmethod
    def create(cls, workdir: Path) -> ControlPlane:
        env = cls()
        if env.missing_binaries():
            ensure_binaries(env.bin_dir)
        env.start(workdir)
        env.apply_crd()
        env.start_second()
        return env

    def start_second(self) -> None:
        """Another kube-apiserver on the same etcd (own port and serving certificate)."""
        assert self.workdir is not None
        (port,) = _free_ports(1)
        cmd = [
            f"--secure-port={port}"
            if a.startswith("--secure-port=")
            else f"--cert-dir={self.workdir / 'certs2'}"
            if a.startswith("--cert-dir=")
            else a
            for a in self.cmds["apiserver"]
        ]
        self._spawn("apiserver2", cmd)
        self.second = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while self.via_second.kubectl("get", "--raw=/readyz", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise AssertionError("the second kube-apiserver did not become ready")
            time.sleep(0.3)

    @property
    def via_second(self) -> _Via:
        return _Via(self, self.second)

    def stop_apiserver(self) -> None:
        """A crash of the API server smokegate uses (SIGKILL: a graceful stop waits out open
        watches for a long time); etcd and the second API server stay up."""
        procs = dict(self._procs)
        api = procs["apiserver"]
        api.kill()
        api.wait(timeout=30)
        self._procs = [(n, p) for n, p in self._procs if n != "apiserver"]

    def start_apiserver(self) -> float:
        """Start it again on the same port; returns the monotonic time it was ready."""
        self._spawn("apiserver", self.cmds["apiserver"])
        self._wait_ready()
        return time.monotonic()

    def publish(
        self, ns: str, name: str, revision: str, generation: int, *, via: Any = None
    ) -> None:
        """helm-controller finished an upgrade to ``revision`` (its digest changes with it)."""
        status = status_ready(name, ns, generation, revision, version=generation)
        status["history"][0]["digest"] = "sha256:" + revision.replace(".", "").ljust(64, "0")
        patch_status(via or self, "hr", name, ns, status)

    def create_release(self, ns: str, name: str, suites: str) -> None:
        hr = helmrelease(name, ns)
        hr["metadata"]["annotations"] = {"smokegate.io/suites": suites}
        apply(self, hr)

    def kube_block(self, ns: str, *, watch: bool = True) -> str:
        return (
            f"kubernetes:\n  enabled: true\n  watch: {json.dumps(watch)}\n"
            f"  kubeconfig: {self.kubeconfig}\n  namespaces: [{ns}]\n  waitTimeout: 30s\n"
            "  recordEvents: false\n"
        )


class PlaneStarting:
    """The control plane, started in a background thread so that its ~20 s start overlaps
    tests that leave the CPU idle (the soak of test_load_soak, when test_outages runs in the
    same session). The thread lives until the plane is stopped: etcd and the API servers die
    with the thread that spawned them (PR_SET_PDEATHSIG, see kubeenv.py)."""

    def __init__(self, workdir: Path) -> None:
        self.env: ControlPlane | None = None
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(workdir,), daemon=True)
        self.thread.start()

    def _run(self, workdir: Path) -> None:
        try:
            self.env = ControlPlane.create(workdir)
        except BaseException as exc:  # re-raised in the test that needs the plane
            self.error = exc
        self.ready.set()
        self.release.wait()

    @classmethod
    def shared(cls, factory: Any) -> PlaneStarting:
        """The one of this test session (started now if nobody started it yet)."""
        global _SHARED
        if _SHARED is None:
            _SHARED = cls(factory.mktemp("plane"))
        return _SHARED

    def stop(self) -> None:
        global _SHARED
        self.ready.wait(timeout=180)
        if self.env is not None:
            self.env.stop()
        self.release.set()
        self.thread.join(timeout=30)
        _SHARED = None

    def get(self) -> ControlPlane:
        self.ready.wait(timeout=180)
        if self.error is not None:
            raise self.error
        assert self.env is not None, "the control plane did not start within 180 s"
        return self.env


_SHARED: PlaneStarting | None = None


def wants_plane(session: Any) -> bool:
    """Whether a selected test of this session uses the ``plane`` fixture (test_outages)."""
    return any("plane" in getattr(item, "fixturenames", ()) for item in session.items)


class RestartablePostgres(PostgresServer):
    def down(self) -> None:
        """Stop the server (fast shutdown), keeping its data directory and port."""
        self._kill()

    def up(self) -> float:
        """Start it again on the same port and data; returns the monotonic time it was ready."""
        with contextlib.suppress(FileNotFoundError):
            assert self._tmp is not None
            (self._tmp / "data" / "postmaster.pid").unlink()
        self._launch()
        return time.monotonic()
