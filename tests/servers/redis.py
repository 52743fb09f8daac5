"""A throwaway Redis for tests: Debian's ``redis-server`` on free loopback ports, with a unique
password per instance, an ACL user, and TLS on a second port when cert/key are given.

    with RedisServer(tls_cert=cert, tls_key=key, tls_ca=ca) as r:
        r.port, r.tls_port, r.password         # AUTH <password> (default user)
        r.acl_user                             # AUTH <acl_user> <password>

Debian builds redis-server with TLS support, so ``tls-port`` always works there. Nothing is
persisted: no RDB, no AOF, and the temporary directory is removed by ``stop()``.
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
import uuid
from pathlib import Path
from types import TracebackType

from tests.helpers import free_port

APT_HINT = "apt-get install -y -o DPkg::Lock::Timeout=600 redis-server"


class RedisNotFoundError(RuntimeError):
    """The Debian redis-server package is missing: tests fail loudly instead of skipping."""


class RedisStartError(RuntimeError):
    """redis-server exited or never accepted connections; the message carries its log."""


def find_redis() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None
    )
    if found is None:
        raise RedisNotFoundError(f"redis-server not found: {APT_HINT}")
    return found


def _orphan_proof(argv: list[str]) -> list[str]:
    """Have the kernel SIGKILL the server if the test process dies without stopping it."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv


class RedisServer:
    def __init__(
        self,
        *,
        password: str | None = None,
        acl_user: str = "smoke",
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
        start_timeout: float = 20.0,
    ) -> None:
        self.binary = find_redis()
        self.password = password or f"rd-{uuid.uuid4().hex}"
        self.acl_user = acl_user
        self.host = "127.0.0.1"
        self.port = 0
        self.tls_port = 0
        self._tls = (tls_cert, tls_key, tls_ca) if tls_cert and tls_key else None
        self._start_timeout = start_timeout
        self._tmp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        path = self._tmp / "redis.log" if self._tmp else None
        return path.read_text(errors="replace") if path and path.exists() else ""

    def command(self, *argv: str, db: int = 0) -> bytes:
        """Send one command (after AUTH, in database ``db``) and return its raw reply line(s):
        for test setup only."""

        def bulk(parts: tuple[str, ...]) -> bytes:
            out = f"*{len(parts)}\r\n".encode()
            for p in parts:
                b = p.encode()
                out += b"$%d\r\n%s\r\n" % (len(b), b)
            return out

        setup = [("AUTH", self.password)] + ([("SELECT", str(db))] if db else [])
        with socket.create_connection((self.host, self.port), timeout=5) as s:
            s.sendall(b"".join(bulk(c) for c in setup) + bulk(argv))
            data = b""
            while data.count(b"\r\n") < len(setup) + 1:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return data.split(b"\r\n", len(setup))[-1]

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> RedisServer:
        if self._proc is not None:
            raise RuntimeError("RedisServer already started")
        self._tmp = Path(tempfile.mkdtemp(prefix="smokegate-redis-"))
        try:
            last: Exception | None = None
            for _ in range(3):  # another process may take a port between probe and bind
                self.port = free_port()
                self.tls_port = free_port() if self._tls else 0
                try:
                    self._spawn()
                    return self
                except RedisStartError as exc:
                    last = exc
                    self._kill()
                    if "in use" not in str(exc):
                        break
            assert last is not None
            raise last
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._kill()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------

    def _config(self) -> str:
        assert self._tmp is not None
        lines = [
            f"bind {self.host}",
            f"port {self.port}",
            "protected-mode yes",
            f"dir {self._tmp}",
            'save ""',
            "appendonly no",
            "daemonize no",
            f"logfile {self._tmp / 'redis.log'}",
            f"requirepass {self.password}",
            # An ACL user with the same password: AUTH <user> <password> (Redis 6+).
            f"user {self.acl_user} on >{self.password} ~* &* +@all",
        ]
        if self._tls is not None:
            cert, key, ca = self._tls
            lines += [
                f"tls-port {self.tls_port}",
                f"tls-cert-file {cert}",
                f"tls-key-file {key}",
                "tls-auth-clients no",
            ]
            if ca:
                lines.append(f"tls-ca-cert-file {ca}")
        return "\n".join(lines) + "\n"

    def _spawn(self) -> None:
        assert self._tmp is not None
        conf = self._tmp / "redis.conf"
        conf.write_text(self._config())
        conf.chmod(0o600)
        with open(self._tmp / "stderr.log", "ab") as errf:
            self._proc = subprocess.Popen(
                _orphan_proof([self.binary, str(conf)]),
                cwd=self._tmp,
                stdin=subprocess.DEVNULL,
                stdout=errf,
                stderr=errf,
                start_new_session=True,
            )
        deadline = time.monotonic() + self._start_timeout
        pending = [p for p in (self.port, self.tls_port) if p]
        while pending:
            if self._proc.poll() is not None:
                stderr = (self._tmp / "stderr.log").read_text(errors="replace")
                raise RedisStartError(
                    f"redis-server exited with status {self._proc.returncode}:\n{self.log}{stderr}"
                )
            try:
                with socket.create_connection((self.host, pending[0]), timeout=0.5):
                    pending.pop(0)
                    continue
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RedisStartError(
                    f"redis-server did not accept on {self.host}:{pending[0]} within "
                    f"{self._start_timeout}s:\n{self.log}"
                )
            time.sleep(0.02)

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
