"""``--workers N``: one planned run across N processes, one event loop each, one merged result.

    parent: plan ─▶ fork N workers ─▶ merge results (plan order) ─▶ report once
    worker: its shard of the plan (indices, ``engine.shard.partition``) ─▶ ``api.execute_plan``
            ─▶ results back in batches

Why fork after planning: the workers inherit the compiled plan (and the Secrets already read)
copy-on-write, so nothing is compiled twice and no check is pickled; only results travel, in
batches (``shard_worker``: 256 results, or whatever finished within 50 ms; a failure at once,
for the live console and ``--fail-fast``). bench/workers.py measures this against a worker that
re-plans the suites itself and against pickling the checks.

Control, parent to worker, over a pipe: ``stop`` (another shard failed under ``--fail-fast``:
the same skip reason a single process gives), ``interrupt`` (Ctrl-C or SIGTERM reached the
parent; workers ignore SIGINT so that the parent alone decides). The pipe closing (the parent
died, even by SIGKILL) interrupts the worker too: no orphan keeps running checks.

A worker that dies (a signal, an exception) is a crash, not a hang: its unfinished checks become
errors saying so, the others' results stand, and ``ShardedRun.crashes`` says what happened
(the CLI exits 4).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from smokegate.api import RunPlan, RunSettings, execute_plan
from smokegate.app.shard_worker import Frames, send, worker_main
from smokegate.core.results import CheckResult, RunResult, Status, SuiteInfo
from smokegate.engine.shard import crashed_result, partition, split_concurrency

__all__ = ["ShardedRun", "execute_sharded"]

_GRACE = 10.0  # seconds a worker has to report what finished after an interrupt


@dataclass(slots=True)
class ShardedRun:
    run: RunResult
    workers: int
    """Processes used (1: the plan could not be split, it ran here)."""
    crashes: list[str] = field(default_factory=list)
    """One line per worker that died (empty: none did)."""
    note: str | None = None
    """Why fewer workers ran than asked for, if that is worth saying."""


async def execute_sharded(
    plan: RunPlan,
    settings: RunSettings,
    workers: int,
    *,
    observer: Any = None,
    context: dict[str, Any] | None = None,
    kube_factory: Any = None,
    namespace: str | None = None,
    extra_results: Sequence[CheckResult] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> ShardedRun:
    """``api.execute_plan`` across up to ``workers`` processes; the merged run has the results
    in plan order, like a single-process run. Fewer workers when there are fewer ``needs``
    groups or less concurrency than workers; one (in this process) when the plan cannot be
    split or fork is not available (``on_note`` is told why, before the run)."""
    shards = partition(plan.checks, min(workers, max(1, settings.concurrency)))
    note = None
    if workers > 1 and len(shards) < 2:
        note = (
            f"--workers {workers}: running in one process: "
            + (
                "every check is linked to the others by needs"
                if len(plan.checks) > 1
                else "one check"
            )
            + (" (and -c 1)" if settings.concurrency < 2 else "")
        )
        if on_note is not None:
            on_note(note)
    if len(shards) < 2 or not hasattr(os, "fork"):
        run = await execute_plan(
            plan,
            settings,
            observer=observer,
            context=context,
            kube_factory=kube_factory,
            namespace=namespace,
            extra_results=extra_results,
        )
        return ShardedRun(run, 1, note=note)
    run = RunResult(
        run_id=uuid.uuid4().hex[:12],
        started_at=time.time(),
        suites=[SuiteInfo(s.name, s.file, s.release) for s in plan.suites],
        context=dict(context or {}),
    )
    parent = _Parent(plan, shards, observer)
    concurrencies = split_concurrency(settings.concurrency, len(shards))
    sys.stdout.flush()  # the children must not write the parent's buffered output again
    sys.stderr.flush()
    for s, indices in enumerate(shards):
        shard_settings = dataclasses.replace(settings, concurrency=concurrencies[s])
        parent.start(s, indices, shard_settings, kube_factory, namespace)
    try:
        await parent.collect()
    except asyncio.CancelledError:
        # Ctrl-C or SIGTERM: every worker stops its checks and reports what finished.
        parent.interrupted = True
        parent.tell_all(("interrupt",))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(parent.collect(), _GRACE)
        if (task := asyncio.current_task()) is not None:
            task.uncancel()
    finally:
        parent.reap()
    run.results = [*(extra_results or ()), *parent.merged()]
    run.interrupted = parent.interrupted
    run.finished_at = time.time()
    return ShardedRun(run, len(shards), parent.crashes, note)


class _Parent:
    """The parent's side: the workers, their pipes, the results as they arrive."""

    def __init__(self, plan: RunPlan, shards: list[list[int]], observer: Any) -> None:
        import multiprocessing

        self.mp = multiprocessing.get_context("fork")
        self.plan = plan
        self.shards = shards
        self.observer = observer
        self.results: dict[int, CheckResult] = {}
        self.procs: list[Any] = []
        self.outs: list[Frames] = []
        self.controls: list[int] = []
        self.open: set[int] = set()
        self.done: set[int] = set()
        self.errors: dict[int, str] = {}
        self.crashes: list[str] = []
        self.interrupted = False
        self.stopped = False
        self.fail_fast = False
        self.started = False
        self.failure: Exception | None = None
        self._wake = asyncio.Event()

    def start(
        self,
        s: int,
        indices: list[int],
        settings: RunSettings,
        kube_factory: Any,
        namespace: str | None,
    ) -> None:
        self.fail_fast = settings.fail_fast
        out_r, out_w = os.pipe()
        ctl_r, ctl_w = os.pipe()
        # The child closes its copies of the parent's pipe ends, its own and the earlier
        # workers': while any process holds a control pipe's write end, that worker never sees
        # it close when the parent dies (a SIGKILLed parent would leave it running).
        others = [out_r, ctl_w, *(f.fd for f in self.outs), *self.controls]
        proc = self.mp.Process(
            target=worker_main,
            args=(self.plan, indices, settings, kube_factory, namespace, out_w, ctl_r, others),
            name=f"smokegate-worker-{s + 1}",
            daemon=True,
        )
        proc.start()
        os.close(out_w)  # the parent keeps only its own ends: EOF then means the worker is gone
        os.close(ctl_r)
        self.procs.append(proc)
        self.outs.append(Frames(out_r))
        self.controls.append(ctl_w)
        self.open.add(s)

    async def collect(self) -> None:
        """Until every worker has said ``done`` or closed its pipe."""
        if self.observer is not None and not self.started:
            self.observer.on_start(self.plan.checks)
        self.started = True
        loop = asyncio.get_running_loop()
        for s in self.open:
            loop.add_reader(self.outs[s].fd, self._readable, s)
        try:
            while self.open:
                self._wake.clear()
                await self._wake.wait()
                if self.failure is not None:
                    raise self.failure
        finally:
            for s in self.open:
                loop.remove_reader(self.outs[s].fd)

    def _readable(self, s: int) -> None:
        frames = self.outs[s]
        try:
            for message in frames.read():
                self._handle(s, message)
        except Exception as exc:  # an observer's bug: fail the run as in one process
            self.failure = exc
            self._wake.set()
        if frames.eof:
            asyncio.get_running_loop().remove_reader(frames.fd)
            self._gone(s)

    def _handle(self, s: int, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "results":
            for i, result in message[1]:
                self.results[i] = result
                if self.observer is not None:
                    self.observer.on_result(result)
                if self.fail_fast and result.status in (Status.FAILED, Status.ERROR):
                    self._stop_others(s, f"not run: --fail-fast after {result.name!r} failed")
        elif kind == "retry":
            if self.observer is not None:
                self.observer.on_retry(self.plan.checks[message[1]], message[2])
        elif kind == "error":
            self.errors[s] = self.plan.redactor.redact(message[1])
        elif kind == "done":
            self.done.add(s)
            if message[1]:
                self.interrupted = True
                # Interrupted before its scheduler started: nothing of its shard ran.
                self._fill(s, None, "interrupted before it finished")

    def _gone(self, s: int) -> None:
        """Worker ``s`` closed its pipe: finished (``done`` came first) or crashed."""
        self.open.discard(s)
        self._wake.set()
        if s in self.done:
            return
        proc = self.procs[s]
        proc.join(5)
        code = proc.exitcode
        if s in self.errors:
            how = self.errors[s]
        elif code is not None and code < 0:
            how = f"killed by {signal.Signals(-code).name}"
        else:
            how = f"exit code {code}"
        n = len(self.shards)
        missing = self._fill(s, f"not run to the end: worker {s + 1} of {n} died ({how})")
        self.crashes.append(
            f"worker {s + 1} of {n} died ({how}) with {missing} of "
            f"{len(self.shards[s])} checks unfinished; they are reported as errors"
        )

    def _fill(self, s: int, crash: str | None, skip: str = "") -> int:
        """Results for shard ``s``'s checks that have none: errors (``crash``), else skipped."""
        from smokegate.engine.shard import skipped_result

        missing = [i for i in self.shards[s] if i not in self.results]
        for i in missing:
            check = self.plan.checks[i]
            result = crashed_result(check, crash) if crash else skipped_result(check, skip)
            self.results[i] = result
            if self.observer is not None:
                self.observer.on_result(result)
        return len(missing)

    def _stop_others(self, s: int, reason: str) -> None:
        if self.stopped:
            return
        self.stopped = True
        for t in range(len(self.controls)):
            if t != s:
                self._tell(t, ("stop", reason))

    def tell_all(self, message: tuple[Any, ...]) -> None:
        for t in range(len(self.controls)):
            self._tell(t, message)

    def _tell(self, t: int, message: tuple[Any, ...]) -> None:
        if t in self.open:
            with contextlib.suppress(OSError):  # gone already: its pipe says so
                send(self.controls[t], message)

    def reap(self) -> None:
        """No worker outlives the run: the ones still there after the grace period are
        killed (their checks then show as crashed)."""
        for proc in self.procs:
            if proc.is_alive():
                proc.join(0.5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for s in list(self.open):  # still open: it did not stop within the grace period
            self.errors.setdefault(s, "did not stop within the grace period, killed")
            self._gone(s)
        for fd in (*(f.fd for f in self.outs), *self.controls):
            with contextlib.suppress(OSError):
                os.close(fd)

    def merged(self) -> list[CheckResult]:
        return [self.results[i] for i in range(len(self.plan.checks)) if i in self.results]
