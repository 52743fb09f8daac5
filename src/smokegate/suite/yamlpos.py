"""YAML loading that remembers where every value came from.

ruamel.yaml's round-trip loader keeps line/column on every mapping and sequence; we convert its
output to plain dicts/lists (so nothing downstream depends on ruamel types) and keep a flat map
``path -> (line, column)`` (1-based) used to turn a validation error's ``loc`` into
``file:line:col``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from smokegate.core.errors import Problem

Path = tuple[str | int, ...]


@dataclass(slots=True)
class Document:
    """One YAML document: plain data plus the position of every key and item."""

    file: str
    data: Any
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    # Key positions differ from value positions: an unknown field is reported at its key.
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path, *, key: bool = False) -> tuple[int, int] | None:
        """Position of ``path``, or of its closest ancestor that exists."""
        table = self.key_positions if key else self.positions
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if p in self.positions:
                return self.positions[p]
            p = p[:-1]
        return self.positions.get((), None)

    def problem(self, path: Path, message: str, *, key: bool = False) -> Problem:
        pos = self.locate(path, key=key)
        return Problem(self.file, pos[0] if pos else None, pos[1] if pos else None, message)


def load_documents(text: str, file: str) -> list[Document]:
    """Parse every YAML document in ``text``. Raises ``YamlSyntaxError`` with a position."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        raw_docs = list(yaml.load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(str(x) for x in (exc.context, exc.problem) if x) or str(exc)
        message = message.replace("\n", " ")
        if "duplicate key" in message:
            message = "duplicate key " + _quoted_key(str(exc))
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        raise YamlSyntaxError([Problem(file, line, col, f"YAML: {message}")]) from None
    except YAMLError as exc:
        raise YamlSyntaxError([Problem(file, None, None, f"YAML: {exc}")]) from None
    docs = []
    for raw in raw_docs:
        if raw is None:
            continue
        doc = Document(file=file, data=None)
        doc.positions[()] = _pos_of(raw) or (1, 1)
        doc.data = _convert(raw, (), doc)
        docs.append(doc)
    return docs


def _quoted_key(text: str) -> str:
    for line in text.splitlines():
        if 'found duplicate key "' in line:
            return line.split("found duplicate key", 1)[1].split(" with value")[0].strip()
    return ""


def _pos_of(node: Any) -> tuple[int, int] | None:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return None
    return lc.line + 1, lc.col + 1


def _convert(node: Any, path: Path, doc: Document) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            child = (*path, str(key))
            try:
                kl, kc = node.lc.key(key)
                doc.key_positions[child] = (kl + 1, kc + 1)
                vl, vc = node.lc.value(key)
                doc.positions[child] = (vl + 1, vc + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            out[str(key) if not isinstance(key, str | int | float | bool) else key] = _convert(
                value, child, doc
            )
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, value in enumerate(node):
            child = (*path, i)
            try:
                il, ic = node.lc.item(i)
                doc.positions[child] = (il + 1, ic + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            items.append(_convert(value, child, doc))
        return items
    return _scalar(node)


def _scalar(node: Any) -> Any:
    # ruamel returns str/int/float subclasses that carry formatting; downstream code wants the
    # plain builtins (orjson, pydantic strict checks and `type(x) is str` all care).
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def walk(data: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every (path, scalar) pair below ``data``."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield from walk(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from walk(v, (*path, i))
    else:
        yield path, data


class YamlSyntaxError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(map(str, problems)))
