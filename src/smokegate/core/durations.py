"""Durations as people write them in suites and flags: ``300ms``, ``5s``, ``1m30s``, ``2h``."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")


def parse_duration(value: object) -> float:
    """Seconds from ``"1m30s"``-style text or a plain number of seconds.

    Raises ValueError with a message that shows the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 5s, 1m30s, not a boolean")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        try:
            return _finite(float(value))
        except OverflowError:  # an int past float's range (10**400)
            raise ValueError("duration too large: more than 1e308 seconds") from None
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if _WHOLE.fullmatch(text):
            return _finite(sum(float(n) * _UNITS[u] for n, u in _PART.findall(text)))
        try:
            seconds = float(text)
        except ValueError:
            pass
        else:
            if seconds >= 0:
                return _finite(seconds)
    raise ValueError(f"invalid duration {value!r}: use forms like 500ms, 5s, 1m30s, 2h")


def _finite(seconds: float) -> float:
    # "inf", "1e999" and 400-digit numbers are floats too: a timeout must end.
    if not math.isfinite(seconds):
        raise ValueError("a duration must be finite: use forms like 500ms, 5s, 1m30s, 2h")
    return seconds


def format_duration(seconds: float) -> str:
    """Short human form used in reports: 12ms, 1.25s, 2m03s."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def duration_arg(text: str) -> float:
    """``type=`` for argparse flags that take a duration (``--timeout 10m``)."""
    import argparse

    try:
        return parse_duration(text)
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration (e.g. 30s, 10m): {exc}"
        ) from None
