"""A matrix check's rows, each built from what changes: compile the template once.

A 10,000-row matrix used to be expanded whole for every row (every key, every block, every
``${...}``) before validation. Most of a check does not mention a matrix variable: it expands
to the same value in every row. ``RowTemplate`` is made from the first row, which was compiled
the full way: parts that mention no matrix variable keep the first row's expanded value (or
the validated block ``loader._reusable_blocks`` found, which pydantic does not validate again);
only the parts that do are expanded per row. Every row is still validated, so a bad value in
one row is reported at that row's position with the same message as before.

Not used (the full way stays) when the first row read a Secret (secret values are counted per
expansion) or when the check or its kind block is itself a ``secretRef``.
"""

from __future__ import annotations

from typing import Any

from smokegate.suite.interpolate import Scope, references
from smokegate.suite.yamldoc import Path

_CONST, _VARY, _BLOCK = 0, 1, 2


def _mentions(value: Any, keys: set[str]) -> bool:
    # `${i}`, `${i:-0}`, `${secret:${i}/k}` (nested references are listed too).
    return any(r.partition(":-")[0].strip() in keys for r in references(value))


class RowTemplate:
    """The parts of a matrix entry, in the entry's order: constant (the first row's value, or
    a reused block) or varying (expanded per row, at the same path as the full expansion)."""

    def __init__(
        self,
        entry: dict[str, Any],
        kind: str,
        first: dict[str, Any],
        reuse: dict[str, Any],
        matrix_keys: set[str],
    ) -> None:
        self.kind = kind
        self.top: list[tuple[str, int, Any]] = []
        self.block: list[tuple[str, int, Any]] = []
        for key, value in entry.items():
            if key == "matrix":
                continue
            if key == kind and isinstance(value, dict):
                self.top.append((key, _BLOCK, None))  # built from self.block per row
                for sub, sub_value in value.items():
                    self.block.append(
                        _part(
                            sub,
                            sub_value,
                            first[kind].get(sub),
                            reuse.get(f"kind:{sub}"),
                            matrix_keys,
                        )
                    )
                continue
            self.top.append(
                _part(key, value, first.get(key), reuse.get(f"common:{key}"), matrix_keys)
            )

    @staticmethod
    def usable(entry: dict[str, Any], kind: str | None) -> bool:
        block = entry.get(kind) if kind else None
        return (
            kind is not None
            and set(entry) != {"secretRef"}
            and not (isinstance(block, dict) and set(block) == {"secretRef"})
        )

    def expand(self, scope: Scope, path: Path) -> dict[str, Any]:
        """This row's instance, as ``scope.expand`` of the whole entry would give it."""
        kind = self.kind
        out: dict[str, Any] = {}
        for key, mode, value in self.top:
            if mode == _BLOCK:
                where = (*path, kind)
                out[key] = {
                    sub: scope.expand(v, (*where, sub)) if m == _VARY else v
                    for sub, m, v in self.block
                }
            else:
                out[key] = scope.expand(value, (*path, key)) if mode == _VARY else value
        return out


def _part(key: str, raw: Any, first: Any, reused: Any, keys: set[str]) -> tuple[str, int, Any]:
    # The name always varies: the loader labels it per row (`name[i=3]`).
    if key == "name" or _mentions(raw, keys):
        return key, _VARY, raw
    return key, _CONST, reused if reused is not None else first
