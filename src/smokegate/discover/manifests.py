"""Reading rendered manifests (``helm template`` output, a release Secret's manifest, ``-f``
files) into plain objects, with errors that name the document and the field path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smokegate.core.errors import UsageError
from smokegate.discover.objects import describe_value


class Manifest(dict[str, Any]):
    """An object read from manifest text: a plain dict that remembers where it was written."""

    __slots__ = ("where",)

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        super().__init__(data)
        self.where = where


# --- reading manifests -------------------------------------------------------------------------


def load_manifests(text: str, source: str = "manifests") -> list[dict[str, Any]]:
    """``---``-separated YAML (``helm template`` output, a release's ``manifest``, ``kubectl get
    -o yaml``) -> object dicts (``Manifest``: each knows its document). ``List`` kinds are
    flattened; empty documents are skipped. Text that is not YAML, or a document that is not an
    object, is a ``UsageError`` naming the file and the line or document."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="safe", pure=True)
    try:
        docs = list(yaml.load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = "; ".join(str(x).strip() for x in (exc.context, exc.problem) if x) or "syntax"
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise UsageError(f"{where}: not valid YAML: {' '.join(what.split())}") from None
    except YAMLError as exc:
        raise UsageError(_reader_error(exc, text, source)) from None
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, doc in enumerate(docs, 1):
        where = f"{source}, document {number}"
        if doc is None:
            continue
        if not isinstance(doc, dict):
            hint = (
                " (one object per `---` document, or kind: List)" if isinstance(doc, list) else ""
            )
            problems.append(
                f"{where}: expected a Kubernetes object (a mapping with apiVersion and kind), "
                f"got {describe_value(doc)}{hint}"
            )
            continue
        if isinstance(doc.get("kind"), str) and doc["kind"].endswith("List"):
            items = doc.get("items")
            if items is not None and not isinstance(items, list):
                problems.append(
                    f"{where} ({doc['kind']}): items: expected a list, got {describe_value(items)}"
                )
                continue
            for i, item in enumerate(items or ()):
                if not isinstance(item, dict):
                    problems.append(
                        f"{where} ({doc['kind']}): items[{i}]: expected a Kubernetes object "
                        f"(a mapping), got {describe_value(item)}"
                    )
                    continue
                out.append(Manifest(item, f"{where}, items[{i}]"))
        else:
            out.append(Manifest(doc, where))
    if problems:
        raise UsageError(
            problems[0]
            if len(problems) == 1
            else f"{len(problems)} problems:\n  " + "\n  ".join(problems)
        )
    return out


def _reader_error(exc: Exception, text: str, source: str) -> str:
    """A character YAML refuses (a control character, a lone surrogate standing for a byte that
    is not UTF-8), said with its line and column instead of a character offset."""
    position = getattr(exc, "position", None)
    character = getattr(exc, "character", None)
    if not isinstance(position, int):
        return f"{source}: not valid YAML: {' '.join(str(exc).split())}"
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    code = ord(character) if isinstance(character, str) else character
    if isinstance(code, int) and 0xDC80 <= code <= 0xDCFF:
        return f"{source}:{line}:{column}: not UTF-8 text (byte 0x{code - 0xDC00:02x})"
    shown = f"character U+{code:04X}" if isinstance(code, int) else "a character"
    return f"{source}:{line}:{column}: not valid YAML: {shown} is not allowed"
