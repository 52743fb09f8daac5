"""Keep-alive connection pool: one ``Origin`` per (scheme, host, port, connect_to, SSL context).

Why a hand-rolled limiter instead of ``asyncio.Semaphore`` around connect: a request that
finishes hands its connection *directly* to the oldest waiter (no release/re-acquire round trip,
no idle-list churn), and a slot freed by a dead connection becomes a "connect yourself" ticket
for exactly one waiter. Idle connections are reused LIFO so the warmest socket goes first and
surplus ones age out on the server side.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from collections import deque

from ._connection import Connection
from ._errors import ClientClosed, ConnectError, HttpTimeout, NameResolutionError, TLSError

OriginKey = tuple[str, str, int, tuple[str, int] | None, ssl.SSLContext | None]


class Origin:
    """Connections to one origin (as reached through one address and TLS configuration)."""

    __slots__ = (
        "connect_host",
        "connect_port",
        "host",
        "idle",
        "limit",
        "loop",
        "name",
        "pool",
        "ssl_context",
        "total",
        "waiters",
    )

    def __init__(
        self,
        pool: ConnectionPool,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        connect_to: tuple[str, int] | None,
        ssl_context: ssl.SSLContext | None,
        limit: int,
    ) -> None:
        self.pool = pool
        self.loop = loop
        self.host = host  # for SNI and certificate checks, even when connecting elsewhere
        self.connect_host, self.connect_port = connect_to or (host, port)
        self.ssl_context = ssl_context
        self.limit = limit
        self.name = f"{'https' if ssl_context else 'http'}://{host}:{port}"
        if connect_to is not None:
            self.name += f" via {connect_to[0]}:{connect_to[1]}"
        self.idle: list[Connection] = []
        self.total = 0  # open + connecting connections (<= limit)
        self.waiters: deque[asyncio.Future[Connection | None]] = deque()

    def take_idle(self) -> Connection | None:
        """The most recently used live idle connection, if any."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            conn.idle = False
            if not conn.closed:
                return conn
            self._discard(conn)
        return None

    async def acquire(self, url: str, fresh: bool = False) -> Connection:
        """A connection for one request: idle if any (unless ``fresh``), else a new one."""
        idle = self.idle
        if fresh:
            if idle and self.total >= self.limit:
                # Retrying after a stale keep-alive socket: its idle siblings are suspect too.
                self._discard(idle.pop(0))
        else:
            conn = self.take_idle()
            if conn is not None:
                return conn
        if self.total < self.limit:
            self.total += 1
        else:
            waiter: asyncio.Future[Connection | None] = self.loop.create_future()
            self.waiters.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    # Cancelled after being handed a connection or slot: pass it on.
                    got = waiter.result()
                    if got is not None:
                        self.release(got, True)
                    else:
                        self.total -= 1
                        self._wake()
                else:
                    with contextlib.suppress(ValueError):  # don't let dead waiters pile up
                        self.waiters.remove(waiter)
                raise
            if handed is not None:
                return handed
            # handed None: a slot was reserved for us (total already counts it).
        try:
            return await self._connect(url)
        except BaseException:
            self.total -= 1
            self._wake()
            raise

    def release(self, conn: Connection, reusable: bool) -> None:
        """Give a connection back after its request: keep it warm, hand it over, or drop it."""
        if reusable and not conn.closed and not self.pool.closed:
            waiters = self.waiters
            while waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_result(conn)
                    return
            conn.idle = True
            self.idle.append(conn)
        else:
            conn.close()
            self._discard(conn)

    def abort(self, conn: Connection) -> None:
        """Drop a connection whose request was interrupted mid-flight."""
        conn.abort()
        self._discard(conn)

    def idle_lost(self, conn: Connection) -> None:
        """An idle connection was closed by the server (keep-alive timeout)."""
        conn.idle = False
        with contextlib.suppress(ValueError):  # already taken out by acquire()
            self.idle.remove(conn)
        self._discard(conn)

    def close(self) -> list[Connection]:
        """Close idle connections, fail waiters; returns the connections being closed."""
        closing = self.idle[:]
        for conn in closing:
            conn.idle = False
            conn.close()
            conn.counted = False
        self.idle.clear()
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ClientClosed("HTTP client closed", self.name))
        return closing

    # -- internals ------------------------------------------------------------------------------

    def _discard(self, conn: Connection) -> None:
        conn.close()
        if conn.counted:  # each connection gives its slot back exactly once
            conn.counted = False
            self.total -= 1
            self._wake()

    def _wake(self) -> None:
        waiters = self.waiters
        while waiters and self.total < self.limit:
            waiter = waiters.popleft()
            if not waiter.done():
                self.total += 1  # reserved on the waiter's behalf
                waiter.set_result(None)

    async def _connect(self, url: str) -> Connection:
        conn = Connection(self)
        tls = self.ssl_context
        host, port = self.connect_host, self.connect_port
        try:
            await self.loop.create_connection(
                lambda: conn,
                host,
                port,
                ssl=tls,
                server_hostname=self.host if tls is not None else None,
            )
        except socket.gaierror as exc:
            raise NameResolutionError(f"cannot resolve host {host!r}: {exc.strerror}", url) from exc
        except ssl.SSLCertVerificationError as exc:
            raise TLSError(
                f"TLS certificate verification failed for {self.host}: "
                f"{exc.verify_message or exc.reason}",
                url,
            ) from exc
        except ssl.SSLError as exc:
            raise TLSError(
                f"TLS handshake with {self.host} failed: {exc.reason or exc}", url
            ) from exc
        except TimeoutError as exc:  # the kernel's connect timeout (ETIMEDOUT)
            raise HttpTimeout(f"connect to {host}:{port} timed out", url) from exc
        except OSError as exc:
            # Handshake EOFs surface as ConnectionResetError/OSError on some loops.
            # asyncio words a refusal "Connect call failed (addr)": the errno says more.
            reason = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
            raise ConnectError(f"cannot connect to {host}:{port}: {reason}", url) from exc
        self.pool.connections_opened += 1
        return conn


class ConnectionPool:
    """All origins of one client, plus counters the tests and benchmarks look at."""

    __slots__ = ("closed", "connections_opened", "limit", "origins", "requests_sent")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.origins: dict[OriginKey, Origin] = {}
        self.closed = False
        self.connections_opened = 0  # TCP connections successfully established, ever
        self.requests_sent = 0

    def origin(
        self,
        loop: asyncio.AbstractEventLoop,
        scheme: str,
        host: str,
        port: int,
        connect_to: tuple[str, int] | None,
        ssl_context: ssl.SSLContext | None,
    ) -> Origin:
        key = (scheme, host, port, connect_to, ssl_context)
        origin = self.origins.get(key)
        if origin is None:
            origin = self.origins[key] = Origin(
                self, loop, host, port, connect_to, ssl_context, self.limit
            )
        return origin

    @property
    def idle_connections(self) -> int:
        return sum(len(o.idle) for o in self.origins.values())

    def close(self) -> list[Connection]:
        self.closed = True
        closing: list[Connection] = []
        for origin in self.origins.values():
            closing += origin.close()
        return closing
