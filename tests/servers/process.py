"""What every throwaway test server shares: the ``with`` protocol, and for the ones that run a real
binary (nginx, PostgreSQL, MariaDB, Redis, dnsmasq) the whole process lifecycle.

A ``ServerProcess`` subclass says how to prepare its private directory once and how to launch
the binary on freshly picked loopback ports; the base class does the rest:

* a private temporary directory per instance, removed by ``stop()``;
* the binary in its own process group (``stop()`` reaps workers and backends too), with a
  parent-death signal (``setpriv --pdeathsig KILL``) against servers outliving a killed run;
* readiness polling with a timeout, and a clear error carrying the server's log when the binary
  exits early or never becomes ready;
* up to three attempts when another process takes a picked port before the server binds it;
* SIGTERM (or the server's own stop signal), a grace period, then SIGKILL of the whole group.

The small functions below (``free_port``, ``spawn``, ``wait_until``, ``accepting``,
``stop_group``) are usable on their own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

LOOPBACK = "127.0.0.1"


class ServerNotFoundError(RuntimeError):
    """A server binary is not installed: tests that need it fail loudly instead of skipping."""


class ServerStartError(RuntimeError):
    """A server exited or never became ready; the message carries its log."""


# -- building blocks ---------------------------------------------------------------------------


def find_binary(
    name: str, candidates: Sequence[str] = (), *, path_first: bool = True
) -> str | None:
    """``name`` on PATH or the first executable of ``candidates`` (``path_first=False``: the
    candidates are tried first); None when neither has it."""

    def on_path() -> str | None:
        return shutil.which(name)

    def listed() -> str | None:
        return next((p for p in candidates if os.access(p, os.X_OK)), None)

    return (on_path() or listed()) if path_first else (listed() or on_path())


def free_port(*, udp: bool = False) -> int:
    """A loopback TCP port that nothing listens on right now (``udp=True``: one free for UDP
    too). Another process may still take it before the server binds: see ``ServerProcess``."""
    if not udp:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, 0))
            return int(s.getsockname()[1])
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((LOOPBACK, 0))
            port = int(u.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((LOOPBACK, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port for UDP and TCP")


def read_logs(*paths: Path, tail: int | None = None) -> str:
    """The text of those of ``paths`` that exist, concatenated (the last ``tail`` characters)."""
    text = ""
    for path in paths:
        with contextlib.suppress(OSError):
            text += path.read_text(errors="replace")
    return text[-tail:] if tail else text


def spawn(
    argv: Sequence[str],
    *,
    cwd: Path,
    log_path: Path,
    die_with_parent: bool = True,
    **popen: Any,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session (its own process group), stdin from /dev/null, stdout and
    stderr appended to ``log_path``; ``popen`` goes to ``subprocess.Popen`` (``user=`` …).

    ``die_with_parent``: the kernel SIGKILLs the process if the test process dies without
    stopping it (killed runner, crashed interpreter). Best effort: the signal is tied to the
    *thread* that spawns (start servers from a long-lived one), it does not reach the server's
    own children (nginx workers), and a server that changes its credentials drops it.
    """
    argv = [os.fspath(a) for a in argv]
    setpriv = shutil.which("setpriv") if die_with_parent else None
    if setpriv:
        argv = [setpriv, "--pdeathsig", "KILL", "--", *argv]
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            **popen,
        )


def accepting(host: str, *ports: int) -> Callable[[], bool]:
    """A readiness probe: true once every one of ``ports`` (zeros ignored) has accepted a TCP
    connection on ``host``."""
    pending = [p for p in ports if p]

    def probe() -> bool:
        while pending:
            try:
                with socket.create_connection((host, pending[0]), timeout=0.5):
                    pass
            except OSError:
                return False
            pending.pop(0)
        return True

    return probe


def wait_until(
    ready: Callable[[], bool],
    *,
    proc: subprocess.Popen[bytes],
    timeout: float,
    what: str,
    log: Callable[[], str],
    error: type[Exception] = ServerStartError,
    interval: float = 0.05,
) -> None:
    """Poll ``ready`` until it answers true. Raise ``error`` (its message: ``what`` and
    ``log()``) as soon as ``proc`` exits, or when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise error(f"{what} exited with status {proc.returncode} during startup:\n{log()}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise error(f"{what} not ready within {timeout}s:\n{log()}")
        time.sleep(interval)


def stop_group(
    proc: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, grace: float = 5.0
) -> None:
    """Stop a server started by ``spawn``: ``sig``, ``grace`` seconds to exit, then SIGKILL; and
    SIGKILL whatever is left of its process group (workers or backends whose leader died
    abnormally)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


# -- classes -----------------------------------------------------------------------------------


class Lifecycle:
    """``with server:`` is ``server.start()`` … ``server.stop()``, whatever happens inside."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ServerProcess(Lifecycle):
    """A real server binary on loopback ports, for one test fixture (see the module docstring).

    Subclasses set ``label`` and ``tmp_prefix`` (and the other class attributes where the
    defaults do not fit), and implement ``_launch()``: write what the binary needs for the
    ports just picked, ``_spawn()`` it, then ``_wait_ready()``. ``_prepare()`` runs once per
    ``start()`` before that (initdb and the like); ``_pick_ports()`` before each attempt.
    """

    label: ClassVar[str]  # the server in messages: "postgres"
    tmp_prefix: ClassVar[str]
    start_error: ClassVar[type[ServerStartError]] = ServerStartError
    stop_signal: ClassVar[int] = signal.SIGTERM
    stop_grace: ClassVar[float] = 5.0
    poll_interval: ClassVar[float] = 0.02
    # Text in a start error that means the port was taken: pick new ports and try again.
    port_in_use: ClassVar[str] = "already in use"
    start_attempts: ClassVar[int] = 3
    # Files in the private directory that hold the server's output (see _read_log()).
    log_files: ClassVar[tuple[str, ...]] = ("stderr.log",)

    def __init__(self, *, start_timeout: float) -> None:
        self.host = LOOPBACK
        self.port = 0
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._proc is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._tmp = Path(tempfile.mkdtemp(prefix=self.tmp_prefix))
        try:
            self._prepare()
            attempt = 1
            while True:
                self._pick_ports()
                try:
                    self._launch()
                    return self
                except self.start_error as exc:
                    self._kill()
                    # Another process may take a port between free_port() and the bind().
                    if attempt >= self.start_attempts or self.port_in_use not in str(exc):
                        raise
                attempt += 1
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._kill()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # -- for subclasses -----------------------------------------------------------------------

    def _prepare(self) -> None:
        """One-time setup in the fresh private directory ``self._tmp``."""

    def _pick_ports(self) -> None:
        self.port = free_port()

    def _launch(self) -> None:
        raise NotImplementedError

    def _read_log(self) -> str:
        """What a start error quotes: the ``log_files`` that exist, in that order."""
        return read_logs(*(self._tmp / name for name in self.log_files)) if self._tmp else ""

    def _spawn(self, argv: Sequence[str], *, log_name: str = "stderr.log", **popen: Any) -> None:
        """Run ``argv`` in the private directory, its output appended to ``log_name`` there."""
        assert self._tmp is not None
        self._proc = spawn(argv, cwd=self._tmp, log_path=self._tmp / log_name, **popen)

    def _wait_ready(self, ready: Callable[[], bool], *ports: int) -> None:
        """Wait for ``ready`` within the start timeout; messages name ``ports`` (default: port)."""
        assert self._proc is not None
        where = ", ".join(f"{self.host}:{p}" for p in (ports or (self.port,)) if p)
        wait_until(
            ready,
            proc=self._proc,
            timeout=self._start_timeout,
            what=f"{self.label} on {where}",
            log=self._read_log,
            error=self.start_error,
            interval=self.poll_interval,
        )

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_group(proc, sig=self.stop_signal, grace=self.stop_grace)
