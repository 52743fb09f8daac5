"""A throwaway PostgreSQL for tests: Debian's ``initdb`` + ``postgres`` binaries on a free
loopback port, a fresh data directory and a unique password per instance.

    with PostgresServer(tls_cert=cert, tls_key=key) as pg:
        pg.port, pg.user, pg.password, pg.database   # password auth (scram-sha-256) over TCP

PostgreSQL refuses to run as root, so under root the data directory is handed to the Debian
``postgres`` user (``nobody`` when that user is missing) and the server runs as that user.
Everything lives in one temporary directory that ``stop()`` removes; the server runs in its own
process group so no backend outlives the fixture.
"""

from __future__ import annotations

import glob
import os
import pwd
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

from tests.servers.process import ServerNotFoundError, ServerProcess, ServerStartError

APT_HINT = "apt-get install -y -o DPkg::Lock::Timeout=600 postgresql"


class PostgresNotFoundError(ServerNotFoundError):
    """The Debian PostgreSQL server package is missing: tests fail loudly instead of skipping."""


class PostgresStartError(ServerStartError):
    """initdb or postgres failed or never became ready; the message carries the server log."""


def find_bin_dir() -> Path:
    """Newest ``/usr/lib/postgresql/<major>/bin`` that has both initdb and postgres."""
    candidates = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for d in candidates:
        if (d / "initdb").is_file() and (d / "postgres").is_file():
            return d
    raise PostgresNotFoundError(
        f"PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: {APT_HINT}"
    )


def _service_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresStartError("running as root and neither user 'postgres' nor 'nobody' exists")


class PostgresServer(ServerProcess):
    label = "postgres"
    tmp_prefix = "smokegate-pg-"
    start_error = PostgresStartError
    stop_signal = signal.SIGINT  # "fast" shutdown: end sessions, checkpoint, exit
    stop_grace = 15.0
    poll_interval = 0.1
    log_files = ("postgres.log",)

    def __init__(
        self,
        *,
        user: str = "smoke",
        password: str | None = None,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        super().__init__(start_timeout=start_timeout)
        self.bin_dir = find_bin_dir()
        self.user = user
        self.password = password or f"pg-{uuid.uuid4().hex}"
        self.database = "postgres"
        self._tls = (tls_cert, tls_key) if tls_cert and tls_key else None
        self._owner = _service_user()

    @property
    def tls(self) -> bool:
        return self._tls is not None

    @property
    def log(self) -> str:
        return self._read_log()

    def dsn(self, password: str | None = None, **params: str) -> str:
        """A libpq URI for this server (``password=`` overrides the real one)."""
        from urllib.parse import quote

        pw = quote(self.password if password is None else password, safe="")
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://{self.user}:{pw}@{self.host}:{self.port}/{self.database}" + (
            f"?{query}" if query else ""
        )

    # -- internals ----------------------------------------------------------------------------

    def _private_file(self, name: str, content: bytes) -> Path:
        """A 0600 file owned by the server's user (postgres checks key file ownership/mode)."""
        assert self._tmp is not None
        path = self._tmp / name
        path.write_bytes(content)
        path.chmod(0o600)
        if self._owner is not None:
            os.chown(path, self._owner.pw_uid, self._owner.pw_gid)
        return path

    def _run_kwargs(self) -> dict[str, Any]:
        if self._owner is None:
            return {}
        return {"user": self._owner.pw_uid, "group": self._owner.pw_gid, "extra_groups": []}

    def _prepare(self) -> None:
        self._initdb()

    def _initdb(self) -> None:
        assert self._tmp is not None
        if self._owner is not None:
            os.chown(self._tmp, self._owner.pw_uid, self._owner.pw_gid)
        pwfile = self._private_file("pwfile", self.password.encode())
        proc = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self._tmp / "data"),
                "-U",
                self.user,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            cwd=self._tmp,
            capture_output=True,
            text=True,
            timeout=120,
            **self._run_kwargs(),
        )
        pwfile.unlink()
        if proc.returncode != 0:
            raise PostgresStartError(f"initdb failed ({proc.returncode}):\n{proc.stderr}")
        if self._tls is not None:
            cert, key = self._tls
            self._private_file("server.crt", Path(cert).read_bytes())
            self._private_file("server.key", Path(key).read_bytes())

    def _launch(self) -> None:
        assert self._tmp is not None
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self._tmp),
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "off",
            "max_connections": "50",
            "shared_buffers": "16MB",
            "logging_collector": "off",
        }
        if self._tls is not None:
            settings |= {
                "ssl": "on",
                "ssl_cert_file": str(self._tmp / "server.crt"),
                "ssl_key_file": str(self._tmp / "server.key"),
            }
        argv = [str(self.bin_dir / "postgres"), "-D", str(self._tmp / "data")]
        for k, v in settings.items():
            argv += ["-c", f"{k}={v}"]
        # Every backend joins the server's process group: stop() reaps them all.
        self._spawn(argv, log_name="postgres.log", **self._run_kwargs())
        isready = [str(self.bin_dir / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)]
        # pg_isready answers 0 only once the server accepts connections (after recovery).
        self._wait_ready(
            lambda: subprocess.run(isready, capture_output=True, timeout=10).returncode == 0
        )
