"""Results as plain data. Every reporter and store reads these; the JSON report is their stable,
documented serialization (``to_dict``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from smokegate.core.cases import Case
from smokegate.core.outcome import Mismatch

REPORT_SCHEMA = "smokegate.io/report/v1"


class Status(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass(slots=True)
class Attempt:
    number: int
    started_at: float  # epoch seconds
    duration: float  # seconds
    ok: bool
    message: str = ""
    error_kind: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "startedAt": self.started_at,
            "duration": round(self.duration, 6),
            "ok": self.ok,
            "message": self.message,
            "errorKind": self.error_kind,
        }


@dataclass(slots=True)
class CheckResult:
    id: str
    name: str
    suite: str
    kind: str
    status: Status
    tags: tuple[str, ...] = ()
    source: str = ""
    description: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    started_at: float = 0.0
    duration: float = 0.0
    message: str = ""
    error_kind: str | None = None
    evidence: list[Mismatch] = field(default_factory=list)
    snippet: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # Long text a check collected (e.g. a Helm test pod's log); reporters cap it.
    log: str | None = None
    # The test cases of a check that runs a whole test suite (pytest, newman, k6, JUnit):
    # child results, in the tool's order. Empty for every other kind.
    cases: list[Case] = field(default_factory=list)

    @property
    def recovered(self) -> bool:
        """Passed after at least one failed attempt: flaky, and worth seeing."""
        return self.status is Status.PASSED and len(self.attempts) > 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "suite": self.suite,
            "kind": self.kind,
            "status": self.status.value,
            "recovered": self.recovered,
            "tags": list(self.tags),
            "source": self.source,
            "description": self.description,
            "startedAt": self.started_at,
            "duration": round(self.duration, 6),
            "message": self.message,
            "errorKind": self.error_kind,
            "evidence": [
                {"subject": m.subject, "expected": m.expected, "actual": m.actual}
                for m in self.evidence
            ],
            "snippet": self.snippet,
            "details": self.details,
            "log": self.log,
            "attempts": [a.to_dict() for a in self.attempts],
            "cases": [c.to_dict() for c in self.cases],
        }


@dataclass(slots=True)
class SuiteInfo:
    name: str
    file: str
    release: dict[str, Any] | None = None


@dataclass(slots=True, repr=False)
class RunResult:
    run_id: str
    started_at: float
    finished_at: float = 0.0
    suites: list[SuiteInfo] = field(default_factory=list)
    results: list[CheckResult] = field(default_factory=list)
    interrupted: bool = False
    # Facts about what was tested (release name/revision from the gate, trigger, host...).
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return max(0.0, self.finished_at - self.started_at)

    def __repr__(self) -> str:
        # Short on purpose: asyncio reprs a finished task's result in places (Python 3.11's
        # runner does so at every exit via signal.getsignal), and a full dataclass repr of
        # 10,000 results costs ~100 ms each time.
        return f"RunResult(run_id={self.run_id!r}, results={len(self.results)}, ok={self.ok})"

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for r in self.results:
            counts[r.status.value] += 1
        counts["recovered"] = sum(1 for r in self.results if r.recovered)
        counts["total"] = len(self.results)
        return counts

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(
            r.status in (Status.PASSED, Status.SKIPPED) for r in self.results
        )

    def by_suite(self) -> dict[str, list[CheckResult]]:
        out: dict[str, list[CheckResult]] = {s.name: [] for s in self.suites}
        for r in self.results:
            out.setdefault(r.suite, []).append(r)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "runId": self.run_id,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "duration": round(self.duration, 6),
            "ok": self.ok,
            "interrupted": self.interrupted,
            "counts": self.counts(),
            "context": self.context,
            "suites": [{"name": s.name, "file": s.file, "release": s.release} for s in self.suites],
            "results": [r.to_dict() for r in self.results],
        }
