"""A small, fast, typed asyncio HTTP/1.1 client for smokegate's ``http`` check.

Design, in one breath: each connection is a bare ``asyncio.Protocol`` feeding httptools' C
parser (llhttp), connections are kept alive in a per-origin pool with a connection limit, and
a request's hot path is two dict lookups, one ``write()``, one future and a few parser
callbacks. It runs on the default event loop and on uvloop (faster; install ``smokegate[speed]``).

What it does:

* HTTP/1.1 with keep-alive; ``Content-Length``, chunked and read-until-close bodies; HEAD;
  interim 1xx responses skipped.
* https with a cached ``ssl.create_default_context()`` by default, or any ``SSLContext``
  (custom CA, ``verify=False``, client certificates: see ``create_ssl_context``); the
  negotiated TLS version and the peer certificate (DER) are reported on the response.
* ``connect_to=(addr, port)``: connect to another address while keeping ``Host`` and SNI,
  like ``curl --resolve``.
* Redirects (301/302/303/307/308) when asked, with a limit; credentials are dropped when a
  redirect leaves the origin.
* One overall ``timeout`` per request (connect, TLS, every redirect hop, body).
* A stale kept-alive connection (closed by the server just as a request was written) is
  retried once, on a fresh connection, for idempotent methods only.

What it deliberately does not do: HTTP/2 or HTTP/3, proxies (HTTP or SOCKS, ``*_PROXY``
variables are ignored), cookies, ``Accept-Encoding``/decompression (bodies are returned as sent),
streaming bodies (responses are read whole, up to ``max_body``), pipelining, ``Expect:
100-continue``. Response trailers (rare, chunked only) are ignored.

A client binds to the event loop it is first used on; use one client per loop.
"""

from ._client import HttpClient, create_ssl_context, default_ssl_context
from ._errors import (
    BodyTooLarge,
    ClientClosed,
    ConnectError,
    HttpError,
    HttpTimeout,
    InvalidURL,
    NameResolutionError,
    ProtocolError,
    ServerDisconnected,
    TLSError,
    TooManyRedirects,
)
from ._models import Headers, HttpResponse
from ._pool import ConnectionPool

# The spec's name for HttpTimeout. Reachable as ``httpclient.TimeoutError`` but left out of
# __all__ so ``from smokegate.httpclient import *`` cannot shadow the builtin (which it
# subclasses anyway: ``except TimeoutError`` catches it either way).
TimeoutError = HttpTimeout

__all__ = [
    "BodyTooLarge",
    "ClientClosed",
    "ConnectError",
    "ConnectionPool",
    "Headers",
    "HttpClient",
    "HttpError",
    "HttpResponse",
    "HttpTimeout",
    "InvalidURL",
    "NameResolutionError",
    "ProtocolError",
    "ServerDisconnected",
    "TLSError",
    "TooManyRedirects",
    "create_ssl_context",
    "default_ssl_context",
]
