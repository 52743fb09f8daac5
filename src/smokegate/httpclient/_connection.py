"""One HTTP/1.1 connection: an ``asyncio.Protocol`` driving httptools' C response parser.

Why a bare Protocol and not streams: ``StreamReader`` copies every chunk into its own buffer and
wakes a coroutine per ``read``; here the event loop hands bytes straight to llhttp, the parser
calls back into a handful of tiny methods, and exactly one future per request is resolved when
the message is complete. That is the whole per-request cost besides the socket syscalls.

One request at a time per connection (no pipelining): the pool hands a connection to one
request, the request awaits ``send()``'s future, then gives the connection back.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from ._errors import BodyTooLarge, HttpError, ProtocolError, ServerDisconnected
from ._models import header_values


class Owner(Protocol):
    """What a connection needs of the pool's ``Origin`` that owns it (declared here, so this
    module does not import the pool that imports it)."""

    loop: asyncio.AbstractEventLoop
    name: str

    def idle_lost(self, conn: Connection) -> None: ...


# (status, head block: status line + header fields, body, keep_alive)
RawResponse = tuple[int, bytes, bytes, bool]


class _HeadDone(Exception):
    """Raised from a parser callback to stop llhttp after the headers of a HEAD response."""


class Connection(asyncio.Protocol):
    __slots__ = (
        "_body",
        "_body_size",
        "_chunks",
        "_head",
        "_head_block",
        "_head_start",
        "_headers_done",
        "_lost",
        "_lost_waiter",
        "_max_body",
        "_parser",
        "_received",
        "_status",
        "_url",
        "_waiter",
        "closed",
        "counted",
        "idle",
        "origin",
        "peer_cert_der",
        "requests",
        "tls_version",
        "transport",
    )

    def __init__(self, origin: Owner) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self._parser = HttpResponseParser(self)
        self._waiter: asyncio.Future[RawResponse] | None = None
        # Bytes received until the head is complete; the head block is cut out of them in one
        # slice instead of letting llhttp call back into Python twice per header field.
        self._chunks: list[bytes] = []
        self._head_start = 0  # where the current message's head begins in the joined chunks
        self._head_block = b""  # status line + header fields, without the final CRLFCRLF
        self._body: list[bytes] = []
        self._body_size = 0
        self._max_body = 0
        self._status = 0
        self._head = False
        self._headers_done = False
        self._received = False
        self._url = ""
        self.closed = False  # no further requests (closing or closed)
        self._lost = False  # the transport is gone (connection_lost ran)
        self._lost_waiter: asyncio.Future[None] | None = None
        self.idle = False  # sitting in its origin's idle list
        self.counted = True  # holds one of the origin's connection slots
        self.requests = 0
        self.tls_version: str | None = None
        self.peer_cert_der: bytes | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            # Read once per connection, not per response: the handshake cannot change.
            self.tls_version = ssl_object.version()
            self.peer_cert_der = ssl_object.getpeercert(binary_form=True)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # Bytes nobody asked for (garbage after a response, or a late 408 on an idle
            # connection): the stream is out of sync, so the connection is unusable.
            self.close()
            return
        self._received = True
        if not self._headers_done:
            self._chunks.append(data)
        try:
            self._parser.feed_data(data)
        except HttpParserUpgrade:
            # 101 Switching Protocols: hand the 101 back; the socket no longer speaks HTTP.
            self._finish(False)
            self.close()
        except HttpParserError as exc:
            if isinstance(exc.__context__, _HeadDone):
                # The parser still expects the body a HEAD response announces but never sends;
                # a fresh one is cheaper than teaching this one otherwise.
                self._parser = HttpResponseParser(self)
                return
            cause = exc.__context__
            if isinstance(cause, HttpError):
                self._fail(cause)
            else:
                self._fail(ProtocolError(f"malformed HTTP response: {exc}", self._url))
            self.close()

    def eof_received(self) -> bool:
        return False  # let the transport close; connection_lost does the bookkeeping

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._lost = True
        if self._lost_waiter is not None and not self._lost_waiter.done():
            self._lost_waiter.set_result(None)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                if self._headers_done and self._eof_delimited():
                    # No Content-Length, not chunked: the body legitimately ends at close.
                    waiter.set_result(self._result(False))
                elif not self._received:
                    waiter.set_exception(
                        ServerDisconnected(
                            "server closed the connection without sending a response",
                            self._url,
                            before_response=True,
                        )
                    )
                else:
                    waiter.set_exception(
                        ServerDisconnected(
                            "server closed the connection in the middle of the response",
                            self._url,
                        )
                    )
        if self.idle:
            self.origin.idle_lost(self)

    # -- httptools callbacks (hot path: keep them tiny) -----------------------------------------

    def on_headers_complete(self) -> None:
        self._headers_done = True
        self._status = status = self._parser.get_status_code()
        chunks = self._chunks
        if len(chunks) == 1:
            buf = chunks[0]
        else:
            buf = b"".join(chunks)
            self._chunks = [buf]  # keeps _head_start valid should a 1xx head precede this one
        start = self._head_start
        end = buf.find(b"\r\n\r\n", start)
        if end < 0:  # llhttp has accepted the head, so only bare-LF endings can get here
            end = buf.find(b"\n\n", start)
            self._head_start = end + 2
        else:
            self._head_start = end + 4
        self._head_block = buf[start:end]
        if status >= 200 or status == 101:
            # Final head: drop the chunks so an idle connection doesn't pin the last read.
            self._chunks = []
        if self._head and status >= 200:
            self._finish(self._head_keep_alive())
            raise _HeadDone

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        size = self._body_size = self._body_size + len(body)
        if size > self._max_body:
            raise BodyTooLarge(
                f"response body exceeds max_body ({self._max_body} bytes)", self._url
            )

    def on_message_complete(self) -> None:
        if self._status < 200 and self._status != 101:
            # An interim 1xx response (103 Early Hints...): the real one follows.
            self._body = []
            self._body_size = 0
            self._headers_done = False
            return
        self._finish(self._parser.should_keep_alive())

    # -- used by the pool/client ----------------------------------------------------------------

    def send(
        self, data: bytes, body: bytes | None, head: bool, max_body: int, url: str
    ) -> asyncio.Future[RawResponse]:
        """Write one request; the future resolves to the complete response."""
        self.requests += 1  # counted first: "requests > 1" means reused, even if closed
        if self.closed:
            raise ServerDisconnected(
                "connection closed before the request was sent", url, before_response=True
            )
        assert self.transport is not None
        if self._chunks:
            self._chunks = []
        self._head_start = 0
        self._body = []
        self._body_size = 0
        self._max_body = max_body
        self._head = head
        self._headers_done = False
        self._received = False
        self._url = url
        self._waiter = waiter = self.origin.loop.create_future()
        self.transport.write(data)
        if body is not None:
            self.transport.write(body)
        return waiter

    def close(self) -> None:
        self._waiter = None
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    def wait_lost(self) -> asyncio.Future[None]:
        """Resolves once the transport is really gone (TLS close_notify exchanged, fd closed)."""
        fut: asyncio.Future[None] = self.origin.loop.create_future()
        if self._lost:
            fut.set_result(None)
        else:
            self._lost_waiter = fut
        return fut

    def abort(self) -> None:
        """Drop the connection without TLS close_notify: used when the request was cancelled."""
        self._waiter = None
        if self.transport is not None and not self._lost:
            self.transport.abort()
        self.closed = True

    # -- internals ------------------------------------------------------------------------------

    def _result(self, keep_alive: bool) -> RawResponse:
        body = self._body
        return (
            self._status,
            self._head_block,
            body[0] if len(body) == 1 else b"".join(body),
            keep_alive,
        )

    def _finish(self, keep_alive: bool) -> None:
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(self._result(keep_alive))

    def _fail(self, exc: BaseException) -> None:
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _head_keep_alive(self) -> bool:
        # llhttp judges keep-alive as if a body followed: a HEAD answer without Content-Length
        # looks close-delimited to it. Only the version and Connection header matter here.
        tokens = {
            token.strip().lower()
            for value in header_values(self._head_block, b"connection")
            for token in value.split(b",")
        }
        if self._head_block.startswith(b"HTTP/1.0"):
            return b"keep-alive" in tokens
        return b"close" not in tokens

    def _eof_delimited(self) -> bool:
        if self._head or self._status in (204, 304):
            return False
        block = self._head_block
        return not header_values(block, b"content-length") and not header_values(
            block, b"transfer-encoding"
        )

    def __repr__(self) -> str:
        state = "closed" if self.closed else "idle" if self.idle else "busy"
        return f"<Connection {self.origin.name} {state} requests={self.requests}>"
