"""Secret values and their redaction.

Two layers, on purpose:

* ``Secret`` wraps a value so that ``str()``/``repr()``/formatting render ``***`` by construction.
* ``Redactor`` remembers every secret value a run has seen (and the encodings it may appear in:
  URL-quoted, base64 of ``user:password``) and scrubs them from any text. The engine scrubs every
  result once, at the single point where results are created, and every reporter scrubs its
  final text again, so a value that slipped into a driver's error message still never reaches a
  terminal, a report, a log or a store.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"

# Values shorter than this are not scrubbed from free text: masking every "1" or "ab" in a
# report would destroy it. Such short secrets are still masked where they are whole values.
_MIN_SCRUB_LEN = 3


class Secret:
    """A string that refuses to be printed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


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
        raw = value.reveal() if isinstance(value, Secret) else value
        if not raw or len(raw) < _MIN_SCRUB_LEN:
            return
        variants = {raw, quote(raw, safe=""), quote_plus(raw), repr(raw)[1:-1]}
        variants.add(base64.b64encode(raw.encode()).decode())
        new = {v for v in variants if len(v) >= _MIN_SCRUB_LEN} - self._values
        if new:
            self._values |= new
            self._pattern = None

    def add_basic_auth(self, user: str, password: str) -> None:
        """Basic auth headers carry base64("user:password"), which contains neither alone."""
        self.add(password)
        self.add(base64.b64encode(f"{user}:{password}".encode()).decode())

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
            return MASK
        if isinstance(data, dict):
            return {self.redact_data(k): self.redact_data(v) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return type(data)(self.redact_data(v) for v in data)
        return data
