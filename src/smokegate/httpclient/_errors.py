"""Exception tree of the HTTP client.

Every failure a request can meet is an ``HttpError`` carrying the URL it happened on, so the
``http`` check can map each family to one readable error kind without parsing messages.
"""

from __future__ import annotations

import builtins


class HttpError(Exception):
    """Base of every error raised by the client; ``url`` is the URL being requested."""

    def __init__(self, message: str, url: str = "") -> None:
        super().__init__(message)
        self.url = url

    def __str__(self) -> str:
        msg = super().__str__()
        return f"{msg} ({self.url})" if self.url and self.url not in msg else msg


class InvalidURL(HttpError, ValueError):
    """The URL cannot be requested (bad scheme, no host, bad port, CR/LF in it)."""


class ConnectError(HttpError):
    """No connection could be made: refused, unreachable, reset during connect."""


class NameResolutionError(ConnectError):
    """The host name did not resolve (getaddrinfo failed)."""


class HttpTimeout(HttpError, builtins.TimeoutError):
    """The whole request (connect, TLS, send, response, redirects) exceeded ``timeout``.

    Also a ``builtins.TimeoutError`` so ``except TimeoutError`` keeps working.
    """


class TLSError(HttpError):
    """TLS handshake failed: certificate verification, protocol or cipher mismatch."""


class ProtocolError(HttpError):
    """The server sent something that is not acceptable HTTP/1.1, or too much of it."""


class ServerDisconnected(ProtocolError):
    """The server closed the connection before sending a (complete) response.

    ``before_response`` is true when not a single byte of the response had arrived: the only
    case where retrying an idempotent request on a fresh connection is safe.
    """

    def __init__(self, message: str, url: str = "", *, before_response: bool = False) -> None:
        super().__init__(message, url)
        self.before_response = before_response


class BodyTooLarge(ProtocolError):
    """The response body exceeded ``max_body`` bytes."""


class TooManyRedirects(ProtocolError):
    """More than ``max_redirects`` redirects were followed."""


class ClientClosed(HttpError):
    """The client was closed (``aclose()``) before or while the request ran."""
