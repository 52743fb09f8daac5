"""URL parsing and request-head serialisation.

Smoke suites hit the same few URLs over and over, so a parsed URL is cached by its string and
the bytes of a header-less request head are cached per (method, URL): on the hot path a request
costs two dict lookups here instead of ``urlsplit`` plus string building. A matrix hits one
origin with 10,000 different paths or queries (``…/json?i=${i}``): the origin part
(``scheme://userinfo@host:port``) is parsed once and cached by its text, and only the rest
is split per URL, as ``urlsplit`` splits it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from urllib.parse import quote, unquote, urlsplit

from ._errors import InvalidURL

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Everything RFC 3986 allows unescaped in a path/query, plus "%" so existing escapes survive.
_SAFE = "/?:@!$&'()*+,;=-._~%[]"
_CACHE_MAX = 4096


class Target:
    """A parsed absolute http(s) URL, ready to be connected to and requested."""

    __slots__ = (
        "authorization",
        "host",
        "host_header",
        "is_tls",
        "port",
        "scheme",
        "target",
        "url",
    )

    def __init__(
        self,
        url: str,
        scheme: str,
        host: str,
        port: int,
        target: str,
        host_header: str,
        authorization: str | None,
    ) -> None:
        self.url = url
        self.scheme = scheme
        self.host = host  # as used for DNS, SNI and certificate checks (no brackets, IDNA)
        self.port = port
        self.is_tls = scheme == "https"
        self.target = target  # request-target: path + query, ASCII
        self.host_header = host_header
        self.authorization = authorization  # from user:pass@ in the URL, if any


_cache: dict[str, Target] = {}


def parse_url(url: str) -> Target:
    target = _cache.get(url)
    if target is None:
        target = _parse_via_origin(url)
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()  # crude but bounded: suites reuse far fewer URLs than this
        _cache[url] = target
    return target


_CONTROL = re.compile(r"[\x00-\x20\x7f]")
# `scheme://authority` and the rest (urlsplit ends the authority at the first / ? or #).
_ORIGIN = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)(.*)", re.DOTALL)
_origins: dict[str, Target] = {}


def _parse_via_origin(url: str) -> Target:
    """``_parse(url)``, the origin part parsed once per origin."""
    m = _ORIGIN.fullmatch(url)
    if m is None or _CONTROL.search(url):
        return _parse(url)  # its error (or a URL the fast split does not know)
    head, rest = m.groups()
    origin = _origins.get(head)
    if origin is None:
        try:
            origin = _parse(head + "/")
        except InvalidURL:
            return _parse(url)  # the error names the whole URL
        if len(_origins) >= _CACHE_MAX:
            _origins.clear()
        _origins[head] = origin
    rest = rest.split("#", 1)[0]
    path, _, query = rest.partition("?")
    path = path or "/"
    if query:
        path = f"{path}?{query}"
    if not path.isascii():
        path = quote(path, safe=_SAFE)
    o = origin
    return Target(url, o.scheme, o.host, o.port, path, o.host_header, o.authorization)


def _parse(url: str) -> Target:
    # Control characters would let a URL inject headers into the request head.
    if _CONTROL.search(url):
        raise InvalidURL("URL contains whitespace or control characters", url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"invalid URL: {exc}", url) from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidURL(f"unsupported URL scheme {parts.scheme!r} (only http and https)", url)
    host = parts.hostname
    if not host:
        raise InvalidURL("URL has no host", url)
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise InvalidURL(f"invalid host name: {exc}", url) from None
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    if not path.isascii():
        path = quote(path, safe=_SAFE)
    host_header = f"[{host}]" if ":" in host else host
    if port != _DEFAULT_PORTS[scheme]:
        host_header = f"{host_header}:{port}"
    authorization = None
    if parts.username is not None:
        cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(cred.encode()).decode("ascii")
    return Target(url, scheme, host, port, path, host_header, authorization)


HeaderArg = Mapping[str, str] | Sequence[tuple[str, str]] | None


def build_head(
    method: str, t: Target, headers: HeaderArg, body: bytes | None, user_agent: str
) -> bytes:
    """Serialise the request line and header fields (terminated by the blank line)."""
    if headers is None:
        extra: Sequence[tuple[str, str]] = ()
    elif isinstance(headers, Mapping):
        extra = list(headers.items())
    else:
        extra = headers
    given = set()
    for name, value in extra:
        if not name or any(c in name for c in ":\r\n \t") or "\r" in value or "\n" in value:
            raise InvalidURL(f"invalid request header {name!r}", t.url)
        given.add(name.lower())
    lines = [f"{method} {t.target} HTTP/1.1"]
    if "host" not in given:
        lines.append(f"Host: {t.host_header}")
    if "user-agent" not in given:
        lines.append(f"User-Agent: {user_agent}")
    if "accept" not in given:
        lines.append("Accept: */*")
    if t.authorization is not None and "authorization" not in given:
        lines.append(f"Authorization: {t.authorization}")
    # The body length is ours to state: a caller's Content-Length/Transfer-Encoding could only
    # disagree with the bytes actually sent and desynchronise the connection.
    lines.extend(
        f"{name}: {value}"
        for name, value in extra
        if name.lower() not in ("content-length", "transfer-encoding")
    )
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    elif method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: 0")  # some servers answer 411 to a length-less POST
    if "connection" not in given:
        lines.append("Connection: keep-alive")
    lines.append("\r\n")
    try:
        return "\r\n".join(lines).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise InvalidURL(f"request header is not latin-1: {exc}", t.url) from None
