"""Secret values and their redaction.

Two layers, on purpose:

* ``Secret`` is a type: text with secret parts (a Secret's value, a var marked ``secret: true``,
  or a string that embeds one, ``"Bearer ${token}"``). ``str()``, ``repr()``, formatting, JSON
  (pydantic's, and ``masked``) render the secret parts as ``***`` by construction; only
  ``reveal()`` gives the text, and a check calls it at the driver call, at the last moment.
  Suites interpolate to it (``suite.interpolate``); spec fields typed ``Text`` keep it.
* ``Redactor`` remembers every secret value a run has seen (and the encodings it may appear in:
  URL-quoted, base64 of ``user:password``) and scrubs them from any text, for what drivers and
  servers produce (an error quoting a DSN, a body echoing a token). The engine scrubs every
  result once, at the single point where results are created, the release flow scrubs the
  outcome once before it is reported, and every reporter scrubs its final text again, so a value
  that slipped into a driver's error message still never reaches a terminal, a report, a log, a
  store or a notification.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Annotated, Any, overload
from urllib.parse import quote, quote_plus

MASK = "***"

# Values shorter than this are not scrubbed from free text: masking every "1" or "ab" in a
# report would destroy it. Such short secrets are still masked where they are whole values.
_MIN_SCRUB_LEN = 3


class Secret:
    """Text that refuses to be printed: its secret parts render as ``***`` everywhere but in
    ``reveal()``. ``Secret("hunter22")`` is all secret; ``Secret.concat(["Bearer ", token])``
    renders as ``Bearer ***``."""

    __slots__ = ("_parts",)

    _parts: tuple[tuple[str, bool], ...]
    """``(text, is_secret)`` pieces."""

    def __init__(self, value: str) -> None:
        self._parts = ((value, True),)

    @classmethod
    def concat(cls, pieces: Iterable[str | Secret]) -> str | Secret:
        """The pieces joined: a ``Secret`` if any is one (its secret parts stay secret), else a
        plain ``str``."""
        parts: list[tuple[str, bool]] = []
        secret = False
        for piece in pieces:
            if isinstance(piece, Secret):
                parts.extend(piece._parts)
                secret = True
            elif piece:
                parts.append((piece, False))
        if not secret:
            return "".join(text for text, _ in parts)
        out = object.__new__(cls)
        out._parts = tuple(parts)
        return out

    @classmethod
    def _of(cls, parts: Iterable[tuple[str, bool]]) -> str | Secret:
        parts = tuple((text, hidden) for text, hidden in parts if text)
        if not any(hidden for _, hidden in parts):
            return "".join(text for text, _ in parts)
        out = object.__new__(cls)
        out._parts = parts
        return out

    def reveal(self) -> str:
        """The text, secret parts included: for the driver call, and nothing else."""
        return "".join(text for text, _ in self._parts)

    def secret_values(self) -> list[str]:
        """The secret parts' values (what a ``Redactor`` must learn)."""
        return [text for text, hidden in self._parts if hidden]

    def __str__(self) -> str:
        return "".join(MASK if hidden else text for text, hidden in self._parts)

    def __repr__(self) -> str:
        return f"Secret({str(self)!r})"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        # Equal to the text it holds (str-like, as its hash): comparing shows nothing.
        if isinstance(other, Secret):
            return other.reveal() == self.reveal()
        return isinstance(other, str) and other == self.reveal()

    def __hash__(self) -> int:
        return hash(self.reveal())

    def __bool__(self) -> bool:
        return any(text for text, _ in self._parts)

    def __copy__(self) -> Secret:
        return self  # immutable

    def __deepcopy__(self, memo: Any) -> Secret:
        return self

    # pydantic: a field typed ``Text`` keeps a Secret as it is; its JSON is the masked text.
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.is_instance_schema(
            cls,
            serialization=core_schema.plain_serializer_function_ser_schema(str, when_used="json"),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict[str, Any]:
        return {"type": "string"}


# A password in a URL's userinfo (``scheme://user:PASSWORD@host``) or a ``key=value`` connection
# string (``password=PASSWORD``), as written inline in a suite.
_URI_PASSWORD = re.compile(r"(//[^/:@\s]*:)([^@\s]+)(@)")
_KV_PASSWORD = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&;']+)")


def hide_credentials(value: str | Secret) -> str | Secret:
    """A URL or connection string with the password written in it (``https://u:pw@host/``,
    ``password=pw``) as a secret-bearing value, its password the secret part: for ``Text``
    fields that take URLs and DSNs, so an inline credential is a ``Secret`` like one read from
    a Kubernetes Secret."""
    parts = value._parts if isinstance(value, Secret) else ((value, False),)
    # (The patterns need an "@", or "password" before an "=": most URLs have neither, and a
    # matrix of 10,000 `?i=${i}` URLs passes through here at load time.)
    if not any(
        "@" in text or ("=" in text and "password" in text.lower())
        for text, hidden in parts
        if not hidden
    ):
        return value
    out: list[tuple[str, bool]] = []
    for text, hidden in parts:
        if hidden:
            out.append((text, True))
            continue
        for piece in _split_credentials(text):
            out.append(piece)
    return Secret._of(out)


def _split_credentials(text: str) -> list[tuple[str, bool]]:
    spans = sorted(
        [m.span(2) for m in _URI_PASSWORD.finditer(text)]
        + [m.span(2) for m in _KV_PASSWORD.finditer(text)]
    )
    out: list[tuple[str, bool]] = []
    pos = 0
    for start, end in spans:
        if start < pos:  # overlapping matches: the first one wins
            continue
        out += [(text[pos:start], False), (text[start:end], True)]
        pos = end
    out.append((text[pos:], False))
    return out


class _TextSchema:
    """``Text``'s validation: a ``Secret`` is kept, a ``str`` is a ``str``, anything else is the
    usual "Input should be a valid string" (one error, as for a ``str`` field)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.union_schema(
            [core_schema.str_schema(), handler.generate_schema(Secret)],
            custom_error_type="string_type",
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict[str, Any]:
        return {"type": "string"}


Text = Annotated[str | Secret, _TextSchema]
"""A spec field that may carry a secret (a password, a header value, a URL with userinfo): a
``str``, or a ``Secret`` when the suite built it from one. Checks ``reveal()`` it at the driver
call. Fields typed plain ``str`` get a Secret's text (``suite.model.Model`` reveals it there, and
masks it in ``repr()``), so the run's ``Redactor`` keeps it out of what they show."""


class KeepSecrets:
    """Marker for ``Annotated[Any, KeepSecrets()]`` fields (a JSON request body): the Secrets
    inside the value are kept as they are, to be revealed at the driver call."""


@overload
def reveal(value: str | Secret) -> str: ...
@overload
def reveal(value: None) -> None: ...
@overload
def reveal(value: Any) -> Any: ...
def reveal(value: Any) -> Any:
    """``value`` with every ``Secret`` in it (inside dicts, lists, tuples) revealed: for the
    driver call."""
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, dict):
        return {reveal(k): reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(reveal(v) for v in value)
    return value


def masked(value: Any) -> Any:
    """``value`` with every ``Secret`` in it rendered as its masked text (for messages and
    details: what a report may show)."""
    if isinstance(value, Secret):
        return str(value)
    if isinstance(value, dict):
        return {masked(k): masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(masked(v) for v in value)
    return value


def has_secret(value: Any) -> bool:
    """Is there a ``Secret`` anywhere inside ``value``?"""
    if isinstance(value, Secret):
        return True
    if isinstance(value, dict):
        return any(has_secret(k) or has_secret(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_secret(v) for v in value)
    return False


def secret_values(value: Any) -> list[str]:
    """The secret parts of every ``Secret`` inside ``value``."""
    if isinstance(value, Secret):
        return value.secret_values()
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*secret_values(k), *secret_values(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in secret_values(v)]
    return []


class Redactor:
    """Scrubs known secret values out of text and plain data."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for v in values:
            self.add(v)

    def __bool__(self) -> bool:
        return bool(self._values)

    def add(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            for part in value.secret_values():
                self.add(part)
            return
        raw = value
        if not raw or len(raw) < _MIN_SCRUB_LEN:
            return
        variants = {raw, quote(raw, safe=""), quote_plus(raw), repr(raw)[1:-1]}
        variants.add(base64.b64encode(raw.encode()).decode())
        new = {v for v in variants if len(v) >= _MIN_SCRUB_LEN} - self._values
        if new:
            self._values |= new
            self._pattern = None

    def add_basic_auth(self, user: str | Secret, password: str | Secret) -> None:
        """Basic auth headers carry base64("user:password"), which contains neither alone."""
        self.add(password)
        pair = f"{reveal(user)}:{reveal(password)}"
        self.add(base64.b64encode(pair.encode()).decode())

    def redact(self, text: str) -> str:
        if not self._values or not text:
            return text
        if self._pattern is None:
            # Longest first so that a value containing another is replaced whole.
            alternatives = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))
        return self._pattern.sub(MASK, text)

    def redact_data(self, data: Any) -> Any:
        """Recursively scrub strings inside dicts/lists/tuples; other values pass through."""
        if not self._values:
            return data
        if isinstance(data, str):
            return self.redact(data)
        if isinstance(data, Secret):
            return self.redact(str(data))
        if isinstance(data, dict):
            return {self.redact_data(k): self.redact_data(v) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return type(data)(self.redact_data(v) for v in data)
        return data
