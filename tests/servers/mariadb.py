"""A throwaway MariaDB for tests: Debian's ``mariadb-install-db`` + ``mariadbd`` on a free
loopback port, a fresh data directory and a unique password per instance.

    with MariaDBServer(tls_cert=cert, tls_key=key, tls_ca=ca) as db:
        db.port, db.user, db.password, db.database

The account is created by an ``--init-file`` at startup (no client needed); ``--user=root`` is
what mariadbd wants when started by root. Everything lives in one temporary directory that
``stop()`` removes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid

from tests.servers.process import (
    ServerNotFoundError,
    ServerProcess,
    ServerStartError,
    find_binary,
)

APT_HINT = "apt-get install -y -o DPkg::Lock::Timeout=600 mariadb-server"


class MariaDBNotFoundError(ServerNotFoundError):
    """The Debian MariaDB server package is missing: tests fail loudly instead of skipping."""


class MariaDBStartError(ServerStartError):
    """The server failed or never became ready; the message carries its error log."""


def _find(name: str, *extra: str) -> str:
    found = find_binary(name, extra)
    if found is None:
        raise MariaDBNotFoundError(f"{name} not found: {APT_HINT}")
    return found


class MariaDBServer(ServerProcess):
    label = "mariadbd"
    tmp_prefix = "smokegate-mariadb-"
    start_error = MariaDBStartError
    stop_grace = 30.0  # SIGTERM is a clean shutdown
    poll_interval = 0.1
    log_files = ("error.log", "stderr.log")

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
        super().__init__(start_timeout=start_timeout)
        self.install_db = _find("mariadb-install-db", "/usr/bin/mariadb-install-db")
        self.mariadbd = _find("mariadbd", "/usr/sbin/mariadbd")
        self.user = user
        self.password = password or f"my-{uuid.uuid4().hex}"
        self.database = database
        self._tls = (tls_cert, tls_key, tls_ca) if tls_cert and tls_key else None

    @property
    def tls(self) -> bool:
        return self._tls is not None

    @property
    def log(self) -> str:
        return self._read_log()

    def dsn(self, password: str | None = None) -> str:
        from urllib.parse import quote

        pw = quote(self.password if password is None else password, safe="")
        return f"mysql://{self.user}:{pw}@{self.host}:{self.port}/{self.database}"

    # -- internals ----------------------------------------------------------------------------

    def _user_flag(self) -> list[str]:
        # mariadbd refuses to start as root unless told that root is intended.
        return ["--user=root"] if os.geteuid() == 0 else []

    def _prepare(self) -> None:
        self._install_db()

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

    def _launch(self) -> None:
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
        self._spawn(argv)
        # The init file runs before the server announces readiness; the greeting packet on the
        # port proves that TCP clients are served.
        self._wait_ready(lambda: "ready for connections" in self.log and self._greets())

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as s:
                return len(s.recv(16)) > 0
        except OSError:
            return False
