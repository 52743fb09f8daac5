"""Response-side value types: ``Headers`` and ``HttpResponse``.

Both are built once per response on the hot path, so construction does no work beyond storing
references; decoding and indexing happen lazily, on first access, and only for what is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, overload

import orjson

_status_lines: dict[bytes, tuple[str, str]] = {}


def split_status_line(block: bytes) -> tuple[str, str]:
    """``(http_version, reason)`` from a head block; cached since servers repeat themselves."""
    end = block.find(b"\n")
    line = block if end < 0 else block[:end]
    parsed = _status_lines.get(line)
    if parsed is None:
        # llhttp validated "HTTP/d.d ddd[ reason]", so fixed offsets are safe here.
        parsed = (line[5:8].decode("ascii"), line[13:].rstrip(b"\r").decode("latin-1"))
        if len(_status_lines) >= 256:
            _status_lines.clear()
        _status_lines[line] = parsed
    return parsed


def parse_fields(block: bytes) -> list[tuple[str, str]]:
    """Header fields of a head block (status line first), already validated by llhttp."""
    items: list[tuple[str, str]] = []
    for line in block.splitlines()[1:]:
        if line[:1] in (b" ", b"\t") and items:
            # obs-fold (RFC 9112 §5.2): a continuation line joins the previous value.
            prev_name, prev_value = items[-1]
            items[-1] = (prev_name, f"{prev_value} {line.strip().decode('latin-1')}")
            continue
        name, _, value = line.partition(b":")
        # latin-1 is lossless for any byte: obs-text in values survives round trips.
        items.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return items


def header_values(block: bytes, lower_name: bytes) -> list[bytes]:
    """Raw values of one field, for the connection's rare-path decisions."""
    out = []
    for line in block.splitlines()[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == lower_name:
            out.append(value.strip())
    return out


class Headers:
    """Case-insensitive, multi-valued, order-preserving response header fields.

    ``get`` joins repeated fields with ``", "`` (RFC 9110 list semantics); ``get_all`` returns
    them one by one, which is what ``Set-Cookie`` needs.
    """

    __slots__ = ("_index", "_items", "_raw")

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        if items is None:
            pairs: list[tuple[str, str]] = []
        elif isinstance(items, Mapping):
            pairs = [(str(k), str(v)) for k, v in items.items()]
        else:
            pairs = [(str(k), str(v)) for k, v in items]
        self._raw = b""
        self._items: list[tuple[str, str]] | None = pairs
        self._index: dict[str, list[str]] | None = None

    @classmethod
    def _from_raw(cls, block: bytes) -> Headers:
        # Hot path: keep the head block as received. Nothing is split or decoded until someone
        # looks; most checks read one or two headers, many read none.
        self = cls.__new__(cls)
        self._raw = block
        self._items = None
        self._index = None
        return self

    def items(self) -> list[tuple[str, str]]:
        """All fields as ``(name, value)`` in received order, original name case."""
        items = self._items
        if items is None:
            items = self._items = parse_fields(self._raw)
        return items

    def _idx(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = {}
            for name, value in self.items():
                key = name.lower()
                if key in index:
                    index[key].append(value)
                else:
                    index[key] = [value]
            self._index = index
        return index

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    @overload
    def get(self, name: str, default: None) -> str | None: ...
    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._idx().get(name.lower())
        if values is None:
            return default
        return values[0] if len(values) == 1 else ", ".join(values)

    def get_all(self, name: str) -> list[str]:
        return list(self._idx().get(name.lower(), ()))

    def keys(self) -> list[str]:
        """Distinct field names, lower-cased, in order of first appearance."""
        return list(self._idx())

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._idx()

    def __iter__(self) -> Iterator[str]:
        return iter(self._idx())

    def __len__(self) -> int:
        return len(self.items())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._idx() == other._idx()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking container, like dict

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"


class HttpResponse:
    """A complete, fully read response (bodies are small in smoke checks: no streaming).

    ``url`` is the final URL after redirects, ``history`` the URLs that answered with a
    redirect, in order; ``elapsed`` spans the first connect to the last byte, redirects
    included. ``tls_version``/``peer_cert_der`` describe the connection of the final response.
    """

    __slots__ = (
        "body",
        "elapsed",
        "headers",
        "history",
        "http_version",
        "peer_cert_der",
        "reason",
        "status",
        "tls_version",
        "url",
    )

    def __init__(
        self,
        status: int,
        reason: str,
        http_version: str,
        headers: Headers,
        body: bytes,
        url: str,
        history: list[str],
        elapsed: float,
        tls_version: str | None = None,
        peer_cert_der: bytes | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.http_version = http_version
        self.headers = headers
        self.body = body
        self.url = url
        self.history = history
        self.elapsed = elapsed
        self.tls_version = tls_version
        self.peer_cert_der = peer_cert_der

    @property
    def charset(self) -> str | None:
        """The ``charset`` parameter of ``Content-Type``, if any."""
        ctype = self.headers.get("content-type")
        if not ctype:
            return None
        for param in ctype.split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset":
                return value.strip().strip('"').strip("'") or None
        return None

    def text(self) -> str:
        """Body decoded with the declared charset (UTF-8 if none or unknown), never raising."""
        charset = self.charset or "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know
            return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """Body parsed as JSON (orjson); raises ``orjson.JSONDecodeError`` (a ``ValueError``)."""
        return orjson.loads(self.body)

    def __repr__(self) -> str:
        return (
            f"<HttpResponse {self.status} {self.reason!r} {self.url} "
            f"body={len(self.body)}B elapsed={self.elapsed * 1000:.1f}ms>"
        )
