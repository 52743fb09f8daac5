"""Child results: the test cases of a check that drives a whole test suite (pytest, newman, k6,
any JUnit producer). The check stays the unit smokegate schedules, retries and gates on; its
cases say *which* of the tool's tests failed and why, in every report.

A case is plain data like the rest of the results (``to_dict``/``from_dict`` are its JSON form,
documented in docs/report-format.md under *Case*). It is not a ``CheckResult``: it has no
attempts, tags or source of its own, because smokegate never runs one case alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

CASE_STATUSES = ("passed", "failed", "error", "skipped")
"""A case's status, in the words of ``results.Status`` (a JUnit ``<failure>`` is failed, an
``<error>`` is error)."""


@dataclass(slots=True)
class Case:
    """One test case the tool reported."""

    name: str
    classname: str = ""
    status: str = "passed"
    time: float = 0.0
    message: str = ""
    """The failure's one-line message (a JUnit ``message`` attribute, an assertion)."""
    failure_type: str = ""
    """What kind of failure, in the tool's words (``AssertionError``, a JUnit ``type``)."""
    text: str = ""
    """The failure's body (a traceback, newman's assertion detail), capped."""
    output: str = ""
    """What the case printed (JUnit ``system-out`` then ``system-err``), capped."""

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "error")

    @property
    def headline(self) -> str:
        """The message's first line (a pytest assertion message goes on with its diff)."""
        text = self.message.strip()
        return text.splitlines()[0] if text else ""

    @property
    def full_name(self) -> str:
        """``classname.name`` (or ``name`` alone): what ``-k check/PATTERN`` also matches."""
        return f"{self.classname}.{self.name}" if self.classname else self.name

    def matches(self, pattern: str) -> bool:
        if pattern in (self.name, self.full_name):
            return True
        return fnmatchcase(self.name, pattern) or fnmatchcase(self.full_name, pattern)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "classname": self.classname,
            "status": self.status,
            "time": round(self.time, 6),
            "message": self.message,
            "failureType": self.failure_type,
            "text": self.text,
            "output": self.output,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Case:
        """Lenient on purpose: stored history and reports of older versions lack fields."""
        status = str(data.get("status") or "passed")
        return cls(
            name=str(data.get("name") or ""),
            classname=str(data.get("classname") or ""),
            status=status if status in CASE_STATUSES else "error",
            time=float(data.get("time") or 0.0),
            message=str(data.get("message") or ""),
            failure_type=str(data.get("failureType") or ""),
            text=str(data.get("text") or ""),
            output=str(data.get("output") or ""),
        )


def cases_from(data: Iterable[Mapping[str, Any]] | None) -> list[Case]:
    return [Case.from_dict(c) for c in data or ()]


def tally(cases: Iterable[Case]) -> dict[str, int]:
    """Cases per status, plus ``total``."""
    out = dict.fromkeys(CASE_STATUSES, 0)
    for c in cases:
        out[c.status] = out.get(c.status, 0) + 1
    out["total"] = sum(out[s] for s in CASE_STATUSES)
    return out


def summary(cases: list[Case]) -> str:
    """``5 cases: 3 passed, 2 failed`` (statuses with zero left out)."""
    counts = tally(cases)
    parts = [f"{counts[s]} {s}" for s in CASE_STATUSES if counts[s]]
    word = "case" if counts["total"] == 1 else "cases"
    return f"{counts['total']} {word}: {', '.join(parts) or 'none'}"
