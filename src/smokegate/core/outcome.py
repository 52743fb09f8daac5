"""What one attempt of a check produces: an ``Outcome`` (passed, or failed with ``Mismatch``
evidence), or a ``CheckFailed`` raised for a failure it can name, each with an ``ErrorKind``.

The vocabulary every layer shares: check kinds return it, the engine records it, the Helm test
runner and Flux's results speak it, and ``KubeError.error_kind`` maps API failures onto it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smokegate.core.cases import Case


class ErrorKind:
    """Why a check failed, in words a person can act on; shown in every report."""

    EXPECTATION = "expectation"
    CONNECTION_REFUSED = "connection_refused"
    DNS = "dns"
    TIMEOUT = "timeout"
    TLS = "tls"
    AUTH = "auth"
    QUERY = "query"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    PROTOCOL = "protocol"
    CONFIG = "config"
    INTERNAL = "internal"


@dataclass(slots=True)
class Mismatch:
    """One unmet expectation: what was checked, what was wanted, what was found."""

    subject: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.subject}: expected {self.expected}, got {self.actual}"


@dataclass(slots=True)
class Outcome:
    ok: bool
    message: str = ""
    evidence: list[Mismatch] = field(default_factory=list)
    snippet: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    error_kind: str | None = None
    cases: list[Case] = field(default_factory=list)
    """Child results of a check that runs a test suite (``checks._suites``)."""


def passed(message: str = "", details: dict[str, Any] | None = None) -> Outcome:
    return Outcome(True, message, [], None, details or {}, None)


def failed(
    evidence: list[Mismatch],
    *,
    snippet: str | None = None,
    details: dict[str, Any] | None = None,
) -> Outcome:
    message = "; ".join(str(m) for m in evidence[:3])
    if len(evidence) > 3:
        message += f" (+{len(evidence) - 3} more)"
    return Outcome(False, message, evidence, snippet, details or {}, ErrorKind.EXPECTATION)


class CheckFailed(Exception):
    """A failure the check can name; becomes a failed attempt with this evidence."""

    def __init__(
        self,
        message: str,
        *,
        kind: str = ErrorKind.EXPECTATION,
        evidence: list[Mismatch] | None = None,
        snippet: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.evidence = evidence or []
        self.snippet = snippet
        self.details = details or {}

    def to_outcome(self) -> Outcome:
        return Outcome(False, self.message, self.evidence, self.snippet, self.details, self.kind)
