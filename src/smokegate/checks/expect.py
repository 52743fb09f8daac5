"""Value matchers shared by check kinds (JSONPath results, SQL columns, command output...).

A matcher in YAML is either a literal (``"$.status": ok`` means equals) or a mapping of operators::

    "$.replicas": {gte: 2}
    "$.version": {regex: '^6\\.'}
    "$.commit": {exists: true}

A mapping whose keys are not all operators is a literal value compared for equality.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any

from pydantic import AfterValidator

from smokegate.checks.base import Mismatch

OPERATORS = frozenset(
    {
        "equals",
        "notEquals",
        "regex",
        "exists",
        "gt",
        "gte",
        "lt",
        "lte",
        "contains",
        "length",
        "oneOf",
        "type",
    }
)
_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "number": (int, float),
    "integer": int,
    "boolean": bool,
    "object": dict,
    "array": list,
    "null": type(None),
}


def is_matcher(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and set(value) <= OPERATORS


@functools.lru_cache(maxsize=1024)
def compiled_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def check_regex(pattern: Any) -> Any:
    """For validators: ``pattern`` (a regex, or a matcher whose ``regex`` is checked) unchanged
    if it compiles, else a ``ValueError`` naming it, so that ``lint`` reports a bad regex at its
    line instead of the run failing on it later."""
    if is_matcher(pattern):
        check_regex(pattern.get("regex"))
    elif isinstance(pattern, str):
        try:
            compiled_regex(pattern)
        except (re.error, OverflowError) as exc:  # a{99999999999}: OverflowError
            raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
    return pattern


Regex = Annotated[str, AfterValidator(check_regex)]


def render(value: Any) -> str:
    """Values in evidence are shown as JSON would show them (strings quoted)."""
    import orjson

    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def loose_equal(expected: Any, actual: Any) -> bool:
    """Equality that forgives the string/number split of YAML vs JSON: variables interpolate as
    strings (``${release.appVersion}``) while bodies carry numbers, and vice versa."""
    if expected == actual and type(expected) is type(actual):
        return True
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return expected == actual
    if (
        isinstance(expected, str) != isinstance(actual, str)
        and not isinstance(expected, dict | list)
        and not isinstance(actual, dict | list)
        and actual is not None
        and expected is not None
    ):
        return (
            str(expected) == (render(actual) if not isinstance(actual, str) else actual)
            or _num(expected) == _num(actual) is not None
        )
    return expected == actual


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def check_value(subject: str, expected: Any, found: list[Any]) -> Mismatch | None:
    """Match the values found at ``subject`` (a JSONPath may find several) against ``expected``.

    One value found: it is compared. Several: ``equals`` compares the list; the other operators
    must hold for every value. None found: only ``exists: false`` passes.
    """
    ops = expected if is_matcher(expected) else {"equals": expected}
    if "exists" in ops:
        want = bool(ops["exists"])
        if want != bool(found):
            return Mismatch(
                subject,
                "present" if want else "absent",
                "absent" if not found else render(found[0]),
            )
        if not want:
            return None
    if not found:
        return Mismatch(subject, _describe(ops), "nothing (path matched no value)")
    actual: Any = found[0] if len(found) == 1 else found
    for op, want in ops.items():
        if op == "exists":
            continue
        if not _apply(op, want, actual, found):
            return Mismatch(subject, _describe({op: want}), render(actual))
    return None


def _apply(op: str, want: Any, actual: Any, found: list[Any]) -> bool:
    if op == "equals":
        return loose_equal(want, actual)
    if op == "notEquals":
        return not loose_equal(want, actual)
    if op == "oneOf":
        return isinstance(want, list) and any(loose_equal(w, actual) for w in want)
    if op == "regex":
        rx = compiled_regex(str(want))
        return all(rx.search(v if isinstance(v, str) else render(v)) for v in found)
    if op == "contains":
        if isinstance(actual, str):
            return str(want) in actual
        if isinstance(actual, list):
            return any(loose_equal(want, v) for v in actual)
        if isinstance(actual, dict):
            return str(want) in actual
        return False
    if op == "length":
        target = actual if isinstance(actual, str | list | dict) else None
        return target is not None and len(target) == int(want)
    if op == "type":
        py = _TYPES.get(str(want))
        if py is None:
            return False
        return all(
            isinstance(v, py) and not (want != "boolean" and isinstance(v, bool) and py is not bool)
            for v in found
        )
    # Ordering comparisons: numbers, or numeric strings.
    a, w = _num(actual), _num(want)
    if a is None or w is None or isinstance(actual, bool):
        return False
    return {"gt": a > w, "gte": a >= w, "lt": a < w, "lte": a <= w}[op]


_SYMBOL = {"gt": ">", "gte": "≥", "lt": "<", "lte": "≤", "notEquals": "≠"}


def _describe(ops: dict[str, Any]) -> str:
    parts = []
    for op, want in ops.items():
        if op == "equals":
            parts.append(render(want))
        elif op == "regex":
            parts.append(f"matching /{want}/")
        elif op in _SYMBOL:
            parts.append(f"{_SYMBOL[op]} {render(want)}")
        elif op == "oneOf":
            parts.append(f"one of {render(want)}")
        elif op == "exists":
            parts.append("present" if want else "absent")
        else:
            parts.append(f"{op} {render(want)}")
    return " and ".join(parts)
