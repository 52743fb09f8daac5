"""Which checks run: name globs (``-k``), tags (``-t``), excluded tags, with ``needs`` pulled in.

Rules, in order:
* ``-k PATTERN`` (repeatable) keeps checks whose name or ``suite/name`` matches any glob;
  a pattern starting with ``!`` excludes matches instead (``-k '!slow-*'``).
* ``-t TAG`` (repeatable) keeps checks carrying any of the tags.
* ``--exclude-tag TAG`` drops checks carrying it, whatever else matched.
* A kept check's ``needs`` are kept too (marked ``pulled in``), so ordering still holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from smokegate.core.selection import Selection
from smokegate.suite.loader import PlannedCheck

__all__ = ["Selected", "Selection", "select"]


@dataclass(slots=True)
class Selected:
    checks: list[PlannedCheck]
    pulled_in: set[str] = field(default_factory=set)  # ids kept only because something needs them


def _matches(check: PlannedCheck, pattern: str) -> bool:
    # Exact names first: matrix names like `web[port=80]` contain glob brackets.
    if pattern in (check.name, check.id):
        return True
    return fnmatchcase(check.name, pattern) or fnmatchcase(check.id, pattern)


def select(checks: Sequence[PlannedCheck], sel: Selection) -> Selected:
    if sel.empty:
        return Selected(list(checks))
    include = [p for p in sel.patterns if not p.startswith("!")]
    exclude = [p[1:] for p in sel.patterns if p.startswith("!")]
    keep: set[str] = set()
    for c in checks:
        if include and not any(_matches(c, p) for p in include):
            continue
        if any(_matches(c, p) for p in exclude):
            continue
        if sel.tags and not set(sel.tags) & set(c.tags):
            continue
        if set(sel.exclude_tags) & set(c.tags):
            continue
        keep.add(c.id)
    by_id = {c.id: c for c in checks}
    pulled: set[str] = set()
    stack = list(keep)
    while stack:
        for dep in by_id[stack.pop()].needs:
            if dep not in keep and dep not in pulled:
                pulled.add(dep)
                stack.append(dep)
    wanted = keep | pulled
    return Selected([c for c in checks if c.id in wanted], pulled)
