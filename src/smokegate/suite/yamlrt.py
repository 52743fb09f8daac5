"""The reference YAML reader: ruamel.yaml's round-trip loader (YAML 1.2, pure Python).

It keeps line/column on every mapping and sequence; its output is converted to plain data with
the positions of every key and item (``suite.yamldoc.Document``). ``suite.yamlc`` is the fast
reader; this one reads what it hands back (YAML errors, duplicate keys, explicit tags,
directives...), so such files behave exactly as they always did, and the tests compare the two.
"""

from __future__ import annotations

from typing import Any

from smokegate.core.errors import Problem
from smokegate.suite.yamldoc import (
    MAX_NESTING,
    AliasBomb,
    AliasCounting,
    Document,
    Path,
    TooDeep,
    YamlSyntaxError,
    alias_bomb_error,
    deepest_point,
    offset_position,
    too_deep_error,
    too_deep_message,
)


def load_documents(text: str, file: str) -> list[Document]:
    """Parse every YAML document in ``text``. Raises ``YamlSyntaxError`` with a position."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    yaml.Constructor = _located_constructor()
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
    except ReaderError as exc:
        # A character YAML does not allow (NUL, other C0 controls...): ruamel gives its offset
        # in the text, not a mark.
        line, col = offset_position(text, exc.position)
        what = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        raise YamlSyntaxError(
            [Problem(file, line, col, f"YAML: unacceptable character {what}: {exc.reason}")]
        ) from None
    except RecursionError:
        where = deepest_point(text)
        line, col = where if where else (None, None)
        raise YamlSyntaxError([Problem(file, line, col, too_deep_message())]) from None
    except YAMLError as exc:
        raise YamlSyntaxError([Problem(file, None, None, f"YAML: {exc}")]) from None
    docs = []
    for raw in raw_docs:
        if raw is None:
            continue
        doc = Document(file=file, data=None)
        doc.positions[()] = _pos_of(raw) or (1, 1)
        try:
            doc.data = _Converter(doc).convert(raw, ())
        except AliasBomb as bomb:
            raise alias_bomb_error(doc, bomb) from None
        except TooDeep as err:
            raise too_deep_error(doc, err) from None
        docs.append(doc)
    return docs


def _located_constructor() -> type:
    """ruamel's round-trip constructor, with a value it cannot build (``!!int nope``, ``0x_``)
    raised as a YAML error at that value's node instead of a bare ValueError/IndexError."""
    from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
    from ruamel.yaml.error import MarkedYAMLError

    class LocatedConstructor(RoundTripConstructor):
        def construct_object(self, node: Any, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep=deep)
            except (MarkedYAMLError, RecursionError):
                raise
            except (ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:
                tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
                value = node.value if isinstance(node.value, str) else "..."
                raise ConstructorError(
                    None,
                    None,
                    f"cannot read {value!r} as {tag} ({exc.__class__.__name__}: {exc})",
                    node.start_mark,
                ) from None

    return LocatedConstructor


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


class _Converter(AliasCounting):
    """ruamel nodes to plain data; counts values reached a second time (through an alias)."""

    def __init__(self, doc: Document) -> None:
        super().__init__()
        self.doc = doc

    def convert(self, node: Any, path: Path) -> Any:
        from ruamel.yaml.comments import CommentedMap, CommentedSeq

        if not isinstance(node, CommentedMap | CommentedSeq):
            if self.aliased:
                self._count()
            return _scalar(node)
        if len(path) >= MAX_NESTING:  # this collection is level len(path) + 1
            raise TooDeep(path)
        again = id(node) in self.seen
        self.seen.add(id(node))
        if again:
            if not self.aliased:
                self.alias_site = path
            self.aliased += 1
        if self.aliased:
            self._count()
        try:
            if isinstance(node, CommentedMap):
                return self._mapping(node, path)
            return self._sequence(node, path)
        finally:
            if again:
                self.aliased -= 1

    def _mapping(self, node: Any, path: Path) -> dict[Any, Any]:
        doc = self.doc
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
            out[str(key) if not isinstance(key, str | int | float | bool) else key] = self.convert(
                value, child
            )
        return out

    def _sequence(self, node: Any, path: Path) -> list[Any]:
        items = []
        for i, value in enumerate(node):
            child = (*path, i)
            try:
                il, ic = node.lc.item(i)
                self.doc.positions[child] = (il + 1, ic + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            items.append(self.convert(value, child))
        return items


def _scalar(node: Any) -> Any:
    # ruamel returns str/int/float subclasses that carry formatting; downstream code wants the
    # plain builtins (orjson, pydantic strict checks and `type(x) is str` all care). Its
    # ScalarBoolean (an anchored `&a true`) is an int subclass: it stays a bool.
    from ruamel.yaml.scalarbool import ScalarBoolean

    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, ScalarBoolean):
        return bool(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node
