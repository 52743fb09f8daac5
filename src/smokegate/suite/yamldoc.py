"""What a YAML reader gives the suite loader: plain data plus where every value came from.

A ``Document`` holds plain dicts/lists/scalars (nothing downstream depends on a YAML library's
types) and a flat map ``path -> (line, column)`` (1-based) that turns a validation error's
``loc`` into ``file:line:col``. The readers (``suite.yamlc``, the fast one, and
``suite.yamlrt``, the reference) fill it; ``suite.yamlpos.load_documents`` picks one.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from smokegate.core.errors import Problem

Path = tuple[str | int, ...]

# Aliases share one node, so a few lines can name 10^9 values ("billion laughs"); converting to
# plain data expands them. A suite never needs more than this many values reached through
# aliases: past it the document is refused (docs/reliability.md lists the limit).
MAX_ALIAS_VALUES = 100_000

# Mappings and sequences nested deeper than this are refused: no suite needs it, and the
# readers (and everything after them) recurse per level - ruamel raises RecursionError from
# about 300 levels, and its flow scanner is quadratic in depth (docs/reliability.md).
MAX_NESTING = 100


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


class AliasBomb(Exception):
    """More than ``MAX_ALIAS_VALUES`` values reached through aliases, the outermost alias being
    expanded at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path


class AliasCounting:
    """What both readers' converters keep to bound values reached through aliases: a collection
    met a second time is an alias; every value below one counts against ``MAX_ALIAS_VALUES``."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.aliased = 0  # > 0 while converting below a node met before
        self.alias_values = 0
        self.alias_site: Path = ()  # the outermost alias being expanded (its anchor's position)

    def _count(self) -> None:
        self.alias_values += 1
        if self.alias_values > MAX_ALIAS_VALUES:
            raise AliasBomb(self.alias_site)


def alias_bomb_error(doc: Document, bomb: AliasBomb) -> YamlSyntaxError:
    return YamlSyntaxError(
        [
            doc.problem(
                bomb.path,
                f"YAML: aliases expand to more than {MAX_ALIAS_VALUES:,} values "
                "(limit reached in an alias of this anchor); write the values out "
                "or use a matrix",
            )
        ]
    )


class TooDeep(Exception):
    """Collections nested deeper than ``MAX_NESTING`` at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path


def too_deep_message() -> str:
    return f"YAML: nested deeper than {MAX_NESTING} levels"


def too_deep_error(doc: Document, err: TooDeep) -> YamlSyntaxError:
    return YamlSyntaxError([doc.problem(err.path, too_deep_message())])


def too_deep_in_text(text: str, file: str) -> YamlSyntaxError | None:
    """The located error for ``text`` if it nests deeper than ``MAX_NESTING``, else ``None``."""
    where = deepest_point(text)
    if where is None:
        return None
    return YamlSyntaxError([Problem(file, where[0], where[1], too_deep_message())])


def deepest_point(text: str) -> tuple[int, int] | None:
    """Line and column of the first collection nested deeper than ``MAX_NESTING``, found with
    libyaml's event stream (iterative: it cannot overflow the stack the way composing does);
    ``None`` when libyaml is missing, fails first, or finds nothing that deep."""
    try:
        import yaml
        from yaml import CollectionEndEvent, CollectionStartEvent
    except ImportError:  # pragma: no cover - PyYAML is a dependency
        return None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    depth = 0
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_NESTING:
                    mark = event.start_mark
                    return mark.line + 1, mark.column + 1
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        # libyaml's own limit (1,000 flow levels) is hit while scanning ahead, before the
        # events that deep: its mark is the place.
        if exc.problem_mark is not None and "nesting depth" in str(exc.problem):
            return exc.problem_mark.line + 1, exc.problem_mark.column + 1
        return None
    except yaml.YAMLError:
        return None
    return None


def offset_position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of character ``offset`` in ``text``."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a large suite is read or compiled.

    Building 10,000 checks allocates millions of objects; each allocation burst triggers the
    collector, which walks every live object again: 60% of the load time for a written-out
    10,000-check suite. What is built here has no reference cycles to collect, and the
    collector runs as usual afterwards."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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
