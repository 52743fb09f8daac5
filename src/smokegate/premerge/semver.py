"""Enough of Masterminds/semver (what Helm and source-controller use for chart versions) to
pick a packaged chart: exact versions, ``*``/``x`` wildcards, ``^``/``~``, comparisons,
hyphen ranges, ``,``/space for AND and ``||`` for OR. Pre-releases only match constraints
that name a pre-release, as in Masterminds."""

from __future__ import annotations

import re
from functools import total_ordering

_VERSION = re.compile(
    r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


@total_ordering
class Version:
    def __init__(self, text: str) -> None:
        m = _VERSION.match(text.strip())
        if not m:
            raise ValueError(f"not a semantic version: {text!r}")
        self.text = text
        self.parts = (int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0))
        self.pre = m.group(4) or ""

    def _pre_key(self) -> tuple[int, tuple[tuple[int, int | str], ...]]:
        if not self.pre:
            return (1, ())
        ids = tuple((0, int(p)) if p.isdigit() else (1, p) for p in self.pre.split("."))
        return (0, ids)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and (self.parts, self.pre) == (other.parts, other.pre)

    def __lt__(self, other: Version) -> bool:
        return (self.parts, self._pre_key()) < (other.parts, other._pre_key())

    def __hash__(self) -> int:
        return hash((self.parts, self.pre))


def parse_version(text: str) -> Version | None:
    try:
        return Version(text)
    except ValueError:
        return None


_PART = re.compile(
    r"^(\^|~>|~|>=|<=|!=|=|>|<)?\s*(v?[0-9xX*]+(?:\.[0-9xX*]+){0,2}(?:-[0-9A-Za-z.-]+)?)$"
)


def _bounds(op: str, text: str) -> list[tuple[str, Version]]:
    """One constraint term -> (comparison, version) pairs that must all hold."""
    pieces = text.lstrip("v").split("-", 1)
    nums = pieces[0].split(".")
    pre = pieces[1] if len(pieces) > 1 else ""
    wild = [n in ("x", "X", "*") for n in nums]
    fixed: list[int] = []
    for n, w in zip(nums, wild, strict=True):
        if w:
            break
        fixed.append(int(n))
    given = len(fixed)
    while len(fixed) < 3:
        fixed.append(0)
    base = Version(".".join(map(str, fixed)) + (f"-{pre}" if pre else ""))

    def bump(level: int) -> Version:
        parts = fixed[:level] + [0] * (3 - level)
        parts[level - 1] += 1
        return Version(".".join(map(str, parts)))

    if given == 0:
        return [(">=", Version("0.0.0"))] if op in ("", "=", ">=", "^", "~", "~>") else []
    if op in ("", "="):
        if given == 3:
            return [("=", base)]
        return [(">=", base), ("<", bump(given))]
    if op == "!=":
        return [("!=", base)]
    if op == "^":
        level = next((i + 1 for i, v in enumerate(fixed[:given]) if v != 0), given)
        return [(">=", base), ("<", bump(min(level, given) if given else 1))]
    if op in ("~", "~>"):
        return [(">=", base), ("<", bump(2 if given >= 2 else 1))]
    if op == ">" and given < 3:
        return [(">=", bump(given))]
    if op == "<=" and given < 3:
        return [("<", bump(given))]
    return [(op, base)]


def _holds(v: Version, op: str, bound: Version) -> bool:
    return {
        "=": v == bound,
        "!=": v != bound,
        ">": v > bound,
        ">=": v >= bound,
        "<": v < bound,
        "<=": v <= bound,
    }[op]


def satisfies(version: str, constraint: str) -> bool:
    v = parse_version(version)
    if v is None:
        return False
    constraint = constraint.strip() or "*"
    for alternative in constraint.split("||"):
        text = re.sub(r"\s*-\s+", " - ", alternative.strip())
        terms: list[tuple[str, Version]] = []
        ok = True
        if " - " in text:  # hyphen range: 1.2 - 1.4.5
            lo, hi = (t.strip() for t in text.split(" - ", 1))
            try:
                terms = _bounds(">=", lo) + _bounds("<=", hi)
            except ValueError:
                ok = False
        else:
            for raw in re.split(r"[,\s]+", re.sub(r"(\^|~>|~|>=|<=|!=|=|>|<)\s+", r"\1", text)):
                if not raw:
                    continue
                m = _PART.match(raw)
                if not m:
                    ok = False
                    break
                terms.extend(_bounds(m.group(1) or "", m.group(2)))
        if not ok:
            continue
        if v.pre and not any(b.pre and b.parts == v.parts for _, b in terms):
            continue
        if all(_holds(v, op, b) for op, b in terms):
            return True
    return False


def is_exact(text: str) -> bool:
    return parse_version(text) is not None and not any(c in text for c in "xX*^~<>=|, ")


def best(versions: list[str], constraint: str) -> str | None:
    """The highest version satisfying ``constraint``."""
    matching = [v for v in versions if satisfies(v, constraint)]
    return max(matching, key=Version) if matching else None
