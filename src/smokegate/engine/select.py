"""Which checks run: name globs (``-k``), tags (``-t``), excluded tags, with ``needs`` pulled in.

Rules, in order:
* ``-k PATTERN`` (repeatable) keeps checks whose name or ``suite/name`` matches any glob;
  a pattern starting with ``!`` excludes matches instead (``-k '!slow-*'``).
* ``-t TAG`` (repeatable) keeps checks carrying any of the tags.
* ``--exclude-tag TAG`` drops checks carrying it, whatever else matched.
* A kept check's ``needs`` are kept too (marked ``pulled in``), so ordering still holds.
* ``-k CHECK/CASE`` (CHECK a name, id or glob as above) keeps that check, and of its test cases
  (pytest, newman, k6, junit kinds) only those whose name or ``classname.name`` match the CASE
  glob count; ``-k '!CHECK/CASE'`` runs the check without those cases. A pattern that names a
  check whole (``suite/check``) is never read as a case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
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


def _case_patterns(check: PlannedCheck, pattern: str) -> list[str]:
    """The case globs ``pattern`` selects in ``check``: each split ``HEAD/TAIL`` whose head
    matches the check (names may contain slashes, so every split point is tried)."""
    found = []
    for i, ch in enumerate(pattern):
        if ch == "/" and 0 < i < len(pattern) - 1 and _matches(check, pattern[:i]):
            found.append(pattern[i + 1 :])
    return found


def select(checks: Sequence[PlannedCheck], sel: Selection) -> Selected:
    if sel.empty:
        return Selected(list(checks))
    include = [p for p in sel.patterns if not p.startswith("!")]
    exclude = [p[1:] for p in sel.patterns if p.startswith("!")]
    keep: set[str] = set()
    narrowed: dict[str, list[str]] = {}
    for c in checks:
        if include and not any(_matches(c, p) for p in include):
            cases = [g for p in include if "/" in p for g in _case_patterns(c, p)]
            if not cases:
                continue
            narrowed[c.id] = cases
        if any(_matches(c, p) for p in exclude):
            continue
        # `!CHECK/CASE`: the check runs, without those cases.
        if skipped := [f"!{g}" for p in exclude if "/" in p for g in _case_patterns(c, p)]:
            narrowed.setdefault(c.id, []).extend(skipped)
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
    out = [
        replace(c, cases=tuple(narrowed[c.id])) if c.id in narrowed and c.id in keep else c
        for c in checks
        if c.id in wanted
    ]
    return Selected(out, pulled)
