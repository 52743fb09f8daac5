"""Runs planned checks: a bounded pool of workers, ``needs`` ordering, the attempt loop
(timeout, retries, backoff, ``within`` deadline), fail-fast and clean interruption.

The per-check path is hot (the benchmark runs 10,000 checks): no per-check tasks beyond the
worker pool, no logging, one result object per check and one attempt record per attempt.
"""

from __future__ import annotations

import asyncio
import importlib
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from smokegate.checks import KINDS
from smokegate.checks.base import (
    ATTEMPT_DEADLINE,
    SELECTED_CASES,
    CheckContext,
    CheckFailed,
    ErrorKind,
    Outcome,
)
from smokegate.core.durations import format_duration
from smokegate.core.results import Attempt, CheckResult, RunResult, Status, SuiteInfo
from smokegate.suite.loader import PlannedCheck, Suite

RunFn = Callable[[Any, CheckContext], Awaitable[Outcome]]

DEFAULT_CONCURRENCY = 32


class Observer(Protocol):
    """Progress hooks; reporters implement what they need (all are optional)."""

    def on_start(self, checks: Sequence[PlannedCheck]) -> None: ...
    def on_retry(self, check: PlannedCheck, attempt: Attempt) -> None: ...
    def on_result(self, result: CheckResult) -> None: ...


@dataclass(slots=True)
class RunOptions:
    concurrency: int = DEFAULT_CONCURRENCY
    fail_fast: bool = False


class _Null:
    def on_start(self, checks: Sequence[PlannedCheck]) -> None:
        pass

    def on_retry(self, check: PlannedCheck, attempt: Attempt) -> None:
        pass

    def on_result(self, result: CheckResult) -> None:
        pass


def _run_fns(checks: Sequence[PlannedCheck]) -> dict[str, RunFn]:
    """Each kind's ``run``, with the modules it names in ``PRELOAD`` imported now: an import
    inside the first attempt would block the loop and inflate every concurrent check's
    latency (a 60 ms cryptography import can fail an unrelated `latency: {max: 50ms}`)."""
    fns = {}
    for kind in {c.kind for c in checks}:
        module = KINDS[kind].load()
        for name in getattr(module, "PRELOAD", ()):
            importlib.import_module(name)
        fns[kind] = module.run
    return fns


async def attempt_loop(
    check: PlannedCheck, run: RunFn, ctx: CheckContext, observer: Observer
) -> CheckResult:
    retry = check.retry
    within = retry.within
    max_attempts = retry.attempts or (0 if within else 1)  # 0: bounded by the deadline only
    interval = retry.interval
    started_wall = time.time()
    t_start = time.perf_counter()
    deadline = t_start + within if within else None
    attempts: list[Attempt] = []
    status = Status.FAILED
    outcome: Outcome
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    evidence_from: Outcome | None = None  # the last attempt that ran to completion
    number = 0
    while True:
        number += 1
        budget = check.timeout
        t0 = time.perf_counter()
        clipped = False
        if deadline is not None and deadline - t0 < budget:
            budget, clipped = max(0.001, deadline - t0), True
        status = Status.FAILED
        timer = _Timer(loop, task, budget)
        deadline_token = ATTEMPT_DEADLINE.set(t0 + budget)
        cases_token = SELECTED_CASES.set(check.cases) if check.cases else None
        try:
            try:
                outcome = await run(check.spec, ctx)
            finally:
                timer.disarm()
                ATTEMPT_DEADLINE.reset(deadline_token)
                if cases_token is not None:
                    SELECTED_CASES.reset(cases_token)
            if outcome.ok:
                status = Status.PASSED
        except asyncio.CancelledError:
            if not timer.expired(task):
                raise
            outcome = Outcome(
                False,
                f"timed out after {format_duration(budget)}"
                + (" (cut short by the `within` deadline)" if clipped else ""),
                error_kind=ErrorKind.TIMEOUT,
            )
        except CheckFailed as exc:
            outcome = exc.to_outcome()
        except TimeoutError:
            outcome = Outcome(
                False,
                f"timed out after {format_duration(budget)}"
                + (" (cut short by the `within` deadline)" if clipped else ""),
                error_kind=ErrorKind.TIMEOUT,
            )
        except Exception as exc:  # a bug or an unexpected driver error: the check itself errored
            outcome = Outcome(False, f"{type(exc).__name__}: {exc}", error_kind=ErrorKind.INTERNAL)
            status = Status.ERROR
        t1 = time.perf_counter()
        attempt = Attempt(
            number,
            started_wall + (t0 - t_start),
            t1 - t0,
            outcome.ok,
            outcome.message,
            outcome.error_kind,
        )
        attempts.append(attempt)
        if not (clipped and outcome.error_kind == ErrorKind.TIMEOUT):
            evidence_from = outcome
        if outcome.ok or (max_attempts and number >= max_attempts):
            break
        pause = interval
        if deadline is not None:
            remaining = deadline - time.perf_counter()
            if remaining <= pause:
                break  # no time left for another full wait + attempt
        observer.on_retry(check, attempt)
        await asyncio.sleep(pause)
        interval = min(interval * retry.backoff, retry.max_interval)
    if not outcome.ok and evidence_from is not None and evidence_from is not outcome:
        # The deadline cut the final attempt short: the previous one says more about why.
        outcome = evidence_from
    message = outcome.message
    if status is not Status.PASSED and len(attempts) > 1:
        message = (
            f"{message} (after {len(attempts)} attempts in "
            f"{format_duration(time.perf_counter() - t_start)})"
        )
    return CheckResult(
        check.id,
        check.name,
        check.suite,
        check.kind,
        status,
        check.tags,
        check.source,
        check.description,
        attempts,
        started_wall,
        time.perf_counter() - t_start,
        message,
        outcome.error_kind,
        outcome.evidence,
        outcome.snippet,
        outcome.details,
        outcome.details.pop("log", None) if outcome.details else None,
        outcome.cases,
    )


class _Timer:
    """The attempt timeout: ``asyncio.timeout`` semantics at a fraction of its cost (it is
    entered once per check; on a 10,000-check run its bookkeeping was measurable).

    On expiry it cancels the task; ``expired`` then tells that cancellation apart from an
    outside one (Ctrl-C, --fail-fast) with the same uncancel accounting asyncio uses."""

    __slots__ = ("_cancelling", "_fired", "_handle")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any], delay: float
    ) -> None:
        self._fired = False
        self._cancelling = task.cancelling()
        self._handle = loop.call_later(delay, self._fire, task)

    def _fire(self, task: asyncio.Task[Any]) -> None:
        self._fired = True
        task.cancel()

    def disarm(self) -> None:
        self._handle.cancel()

    def expired(self, task: asyncio.Task[Any]) -> bool:
        return self._fired and task.uncancel() <= self._cancelling


def skipped_result(check: PlannedCheck, reason: str) -> CheckResult:
    """A check that did not run: its need failed, it was deselected, or the run stopped first."""
    return CheckResult(
        check.id,
        check.name,
        check.suite,
        check.kind,
        Status.SKIPPED,
        check.tags,
        check.source,
        check.description,
        [],
        time.time(),
        0.0,
        reason,
    )


def _scrub(result: CheckResult, ctx: CheckContext) -> CheckResult:
    red = ctx.redactor
    if not red:
        return result
    result.message = red.redact(result.message)
    result.snippet = red.redact(result.snippet) if result.snippet else result.snippet
    result.log = red.redact(result.log) if result.log else result.log
    for m in result.evidence:
        m.expected, m.actual = red.redact(m.expected), red.redact(m.actual)
    for a in result.attempts:
        a.message = red.redact(a.message)
    for c in result.cases:
        c.name, c.classname = red.redact(c.name), red.redact(c.classname)
        c.message, c.text, c.output = (
            red.redact(c.message),
            red.redact(c.text),
            red.redact(c.output),
        )
    result.details = red.redact_data(result.details)
    return result


class Scheduler:
    """Runs checks on ``concurrency`` workers, honouring ``needs``."""

    def __init__(
        self,
        checks: Sequence[PlannedCheck],
        ctx: CheckContext,
        options: RunOptions,
        observer: Observer,
    ) -> None:
        self.ctx = ctx
        self.options = options
        self.observer = observer
        self.checks = list(checks)
        self.by_id = {c.id: c for c in self.checks}
        self.results: dict[str, CheckResult] = {}
        self.waiting: dict[str, int] = {}
        self.dependents: dict[str, list[str]] = {}
        self.ready: deque[PlannedCheck] = deque()
        self.stop_reason: str | None = None
        self.wakeup = asyncio.Event()
        self.inflight: dict[asyncio.Task[Any], PlannedCheck] = {}
        for c in self.checks:
            deps = [d for d in c.needs if d in self.by_id]
            self.waiting[c.id] = len(deps)
            for d in deps:
                self.dependents.setdefault(d, []).append(c.id)
            if not deps:
                self.ready.append(c)

    def _finish(self, result: CheckResult) -> None:
        result = _scrub(result, self.ctx)
        self.results[result.id] = result
        self.observer.on_result(result)
        if (
            result.status in (Status.FAILED, Status.ERROR)
            and self.options.fail_fast
            and self.stop_reason is None
        ):
            self.stop(f"not run: --fail-fast after {result.name!r} failed", but=result.id)
        for dep_id in self.dependents.get(result.id, ()):
            self.waiting[dep_id] -= 1
            dependent = self.by_id[dep_id]
            if result.status is not Status.PASSED:
                if dep_id not in self.results:
                    what = "was skipped" if result.status is Status.SKIPPED else "failed"
                    self._finish(skipped_result(dependent, f"needs {result.name!r}, which {what}"))
            elif self.waiting[dep_id] == 0 and dep_id not in self.results:
                self.ready.append(dependent)
        self.wakeup.set()

    def stop(self, reason: str, *, but: str | None = None) -> None:
        """Start no more checks and cancel the running ones (except ``but``): what
        ``--fail-fast`` does, also on request from outside (another shard's failure,
        ``app.shard``). Checks not run are skipped with ``reason``."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        for task, check in self.inflight.items():
            if check.id != but:
                task.cancel()
        self.wakeup.set()

    async def _worker(self, fns: dict[str, RunFn]) -> None:
        me = asyncio.current_task()
        assert me is not None
        ready, results, ctx, observer = self.ready, self.results, self.ctx, self.observer
        total = len(self.checks)
        while len(results) < total:
            if self.stop_reason is not None:
                return
            if not ready:
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            check = ready.popleft()
            if check.skip:
                self._finish(skipped_result(check, check.skip))
                continue
            self.inflight[me] = check
            try:
                result = await attempt_loop(check, fns[check.kind], ctx, observer)
            except asyncio.CancelledError:
                if self.stop_reason is None:
                    raise
                self._finish(skipped_result(check, "cancelled: --fail-fast"))
                return
            finally:
                self.inflight.pop(me, None)
            self._finish(result)

    async def run(self) -> tuple[list[CheckResult], bool]:
        """All results in plan order, and whether the run was interrupted."""
        self.observer.on_start(self.checks)
        fns = _run_fns(self.checks)
        n = max(1, min(self.options.concurrency, len(self.checks)))
        workers = [asyncio.create_task(self._worker(fns)) for _ in range(n)]
        interrupted = False
        try:
            await asyncio.gather(*workers)
        except Exception:
            # A bug in an observer (or here): don't leave the other workers running.
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        except asyncio.CancelledError:
            interrupted = True
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if (task := asyncio.current_task()) is not None:
                task.uncancel()
        reason = "interrupted before it finished" if interrupted else self.stop_reason
        for c in self.checks:
            if c.id not in self.results:
                self._finish(skipped_result(c, reason or "not run"))
        return [self.results[c.id] for c in self.checks], interrupted


async def execute(
    suites: Sequence[Suite],
    checks: Sequence[PlannedCheck],
    ctx: CheckContext,
    options: RunOptions | None = None,
    observer: Observer | None = None,
    context: dict[str, Any] | None = None,
) -> RunResult:
    """Run ``checks`` (already selected from ``suites``) and return the whole run's result."""
    run = RunResult(
        run_id=uuid.uuid4().hex[:12],
        started_at=time.time(),
        suites=[SuiteInfo(s.name, s.file, s.release) for s in suites],
        context=dict(context or {}),
    )
    scheduler = Scheduler(checks, ctx, options or RunOptions(), observer or _Null())
    # An observer that can stop the run from outside (a shard worker told by its parent that
    # another shard failed under --fail-fast) gets the scheduler first.
    attach = getattr(observer, "attach", None)
    if attach is not None:
        attach(scheduler)
    try:
        run.results, run.interrupted = await scheduler.run()
    finally:
        await ctx.aclose()
        run.finished_at = time.time()
    return run
