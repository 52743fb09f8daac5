"""Fast YAML in and out for manifests (thousands of rendered objects per run).

PyYAML with libyaml (C) when present - it comes with the ``premerge`` extra - else ruamel's
pure-Python safe loader. Source files whose positions matter go through
``smokegate.suite.yamlpos`` instead; this module is for bulk manifests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

try:  # pragma: no cover - depends on the install
    import yaml as _pyyaml

    _Loader: Any = getattr(_pyyaml, "CSafeLoader", _pyyaml.SafeLoader)
    _Dumper: Any = getattr(_pyyaml, "CSafeDumper", _pyyaml.SafeDumper)
except ImportError:  # pragma: no cover
    _pyyaml = None


class YamlError(ValueError):
    """Text that is not YAML; ``line`` (1-based) when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _error(exc: Exception) -> YamlError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    parts = [str(x) for x in (getattr(exc, "context", None), getattr(exc, "problem", None)) if x]
    message = " ".join(" ".join(parts).split()) or " ".join(str(exc).split())
    return YamlError(message, mark.line + 1 if mark is not None else None)


def load_all(text: str) -> list[Any]:
    if _pyyaml is not None:
        try:
            return list(_pyyaml.load_all(text, Loader=_Loader))
        except _pyyaml.YAMLError as exc:
            raise _error(exc) from None
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return list(YAML(typ="safe", pure=True).load_all(text))
    except YAMLError as exc:
        raise _error(exc) from None


def load_one(text: str) -> Any:
    docs = [d for d in load_all(text) if d is not None]
    if len(docs) > 1:
        raise YamlError("expected one YAML document, found several")
    return docs[0] if docs else None


def dump(data: Any) -> str:
    """Block-style YAML with sorted keys: the same object always prints the same way, so a
    textual diff of two dumps shows only real changes."""
    if _pyyaml is not None:
        return str(
            _pyyaml.dump(
                data, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True
            )
        )
    import io

    from ruamel.yaml import YAML

    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    buf = io.StringIO()
    y.dump(_sorted(data), buf)
    return buf.getvalue()


def _sorted(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _sorted(data[k]) for k in sorted(data, key=str)}
    if isinstance(data, list):
        return [_sorted(v) for v in data]
    return data


_SPLIT = re.compile(r"^---[ \t]*(?:#.*)?$", re.MULTILINE)
_SOURCE = re.compile(r"^# Source: (.+?)\s*$", re.MULTILINE)


def split_helm_output(text: str) -> Iterator[tuple[str | None, str]]:
    """``helm template`` output -> (``# Source:`` template path, document text) per document."""
    for chunk in _SPLIT.split(text):
        if not chunk.strip():
            continue
        m = _SOURCE.search(chunk)
        yield (m.group(1) if m else None), chunk
