"""Secret values never leave ``validate``/``diff`` in clear.

* A ``Secret`` object's ``data`` and ``stringData`` values become ``<secret hmac:XXXXXXXX>``:
  an HMAC-SHA256 under a key made fresh for each run, so within one diff an unchanged value
  shows the same mark on both sides and a changed one a different mark, while the mark says
  nothing about the value (a plain hash of a short password could be reversed by guessing).
* Text that came from Secrets (``valuesFrom`` Secrets, Secret objects of the repository) is
  scrubbed from every line printed, wherever a chart copied it
  (``smokegate.core.secrets.Redactor``).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Iterator, Mapping
from typing import Any


class SecretMasker:
    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or _secrets.token_bytes(32)

    def mark(self, value: str) -> str:
        digest = hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return f"<secret hmac:{digest.hexdigest()[:8]}>"

    def object(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``obj`` with Secret values replaced (other kinds: a plain copy)."""
        out = copy.deepcopy(dict(obj))
        if out.get("kind") != "Secret" or out.get("apiVersion") != "v1":
            return out
        for section, decode in (("data", True), ("stringData", False)):
            values = out.get(section)
            if isinstance(values, dict):
                out[section] = {
                    k: self.mark(_decoded(v) if decode else str(v)) for k, v in values.items()
                }
        return out


def _decoded(value: Any) -> str:
    try:
        return base64.b64decode(str(value), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return str(value)


def secret_values(obj: Mapping[str, Any]) -> Iterator[str]:
    """Every value of a Secret object, decoded and as written."""
    for section, decode in (("data", True), ("stringData", False)):
        values = obj.get(section)
        if isinstance(values, dict):
            for v in values.values():
                yield str(v)
                if decode:
                    yield _decoded(v)


class SecretScrubber:
    """Replaces every known secret text in free text by its ``SecretMasker`` mark, so a value
    a chart copied out of a Secret still shows *that* it changed, never *what* it is.

    Values shorter than ``MIN_LENGTH`` are not scrubbed from free text (masking every ``1``
    would destroy the diff); they are still masked where they are whole Secret values."""

    MIN_LENGTH = 4

    def __init__(self, masker: SecretMasker) -> None:
        self.masker = masker
        self._values: dict[str, str] = {}
        self._pattern: Any = None

    def add(self, value: str) -> None:
        if len(value) < self.MIN_LENGTH or value in self._values:
            return
        mark = self.masker.mark(value)
        for variant in {value, base64.b64encode(value.encode()).decode(), repr(value)[1:-1]}:
            self._values.setdefault(variant, mark)
        for line in value.splitlines():
            if len(line.strip()) >= self.MIN_LENGTH:
                self._values.setdefault(line.strip(), mark)
        self._pattern = None

    def __bool__(self) -> bool:
        return bool(self._values)

    def scrub(self, text: str) -> str:
        if not self._values:
            return text
        if self._pattern is None:
            import re

            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
        return self._pattern.sub(lambda m: self._values[m.group(0)], text)
