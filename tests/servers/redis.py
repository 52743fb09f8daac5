"""A throwaway Redis for tests: Debian's ``redis-server`` on free loopback ports, with a unique
password per instance, an ACL user, and TLS on a second port when cert/key are given.

    with RedisServer(tls_cert=cert, tls_key=key, tls_ca=ca) as r:
        r.port, r.tls_port, r.password         # AUTH <password> (default user)
        r.acl_user                             # AUTH <acl_user> <password>

Debian builds redis-server with TLS support, so ``tls-port`` always works there. Nothing is
persisted: no RDB, no AOF, and the temporary directory is removed by ``stop()``.
"""

from __future__ import annotations

import os
import socket
import uuid

from tests.servers.process import (
    ServerNotFoundError,
    ServerProcess,
    ServerStartError,
    accepting,
    find_binary,
    free_port,
    read_logs,
)

APT_HINT = "apt-get install -y -o DPkg::Lock::Timeout=600 redis-server"


class RedisNotFoundError(ServerNotFoundError):
    """The Debian redis-server package is missing: tests fail loudly instead of skipping."""


class RedisStartError(ServerStartError):
    """redis-server exited or never accepted connections; the message carries its log."""


def find_redis() -> str:
    found = find_binary("redis-server", ("/usr/bin/redis-server",))
    if found is None:
        raise RedisNotFoundError(f"redis-server not found: {APT_HINT}")
    return found


class RedisServer(ServerProcess):
    label = "redis-server"
    tmp_prefix = "smokegate-redis-"
    start_error = RedisStartError
    stop_grace = 10.0
    port_in_use = "in use"
    log_files = ("redis.log", "stderr.log")

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
        super().__init__(start_timeout=start_timeout)
        self.binary = find_redis()
        self.password = password or f"rd-{uuid.uuid4().hex}"
        self.acl_user = acl_user
        self.tls_port = 0
        self._tls = (tls_cert, tls_key, tls_ca) if tls_cert and tls_key else None

    @property
    def log(self) -> str:
        return read_logs(self._tmp / "redis.log") if self._tmp else ""

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

    # -- internals ----------------------------------------------------------------------------

    def _pick_ports(self) -> None:
        self.port = free_port()
        self.tls_port = free_port() if self._tls else 0

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

    def _launch(self) -> None:
        assert self._tmp is not None
        conf = self._tmp / "redis.conf"
        conf.write_text(self._config())
        conf.chmod(0o600)
        self._spawn([self.binary, str(conf)])
        self._wait_ready(accepting(self.host, self.port, self.tls_port), self.port, self.tls_port)
