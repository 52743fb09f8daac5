"""A throwaway MariaDB for tests: Debian's ``mariadb-install-db`` + ``mariadbd`` on a free
loopback port, a fresh data directory and a unique password per instance.

    with MariaDBServer(tls_cert=cert, tls_key=key, tls_ca=ca) as db:
        db.port, db.user, db.password, db.database

The account is created by an ``--init-file`` at startup (no client needed); ``--user=root`` is
what mariadbd wants when started by root. Everything lives in one temporary directory that
``stop()`` removes.
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

APT_HINT = "apt-get install -y -o DPkg::Lock::Timeout=600 mariadb-server"


class MariaDBNotFoundError(RuntimeError):
    """The Debian MariaDB server package is missing: tests fail loudly instead of skipping."""


class MariaDBStartError(RuntimeError):
    """The server failed or never became ready; the message carries its error log."""


def _find(name: str, *extra: str) -> str:
    found = shutil.which(name) or next((p for p in extra if os.access(p, os.X_OK)), None)
    if found is None:
        raise MariaDBNotFoundError(f"{name} not found: {APT_HINT}")
    return found


def _orphan_proof(argv: list[str]) -> list[str]:
    """Have the kernel SIGKILL the server if the test process dies without stopping it
    (killed runner, crashed interpreter): no server outlives its test session."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv


class MariaDBServer:
    def __init__(
        self,
        *,
        user: str = "smoke",
        password: str | None = None,
        database: str = "app",
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.install_db = _find("mariadb-install-db", "/usr/bin/mariadb-install-db")
        self.mariadbd = _find("mariadbd", "/usr/sbin/mariadbd")
        self.user = user
        self.password = password or f"my-{uuid.uuid4().hex}"
        self.database = database
        self.host = "127.0.0.1"
        self.port = 0
        self._tls = (tls_cert, tls_key, tls_ca) if tls_cert and tls_key else None
        self._start_timeout = start_timeout
        self._tmp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def tls(self) -> bool:
        return self._tls is not None

    @property
    def log(self) -> str:
        if self._tmp is None:
            return ""
        return "".join(
            p.read_text(errors="replace")
            for p in (self._tmp / "error.log", self._tmp / "stderr.log")
            if p.exists()
        )

    def dsn(self, password: str | None = None) -> str:
        from urllib.parse import quote

        pw = quote(self.password if password is None else password, safe="")
        return f"mysql://{self.user}:{pw}@{self.host}:{self.port}/{self.database}"

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> MariaDBServer:
        if self._proc is not None:
            raise RuntimeError("MariaDBServer already started")
        self._tmp = Path(tempfile.mkdtemp(prefix="smokegate-mariadb-"))
        try:
            self._install_db()
            last: Exception | None = None
            for _ in range(3):  # another process may take the port between probe and bind
                self.port = free_port()
                try:
                    self._spawn()
                    return self
                except MariaDBStartError as exc:
                    last = exc
                    self._kill()
                    if "already in use" not in str(exc):
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

    def __enter__(self) -> MariaDBServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------

    def _user_flag(self) -> list[str]:
        # mariadbd refuses to start as root unless told that root is intended.
        return ["--user=root"] if os.geteuid() == 0 else []

    def _install_db(self) -> None:
        assert self._tmp is not None
        proc = subprocess.run(
            [
                self.install_db,
                "--no-defaults",
                f"--datadir={self._tmp / 'data'}",
                "--skip-test-db",
                "--auth-root-authentication-method=socket",
                *self._user_flag(),
            ],
            cwd=self._tmp,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if proc.returncode != 0:
            raise MariaDBStartError(
                f"mariadb-install-db failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        pw = self.password.replace("\\", "\\\\").replace("'", "\\'")
        (self._tmp / "init.sql").write_text(
            f"CREATE DATABASE IF NOT EXISTS `{self.database}`;\n"
            f"CREATE USER IF NOT EXISTS '{self.user}'@'%' IDENTIFIED BY '{pw}';\n"
            f"GRANT ALL PRIVILEGES ON *.* TO '{self.user}'@'%' WITH GRANT OPTION;\n"
        )
        (self._tmp / "init.sql").chmod(0o600)

    def _spawn(self) -> None:
        assert self._tmp is not None
        d = self._tmp
        argv = [
            self.mariadbd,
            "--no-defaults",
            f"--datadir={d / 'data'}",
            f"--tmpdir={d}",
            f"--socket={d / 'mysqld.sock'}",
            f"--pid-file={d / 'mysqld.pid'}",
            f"--log-error={d / 'error.log'}",
            f"--init-file={d / 'init.sql'}",
            f"--port={self.port}",
            f"--bind-address={self.host}",
            "--skip-networking=0",
            # Accounts match on IP, so the anonymous ''@'localhost' never shadows ours.
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=16M",
            "--innodb-log-file-size=8M",
            "--skip-log-bin",
            "--performance-schema=0",
            *self._user_flag(),
        ]
        if self._tls is not None:
            cert, key, ca = self._tls
            argv += [f"--ssl-cert={cert}", f"--ssl-key={key}"]
            if ca:
                argv.append(f"--ssl-ca={ca}")
        with open(d / "stderr.log", "ab") as errf:
            self._proc = subprocess.Popen(
                _orphan_proof(argv),
                cwd=d,
                stdin=subprocess.DEVNULL,
                stdout=errf,
                stderr=errf,
                start_new_session=True,
            )
        deadline = time.monotonic() + self._start_timeout
        while True:
            if self._proc.poll() is not None:
                raise MariaDBStartError(
                    f"mariadbd exited with status {self._proc.returncode}:\n{self.log}"
                )
            # The init file runs before the server announces readiness; the greeting packet
            # on the port proves that TCP clients are served.
            if "ready for connections" in self.log and self._greets():
                return
            if time.monotonic() > deadline:
                raise MariaDBStartError(
                    f"mariadbd not ready on {self.host}:{self.port} within "
                    f"{self._start_timeout}s:\n{self.log}"
                )
            time.sleep(0.1)

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as s:
                return len(s.recv(16)) > 0
        except OSError:
            return False

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # clean shutdown
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
