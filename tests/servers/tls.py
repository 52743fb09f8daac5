"""Loopback TCP and TLS banner/echo servers for the tcp and tls check tests, and the certificates
they present (made with trustme, so nothing is read from disk).

    certs = make_certs()
    with TlsServer(certs.valid, banner=b"hello\\r\\n") as srv:
        ...  # connect to 127.0.0.1:srv.port, trust certs.ca_pem

A server runs in background threads (independent of the test's event loop, so both in-process
``run()`` calls and CLI subprocesses can use it). Per connection it sends ``banner`` (after
``banner_delay``), then answers each received line from ``replies`` or echoes it back, until
the client goes away; ``close_after_banner`` hangs up right after the banner instead.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import trustme

from tests.servers.process import Lifecycle


@dataclass(frozen=True)
class Certs:
    ca: trustme.CA
    valid: trustme.LeafCert
    """For localhost and 127.0.0.1, valid for a year."""
    expired: trustme.LeafCert
    """For localhost and 127.0.0.1, expired yesterday."""
    expiring: trustme.LeafCert
    """For localhost and 127.0.0.1, expires in 5 days (valid, but not for long)."""
    other_host: trustme.LeafCert
    """Valid, but for other.test and *.other.test only."""
    client: trustme.LeafCert
    """A client certificate for mutual TLS, issued by the same CA."""

    @property
    def ca_pem(self) -> str:
        return self.ca.cert_pem.bytes().decode()

    def write_ca(self, directory: Path) -> Path:
        path = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(path))
        return path

    def write_client(self, directory: Path) -> Path:
        """The client certificate and key in one PEM file."""
        path = directory / "client.pem"
        self.client.private_key_and_cert_chain_pem.write_to_path(str(path))
        return path


def make_certs() -> Certs:
    ca = trustme.CA(organization_name="smokegate test CA")
    now = dt.datetime.now(dt.UTC)
    return Certs(
        ca=ca,
        valid=ca.issue_cert("localhost", "127.0.0.1", common_name="localhost"),
        expired=ca.issue_cert(
            "localhost",
            "127.0.0.1",
            not_before=now - dt.timedelta(days=30),
            not_after=now - dt.timedelta(days=1),
        ),
        expiring=ca.issue_cert(
            "localhost", "127.0.0.1", not_after=now + dt.timedelta(days=5, hours=1)
        ),
        other_host=ca.issue_cert("other.test", "*.other.test"),
        client=ca.issue_cert("client@smokegate.test", common_name="test-client"),
    )


class StreamServer(Lifecycle):
    """A threaded plain-TCP banner/echo server on 127.0.0.1."""

    def __init__(
        self,
        *,
        banner: bytes = b"",
        banner_delay: float = 0.0,
        replies: Mapping[bytes, bytes] | None = None,
        close_after_banner: bool = False,
    ) -> None:
        self.banner = banner
        self.banner_delay = banner_delay
        self.replies = dict(replies or {})
        self.close_after_banner = close_after_banner
        self.host = "127.0.0.1"
        self.port = 0
        self.connections = 0
        self.handshake_errors: list[str] = []
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        sock.listen(64)
        sock.settimeout(0.1)
        self._sock = sock
        self.port = sock.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, name=f"server-{self.port}", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._conns.add(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def wrap(self, conn: socket.socket) -> socket.socket:
        return conn

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(10)
        try:
            conn = self.wrap(raw)
        except (OSError, ssl.SSLError) as exc:
            self.handshake_errors.append(str(exc))
            self._forget(raw)
            return
        if conn is not raw:
            # wrap_socket detached `raw`: stop() must shut down the TLS socket to wake us.
            with self._lock:
                self._conns.discard(raw)
                self._conns.add(conn)
        try:
            if self.banner_delay:
                time.sleep(self.banner_delay)
            if self.banner:
                conn.sendall(self.banner)
            if self.close_after_banner:
                return
            pending = b""
            while not self._stop.is_set():
                chunk = conn.recv(65536)
                if not chunk:
                    return
                pending += chunk
                while b"\n" in pending:
                    line, _, pending = pending.partition(b"\n")
                    key = line.rstrip(b"\r")
                    conn.sendall(self.replies.get(key, line + b"\n"))
        except (OSError, ssl.SSLError):
            return
        finally:
            self._forget(conn)

    def _forget(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)
        with contextlib.suppress(OSError):
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                c.close()
        for t in self._threads:
            t.join(timeout=5)


class TlsServer(StreamServer):
    """The same server behind TLS, presenting ``cert``.

    ``min_version``/``max_version`` bound the protocol versions it accepts; ``client_ca``
    makes it require a client certificate issued by that CA.
    """

    def __init__(
        self,
        cert: trustme.LeafCert,
        *,
        min_version: ssl.TLSVersion | None = None,
        max_version: ssl.TLSVersion | None = None,
        client_ca: trustme.CA | None = None,
        banner: bytes = b"",
        banner_delay: float = 0.0,
        replies: Mapping[bytes, bytes] | None = None,
        close_after_banner: bool = False,
    ) -> None:
        super().__init__(
            banner=banner,
            banner_delay=banner_delay,
            replies=replies,
            close_after_banner=close_after_banner,
        )
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(ctx)
        if min_version is not None:
            ctx.minimum_version = min_version
        if max_version is not None:
            ctx.maximum_version = max_version
        if client_ca is not None:
            client_ca.configure_trust(ctx)
            ctx.verify_mode = ssl.CERT_REQUIRED
        self.context = ctx

    def wrap(self, conn: socket.socket) -> socket.socket:
        return self.context.wrap_socket(conn, server_side=True)


class SilentServer:
    """A socket that listens but never accepts: the kernel completes the TCP handshake (the
    connection sits in the backlog) and then nothing ever answers: no banner, no TLS."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self._sock: socket.socket | None = None

    def __enter__(self) -> SilentServer:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((self.host, 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sock is not None:
            self._sock.close()
