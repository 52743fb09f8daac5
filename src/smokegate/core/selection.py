"""``Selection``: which checks a run keeps (``-k`` name globs, ``-t`` tags, ``--exclude-tag``), as
data. ``engine.select.select`` applies it to planned checks, ``helmtest.hooks.choose`` to a
release's test hooks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Selection:
    patterns: Sequence[str] = ()
    tags: Sequence[str] = ()
    exclude_tags: Sequence[str] = ()

    @property
    def empty(self) -> bool:
        return not (self.patterns or self.tags or self.exclude_tags)
