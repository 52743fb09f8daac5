"""The hint after "unknown field X" in suite and serve-config errors."""

from __future__ import annotations

import difflib
from collections.abc import Collection


def unknown_field_hint(name: str, known: Collection[str]) -> str:
    """`` (did you mean 'y'?)`` for a near-miss of a ``known`` name, else ``""``.

    A name that is itself known is a real field in the wrong block (``timeout`` inside
    ``exec:``): echoing it back, or a fuzzy match such as ``testTimeout``, would mislead,
    so the hint says where the problem is instead.
    """
    if name in known:
        return f" ({name!r} is a field of other blocks, not of this one)"
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""
