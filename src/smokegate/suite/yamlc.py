"""The fast YAML reader: libyaml (PyYAML's C parser) with YAML 1.2 meaning and ruamel's marks.

``suite.yamlrt`` (ruamel.yaml's round-trip loader, pure Python) reads 10,000 written-out checks
in several seconds; libyaml parses the same text in a fraction of that. This module composes the
node graph with libyaml and builds the plain data and positions itself, the way ``yamlrt``
does, so a suite means the same and every position is the same (tests/core/test_yaml_readers.py
compares the two readers on the same texts):

* **YAML 1.2, not 1.1.** PyYAML resolves plain scalars by YAML 1.1 (``on``/``yes``/``no`` are
  booleans, ``010`` is octal, ``1e3`` a string). The resolver here is ruamel's YAML 1.2 table,
  copied: only ``true``/``false`` (three spellings) are booleans, ``010`` is 10, ``0o10`` is 8,
  ``1e3`` is 1000.0, ``~``/``null``/empty are null. Values are built like ruamel builds them
  (underscores dropped in numbers, ``.inf``, ``.nan``).
* **Same marks.** Positions are the nodes' start marks, like ruamel's; an alias has its anchor's.
  Merge keys (``<<: *base``, ``<<: [*a, *b]``) put the mapping's own keys first, then the merged
  ones it lacks, in merge order, with no key position of their own (as ruamel). The two
  parsers mark an empty value (``key:`` with nothing after it) differently; it is placed where
  ruamel places it (block mapping: at the next token; flow: just after the colon), and an
  empty value followed by a comment, an anchored empty value or a lone ``? key`` go to ruamel.
* **Everything else goes to ruamel** (``Unsupported``): any YAML error (so messages and their
  positions stay ruamel's word for word), duplicate keys (ruamel's message), explicit tags
  (``!!str``, ``!Ref``...), ``%YAML``/``%TAG`` directives (``%YAML 1.1`` changes the meaning),
  timestamps, keys that are mappings or sequences, and texts whose line breaks the two
  parsers count differently: NEL/LS/PS (YAML 1.1 breaks, 1.2 characters) and a byte-order mark
  anywhere but the start. A leading BOM is dropped first (ruamel does not count it as a column).
* **Tabs**: a text with a tab anywhere is read by ruamel. libyaml accepts tabs where ruamel
  refuses them (``kind: Ro<TAB>le`` is a plain scalar to libyaml, a YAML error to ruamel), and
  a suite must not start to mean something it did not; tabs are rare in YAML, so the cost of
  the slower reader for those files is accepted.
* Text arrives decoded (``suite.parse`` reads UTF-8 and reports a non-UTF-8 file at its first
  bad byte), so encodings never reach this module.

Without PyYAML's C extension (``available()`` False) ``suite.yamlpos`` uses ruamel for all.
"""

from __future__ import annotations

import re
from typing import Any

from smokegate.suite.yamldoc import (
    MAX_NESTING,
    AliasBomb,
    AliasCounting,
    Document,
    Path,
    TooDeep,
    alias_bomb_error,
    too_deep_error,
    too_deep_in_text,
)

try:  # libyaml inside PyYAML; a wheel without it (rare platforms) leaves ruamel to do all
    from yaml import MappingNode, ScalarNode, SequenceNode, YAMLError
    from yaml._yaml import CParser
except ImportError:  # pragma: no cover - every supported platform's wheel has it
    CParser = None


class Unsupported(Exception):
    """This text is for the reference reader (``suite.yamlrt``)."""


def available() -> bool:
    return CParser is not None


# Tags this resolver gives implicit nodes: private names, so a node that carries a standard
# ``tag:yaml.org,2002:*`` tag was tagged explicitly in the text (ruamel builds those its way).
_STR, _INT, _FLOAT, _BOOL, _NULL = "sg:str", "sg:int", "sg:float", "sg:bool", "sg:null"
_MERGE, _OTHER = "sg:merge", "sg:other"  # _OTHER: timestamps and `=`, left to ruamel
_MAP, _SEQ = "sg:map", "sg:seq"

# ruamel.yaml's YAML 1.2 implicit resolvers (ruamel/yaml/resolver.py), in its order, keyed by
# the scalar's first character as there.
_RESOLVERS: list[tuple[str, str, str]] = [
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (
        _FLOAT,
        r"""^(?:
         [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        "-+0123456789.",
    ),
    (
        _INT,
        r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$""",
        "-+0123456789",
    ),
    (_MERGE, r"^(?:<<)$", "<"),
    (_NULL, r"^(?: ~ |null|Null|NULL | )$", "~nN"),
    (
        _OTHER,  # timestamp
        r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
        (?:[Tt]|[ \t]+)[0-9][0-9]?
        :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
        (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""",
        "0123456789",
    ),
    (_OTHER, r"^(?:=)$", "="),  # the `value` key
]
_BY_FIRST: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
for _tag, _pattern, _first in _RESOLVERS:
    for _ch in _first:
        _BY_FIRST.setdefault(_ch, []).append((_tag, re.compile(_pattern, re.X)))

# Characters the two parsers treat differently: NEL/LS/PS (line breaks in YAML 1.1 only), a BOM
# past the start (ruamel does not count it as a column), and tabs (libyaml takes `a\tb` as a
# plain scalar and a tab as separation where ruamel refuses it).
_HANDED_BACK = ("\t", "\x85", "\u2028", "\u2029", "\ufeff")


if CParser is not None:

    class _Composer(CParser):
        """libyaml's composer with the YAML 1.2 resolver above (no constructor: nodes only)."""

        def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
            if kind is ScalarNode:
                if implicit[0]:  # plain and untagged
                    if not value:
                        return _NULL
                    for tag, regexp in _BY_FIRST.get(value[0], ()):
                        if regexp.match(value):
                            return tag
                    return _STR
                if implicit[1]:  # quoted and untagged
                    return _STR
                raise Unsupported  # the non-specific tag `!`
            if not implicit:
                raise Unsupported
            return _MAP if kind is MappingNode else _SEQ

        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            pass  # no path resolvers: skip the per-node call's work

        def ascend_resolver(self) -> None:
            pass


def load_documents(text: str, file: str) -> list[Document]:
    """Every document of ``text`` with its positions; raises ``Unsupported`` for what the
    reference reader must read, ``YamlSyntaxError`` for an alias bomb."""
    if CParser is None:
        raise Unsupported
    if text.startswith("\ufeff"):
        text = text[1:]
    if any(ch in text for ch in _HANDED_BACK) or text.startswith("%") or "\n%" in text:
        raise Unsupported
    parser = _Composer(text)
    docs: list[Document] = []
    try:
        while parser.check_node():
            root = parser.get_node()
            doc = Document(file=file, data=None)
            # ruamel: the root mapping's or sequence's own line/column, else the top of the file.
            doc.positions[()] = _pos(root) if root.__class__ is not ScalarNode else (1, 1)
            try:
                doc.data = _Walker(doc, text).value(root, ())
            except AliasBomb as bomb:
                raise alias_bomb_error(doc, bomb) from None
            except TooDeep as err:
                raise too_deep_error(doc, err) from None
            if doc.data is not None:
                docs.append(doc)
    except (YAMLError, RecursionError) as exc:
        # Too deep for libyaml (1,000 flow levels) or for composing: refused here, located by
        # the event stream; ruamel would take seconds (quadratic in flow depth) to say less.
        if isinstance(exc, RecursionError) or "nesting depth" in str(exc):
            error = too_deep_in_text(text, file)
            if error is not None:
                raise error from None
        raise Unsupported from None
    except (ValueError, IndexError, TypeError):
        raise Unsupported from None
    finally:
        parser.dispose()
    return docs


def _pos(node: Any) -> tuple[int, int]:
    mark = node.start_mark
    return mark.line + 1, mark.column + 1


class _Walker(AliasCounting):
    """Nodes to plain data and positions, in ruamel's order; counts values reached a second
    time (through an alias) against ``MAX_ALIAS_VALUES`` exactly as ``yamlrt`` does."""

    def __init__(self, doc: Document, text: str) -> None:
        super().__init__()
        self.text = text
        self.positions = doc.positions
        self.key_positions = doc.key_positions
        # A mapping's keys and values once merges are applied: merge sources are reused.
        self.pairs_of: dict[int, list[tuple[Any, Any, bool]]] = {}

    def value(self, node: Any, path: Path) -> Any:
        if node.__class__ is ScalarNode:
            if self.aliased:
                self._count()
            return _scalar(node)
        if len(path) >= MAX_NESTING:  # this collection is level len(path) + 1
            raise TooDeep(path)
        nid = id(node)
        again = nid in self.seen
        self.seen.add(nid)
        if again:
            if not self.aliased:
                self.alias_site = path
            self.aliased += 1
        if self.aliased:
            self._count()
        try:
            if node.tag == _MAP:
                return self._mapping(node, path)
            if node.tag == _SEQ:
                return self._sequence(node, path)
            raise Unsupported
        finally:
            if again:
                self.aliased -= 1

    def _mapping(self, node: Any, path: Path) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        positions, key_positions = self.positions, self.key_positions
        for key, value_node, own in self._pairs(node):
            child = (*path, str(key))
            if own is not None:  # merged keys have no position of their own (as in ruamel)
                key_positions[child], positions[child] = own
            out["None" if key is None else key] = self.value(value_node, child)
        return out

    def _pairs(self, node: Any) -> list[tuple[Any, Any, Any]]:
        """``(key, value node, key's start mark or None when merged)``, own keys first."""
        cached = self.pairs_of.get(id(node))
        if cached is not None:
            return cached
        pairs: list[tuple[Any, Any, Any]] = []
        keys: set[Any] = set()
        merge: Any = None
        for key_node, value_node in node.value:
            if key_node.__class__ is not ScalarNode:
                raise Unsupported  # a mapping or sequence as a key
            if key_node.tag == _MERGE:
                if merge is not None:
                    raise Unsupported  # two `<<`: ruamel's error
                merge = value_node
                continue
            key = _scalar(key_node)
            if key in keys:
                raise Unsupported  # a duplicate key: ruamel's error, word for word
            keys.add(key)
            k, v = key_node.start_mark, value_node.start_mark
            value_at = (v.line + 1, v.column + 1)
            # (style "" is plain: an empty value, not '')
            if value_node.__class__ is ScalarNode and value_node.value == "" == value_node.style:
                value_at = self._empty_value_at(v, flow=node.flow_style is True) or value_at
            pairs.append((key, value_node, ((k.line + 1, k.column + 1), value_at)))
        if merge is not None:
            if merge.__class__ is MappingNode and merge.tag == _MAP:
                sources = [merge]
            elif merge.__class__ is SequenceNode and merge.tag == _SEQ:
                sources = merge.value
            else:
                raise Unsupported
            for source in sources:
                if source.__class__ is not MappingNode or source.tag != _MAP:
                    raise Unsupported
                for key, value_node, _ in self._pairs(source):
                    if key not in keys:
                        keys.add(key)
                        pairs.append((key, value_node, None))
        self.pairs_of[id(node)] = pairs
        return pairs

    def _empty_value_at(self, mark: Any, *, flow: bool) -> tuple[int, int] | None:
        """Where ruamel puts the empty value of ``key:``, None where libyaml agrees.

        Block mapping: ruamel at the next token, libyaml just after the colon (``Unsupported``
        when a comment comes first: ruamel's comment handling then decides). Flow mapping:
        ruamel just after the colon, libyaml at the next token (``,`` or ``}``)."""
        text, i = self.text, mark.index
        if flow:
            j = i - 1
            while j >= 0 and text[j] == " ":
                j -= 1
            if j < 0 or text[j] != ":":
                return None  # `{a, b}`: no colon, both at the next token
            if "\n" in text[j:i] or "\r" in text[j:i]:
                raise Unsupported
            return mark.line + 1, mark.column - (i - j - 1) + 1
        if i == 0 or text[i - 1] != ":":
            raise Unsupported  # `key: &anchor`, `? key` alone: rare, and marked differently
        line, column, n = mark.line, mark.column, len(text)
        while i < n:
            ch = text[i]
            if ch == " ":
                column += 1
            elif ch == "\n" or (ch == "\r" and text[i + 1 : i + 2] != "\n"):
                line, column = line + 1, 0
            elif ch != "\r":
                if ch in "#?:":  # a comment; an explicit key or value follows
                    raise Unsupported
                break
            i += 1
        return line + 1, column + 1

    def _sequence(self, node: Any, path: Path) -> list[Any]:
        positions = self.positions
        items = []
        for i, item in enumerate(node.value):
            child = (*path, i)
            mark = item.start_mark
            positions[child] = (mark.line + 1, mark.column + 1)
            items.append(self.value(item, child))
        return items


def _scalar(node: Any) -> Any:
    """A scalar's value, built as ruamel's round-trip constructor builds it (YAML 1.2)."""
    tag, value = node.tag, node.value
    if tag == _STR:
        return value
    if tag == _NULL:
        return None
    if tag == _INT:
        return _int(value)
    if tag == _FLOAT:
        return _float(value)
    if tag == _BOOL:
        return value.lower() == "true"
    raise Unsupported  # timestamps, `=`, `<<` as a value, explicit tags


def _int(text: str) -> int:
    digits = text.replace("_", "")
    sign = 1
    if digits[0] in "+-":
        sign = -1 if digits[0] == "-" else 1
        digits = digits[1:]
    for prefix, base in (("0b", 2), ("0x", 16), ("0o", 8)):
        if digits.startswith(prefix):
            if len(digits) == 2:
                raise Unsupported  # ruamel trips over `0x_`; let it
            return sign * int(digits[2:], base)
    return sign * int(digits)  # YAML 1.2: a leading zero is not octal


def _float(text: str) -> float:
    digits = text.replace("_", "").lower()
    sign = -1 if digits[0] == "-" else 1
    if digits[0] in "+-":
        digits = digits[1:]
    if digits == ".inf":
        return sign * float("inf")
    if digits == ".nan":
        return float("nan")
    return sign * float(digits)
