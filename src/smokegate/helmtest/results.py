"""A test hook's outcome as a report entry (``CheckResult``, kind ``helm-test``), the same shape
as every suite check's, so every report format shows Helm tests."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from smokegate.core.outcome import ErrorKind, Mismatch
from smokegate.core.results import Attempt, CheckResult, Status
from smokegate.helmtest.hooks import TestHook
from smokegate.helmtest.status import job_summary, pod_failure, succeeded


@dataclass(slots=True)
class HookOutcome:
    status: Status
    phase: str
    message: str = ""
    error_kind: str | None = None
    evidence: list[Mismatch] = field(default_factory=list)


def verdict(hook: TestHook, obj: Mapping[str, Any]) -> HookOutcome:
    """How a finished test ended: Succeeded, or why it failed."""
    if succeeded(hook.kind, obj):
        return HookOutcome(Status.PASSED, "Succeeded")
    if hook.kind == "Pod":
        why = pod_failure(obj)
        return HookOutcome(Status.FAILED, "Failed", f"pod failed: {why}", ErrorKind.EXPECTATION,
                        [Mismatch("pod phase", "Succeeded", f"Failed: {why}")])  # fmt: skip
    why = job_summary(obj)
    return HookOutcome(Status.FAILED, "Failed", f"job {why}", ErrorKind.EXPECTATION,
                    [Mismatch("job", "Complete", why)])  # fmt: skip


def hook_result(
    hook: TestHook,
    outcome: HookOutcome,
    suite: str,
    source: str,
    started: float,
    t0: float,
    details: dict[str, Any],
    log: str | None,
) -> CheckResult:
    """One test's report entry (``t0``: ``perf_counter`` at its start)."""
    duration = time.perf_counter() - t0
    ok = outcome.status is Status.PASSED
    attempts = (
        []
        if outcome.status is Status.SKIPPED
        else [Attempt(1, started, duration, ok, outcome.message, outcome.error_kind)]
    )
    return CheckResult(
        id=hook.id,
        name=hook.name,
        suite=suite,
        kind="helm-test",
        status=outcome.status,
        tags=hook.tags,
        source=source,
        description=f"Helm test hook ({hook.kind}, weight {hook.weight})",
        attempts=attempts,
        started_at=started,
        duration=duration,
        message=outcome.message,
        error_kind=outcome.error_kind,
        evidence=outcome.evidence,
        details=details,
        log=log or None,
    )


def skipped_result(hook: TestHook, suite: str, source: str, reason: str) -> CheckResult:
    return CheckResult(
        id=hook.id,
        name=hook.name,
        suite=suite,
        kind="helm-test",
        status=Status.SKIPPED,
        tags=hook.tags,
        source=source,
        description=f"Helm test hook ({hook.kind}, weight {hook.weight})",
        started_at=time.time(),
        message=reason,
        details={"hook": hook.name, "kind": hook.kind, "weight": hook.weight},
    )
