"""``HttpClient``: request/redirect/timeout/retry logic on top of the pool."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping, Sequence
from time import perf_counter
from types import TracebackType
from urllib.parse import urljoin

from ._connection import RawResponse
from ._errors import (
    ClientClosed,
    HttpError,
    HttpTimeout,
    InvalidURL,
    ServerDisconnected,
    TooManyRedirects,
)
from ._models import Headers, HttpResponse, split_status_line
from ._pool import ConnectionPool, Origin
from ._url import HeaderArg, Target, build_head, parse_url

_REDIRECTS = frozenset((301, 302, 303, 307, 308))
# Safe to send twice (RFC 9110 §9.2.2): only these are retried after a stale keep-alive socket.
_IDEMPOTENT = frozenset(("GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"))
# Headers that must not follow a redirect to another origin (curl and browsers do the same).
_CREDENTIAL_HEADERS = frozenset(("authorization", "cookie", "proxy-authorization"))
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
# Bodies up to this size go out in the same write() as the head: one syscall, one segment.
_COALESCE_BODY = 64 * 1024

_default_ssl_context: ssl.SSLContext | None = None


def default_ssl_context() -> ssl.SSLContext:
    """The system-trust context used for https when none is given; built once (loading the
    CA bundle costs milliseconds) and shared, which also lets its connections share a pool."""
    global _default_ssl_context
    if _default_ssl_context is None:
        _default_ssl_context = ssl.create_default_context()
    return _default_ssl_context


def create_ssl_context(
    *,
    verify: bool = True,
    ca_file: str | None = None,
    ca_data: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
) -> ssl.SSLContext:
    """Convenience builder for the ``ssl_context`` argument.

    ``verify=False`` disables both chain and host name checks (the peer certificate is still
    reported on the response). ``ca_file``/``ca_data`` (PEM) replace the system trust store.
    ``client_cert`` (PEM, may include the key) and ``client_key`` enable mutual TLS.
    Create contexts once and reuse them: the pool keys connections by context identity.
    """
    if ca_file is not None or ca_data is not None:
        ctx = ssl.create_default_context(cafile=ca_file, cadata=ca_data)
    else:
        ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        ctx.load_cert_chain(client_cert, client_key)
    return ctx


class HttpClient:
    """A small HTTP/1.1 client tuned for many short requests (see the package docstring)."""

    def __init__(
        self, *, max_connections_per_origin: int = 100, user_agent: str = "smokegate"
    ) -> None:
        if max_connections_per_origin < 1:
            raise ValueError("max_connections_per_origin must be >= 1")
        self.user_agent = user_agent
        self.pool = ConnectionPool(max_connections_per_origin)
        self._loop: asyncio.AbstractEventLoop | None = None
        # (method, url) -> request head bytes, for the common header-less, body-less request.
        self._heads: dict[tuple[str, str], bytes] = {}
        # Origin lookup for the common case (no connect_to), skipping the 5-tuple key build.
        # (scheme, host, port, TLS context) -> its pool.
        self._origins: dict[tuple[str, str, int, ssl.SSLContext | None], Origin] = {}

    @property
    def connections_opened(self) -> int:
        """How many connections this client has established (keep-alive reuse keeps it low)."""
        return self.pool.connections_opened

    @property
    def requests_sent(self) -> int:
        return self.pool.requests_sent

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close idle connections now and busy ones when their request ends; fail waiters.

        Waits (briefly) until the idle transports are really closed, so that a loop closed
        right after us finds no open transports; stragglers are aborted after 0.5 s.
        """
        closing = self.pool.close()
        if not closing:
            return
        pending = [conn.wait_lost() for conn in closing]
        _, slow = await asyncio.wait(pending, timeout=0.5)
        if slow:
            for conn in closing:
                conn.abort()
            await asyncio.sleep(0)

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: HeaderArg = None,
        body: bytes | None = None,
        ssl_context: ssl.SSLContext | None = None,
        connect_to: tuple[str, int] | None = None,
        follow_redirects: bool = False,
        max_redirects: int = 10,
        timeout: float | None = None,
        max_body: int = 10 * 1024 * 1024,
    ) -> HttpResponse:
        """Send one request and read the whole response.

        ``timeout`` bounds everything (connect, TLS, each redirect hop, body); ``None`` waits
        forever. ``connect_to=(addr, port)`` connects there instead of resolving the URL's
        host, for that host:port only (like ``curl --resolve``): ``Host`` and SNI are unchanged.
        """
        if timeout is None:
            return await self._request(
                method, url, headers, body, ssl_context, connect_to,
                follow_redirects, max_redirects, max_body,
            )  # fmt: skip
        try:
            async with asyncio.timeout(timeout):
                return await self._request(
                    method, url, headers, body, ssl_context, connect_to,
                    follow_redirects, max_redirects, max_body,
                )  # fmt: skip
        except TimeoutError as exc:
            if isinstance(exc, HttpError):
                raise
            raise HttpTimeout(f"request timed out after {timeout:g}s", url) from None

    async def _request(
        self,
        method: str,
        url: str,
        headers: HeaderArg,
        body: bytes | None,
        ssl_context: ssl.SSLContext | None,
        connect_to: tuple[str, int] | None,
        follow_redirects: bool,
        max_redirects: int,
        max_body: int,
    ) -> HttpResponse:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._loop is not None:
                # Pooled transports and futures belong to the first loop; mixing loops would
                # hang or crash far from the cause.
                raise RuntimeError("HttpClient used from a second event loop; use one per loop")
            self._loop = loop
        if self.pool.closed:
            raise ClientClosed("HTTP client is closed", url)
        # Not loop.time(): uvloop's clock is libuv's millisecond, per-iteration cached one.
        start = perf_counter()
        t = parse_url(url)
        first = t
        history: list[str] = []
        while True:
            # connect_to pins one host:port (the requested one), as curl --resolve does.
            pin = connect_to if t.host == first.host and t.port == first.port else None
            raw, conn_tls, conn_cert = await self._exchange(
                loop, method, t, headers, body, ssl_context, pin, max_body
            )
            status = raw[0]
            headers_obj = Headers._from_raw(raw[1])
            if follow_redirects and status in _REDIRECTS:
                locations = headers_obj.get_all("location")
                if locations:
                    location = locations[0]  # a duplicated Location must not be comma-joined
                    if len(history) >= max_redirects:
                        raise TooManyRedirects(
                            f"more than {max_redirects} redirects (last: {status} to {location})",
                            url,
                        )
                    history.append(t.url)
                    nxt = parse_url(urljoin(t.url, location))
                    if (status == 303 and method != "HEAD") or (
                        status in (301, 302) and method == "POST"
                    ):
                        method, body = "GET", None  # what every browser does
                    if headers is not None and (nxt.host, nxt.port, nxt.scheme) != (
                        t.host,
                        t.port,
                        t.scheme,
                    ):
                        headers = _strip_credentials(headers)
                    t = nxt
                    continue
            version, reason = split_status_line(raw[1])
            return HttpResponse(
                status,
                reason,
                version,
                headers_obj,
                raw[2],
                t.url,
                history,
                perf_counter() - start,
                conn_tls,
                conn_cert,
            )

    async def _exchange(
        self,
        loop: asyncio.AbstractEventLoop,
        method: str,
        t: Target,
        headers: HeaderArg,
        body: bytes | None,
        ssl_context: ssl.SSLContext | None,
        connect_to: tuple[str, int] | None,
        max_body: int,
    ) -> tuple[RawResponse, str | None, bytes | None]:
        """One request/response on a pooled connection, retrying once on a stale socket."""
        if headers is None and body is None:
            key = (method, t.url)
            data = self._heads.get(key)
            if data is None:
                _check_method(method, t.url)
                data = build_head(method, t, None, None, self.user_agent)
                if len(self._heads) >= 4096:
                    self._heads.clear()
                self._heads[key] = data
        else:
            _check_method(method, t.url)
            data = build_head(method, t, headers, body, self.user_agent)
        extra = None
        if body:
            if len(body) <= _COALESCE_BODY:
                data += body
            else:
                extra = body

        ctx = (ssl_context or default_ssl_context()) if t.is_tls else None
        if connect_to is None:
            # Keyed by origin, not URL: a matrix of 10,000 distinct URLs on one host must not
            # thrash this cache.
            okey = (t.scheme, t.host, t.port, ctx)
            origin = self._origins.get(okey)
            if origin is None:
                origin = self.pool.origin(loop, t.scheme, t.host, t.port, None, ctx)
                if len(self._origins) >= 4096:
                    self._origins.clear()
                self._origins[okey] = origin
        else:
            origin = self.pool.origin(loop, t.scheme, t.host, t.port, connect_to, ctx)

        head = method == "HEAD"
        fresh = False
        while True:
            # Synchronous fast path: a warm idle connection needs no coroutine at all.
            conn = None if fresh else origin.take_idle()
            if conn is None:
                conn = await origin.acquire(t.url, fresh)
            try:
                waiter = conn.send(data, extra, head, max_body, t.url)
            except ServerDisconnected:
                # A pooled socket that died while being handed to us: nothing was written, so
                # any method may go again. A brand-new socket that is already closed is an
                # error, not a reason to loop.
                origin.release(conn, False)
                if conn.requests > 1:
                    continue
                raise
            self.pool.requests_sent += 1
            try:
                raw = await waiter
            except ServerDisconnected as exc:
                origin.release(conn, False)
                # Retry only when the server provably never saw/answered this request on a
                # *reused* socket (it closed the keep-alive connection as we wrote to it).
                if (
                    not fresh
                    and conn.requests > 1
                    and exc.before_response
                    and method in _IDEMPOTENT
                ):
                    fresh = True
                    continue
                raise
            except HttpError:
                origin.release(conn, False)
                raise
            except BaseException:  # cancelled (timeout) mid-request: the stream is undefined
                origin.abort(conn)
                raise
            origin.release(conn, raw[3])
            return raw, conn.tls_version, conn.peer_cert_der


def _check_method(method: str, url: str) -> None:
    if not method or not _TOKEN_CHARS.issuperset(method):
        raise InvalidURL(f"invalid HTTP method {method!r}", url)


def _strip_credentials(headers: Mapping[str, str] | Sequence[tuple[str, str]]) -> HeaderArg:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(k, v) for k, v in items if k.lower() not in _CREDENTIAL_HEADERS]
