"""The worker: ``concurrency`` slots, each claiming a job from the shared store, running it
(``execute.JobRunner``) and saving the run; and the schedules (``every: 5m``).

Crash safety comes from the store: a claimed job carries a lease that its slot renews while the
run lasts. If the process dies, the lease runs out and any replica (this one, restarted,
included) claims the job again; ``max_attempts`` bounds how often a job may take a worker down.
On a graceful stop (SIGTERM), running jobs get ``shutdown_grace`` to finish, then they are
cancelled and handed back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable

from smokegate.server.config import ServeConfig
from smokegate.server.execute import JobRunner, Outcome, error_run
from smokegate.server.metrics import Metrics
from smokegate.store.base import Job, Store

log = logging.getLogger("smokegate.server")

SLOT_MARGIN = 0.1
"""Seconds past a schedule's slot boundary at which the scheduler wakes (see ``_loop``)."""


def worker_name() -> str:
    """Unique per process (a restarted pod is a new worker: its old leases must expire)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        config: ServeConfig,
        store: Store,
        runner: JobRunner,
        metrics: Metrics,
        *,
        name: str | None = None,
        on_finished: Callable[[Job], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.runner = runner
        self.metrics = metrics
        self.name = name or worker_name()
        self._on_finished = on_finished
        self._wake = asyncio.Event()
        self._stopping = False
        self._slots: list[asyncio.Task[None]] = []
        self.running: dict[int, Job] = {}

    def wake(self) -> None:
        """A job was just queued here: look now instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        for i in range(self.config.worker.concurrency):
            self._slots.append(asyncio.create_task(self._slot(), name=f"smokegate-worker-{i}"))

    async def stop(self) -> None:
        """Let running jobs finish within the grace period, then re-queue what is left."""
        self._stopping = True
        self._wake.set()
        if not self._slots:
            return
        _, pending = await asyncio.wait(self._slots, timeout=self.config.worker.shutdown_grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._slots, return_exceptions=True)
        self._slots = []

    async def _slot(self) -> None:
        cfg = self.config.worker
        failures = 0
        while not self._stopping:
            try:
                job = await self.store.claim(self.name, cfg.lease)
                failures = 0
            except Exception as exc:  # the store is down: back off, keep serving HTTP
                failures += 1
                log.warning("cannot claim jobs from the store: %s", exc)
                await asyncio.sleep(min(0.5 * 2**failures, 30.0))
                continue
            if job is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(cfg.poll_interval):
                        await self._wake.wait()
                continue
            # Another job may be waiting right behind this one: let a sibling slot look too.
            self._wake.set()
            if job.id in self.running:
                # Its lease ran out while a sibling slot of this process still holds its run
                # (saving it after a store outage): that slot will finish the job.
                continue
            await self._process(job)

    async def _process(self, job: Job) -> None:
        cfg = self.config.worker
        self.running[job.id] = job
        log.info(
            "job %s: %s %s (%s, attempt %s)",
            job.id,
            job.release,
            job.revision or "-",
            job.trigger,
            job.attempts,
        )
        if job.attempts > cfg.max_attempts:
            message = (
                f"gave up after {job.attempts - 1} attempts: the worker running this job "
                "stopped each time (crash, OOM kill?)"
            )
            run_task = asyncio.create_task(_ready(Outcome(error_run(job, message, time.time()))))
        else:
            run_task = asyncio.create_task(self.runner.run(job))
        lost = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(job, run_task, lost))
        try:
            outcome = await asyncio.shield(run_task)
        except asyncio.CancelledError:
            if lost.is_set() and not self._stopping:
                # The lease went to another replica, which runs the job now: drop ours quietly.
                self.running.pop(job.id, None)
                return
            # Shutdown: stop the run and hand the job back so another worker runs it.
            run_task.cancel()
            with contextlib.suppress(BaseException):
                await run_task
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.requeue(job.id, self.name))
            self.running.pop(job.id, None)
            log.info("job %s re-queued", job.id)
            raise
        finally:
            heartbeat.cancel()
        saved = await self._save(job, outcome)
        self.running.pop(job.id, None)
        if saved and outcome.run is not None:
            self.metrics.run_finished(job.trigger, outcome.run.verdict)
            log.info(
                "job %s: %s %s -> %s (run %s)",
                job.id,
                job.release,
                outcome.run.revision,
                outcome.run.verdict.value,
                outcome.run.id,
            )
        if self._on_finished is not None:
            self._on_finished(job)

    async def _save(self, job: Job, outcome: Outcome) -> bool:
        """Finish the job with its run. While the store is down the run is kept in memory and
        the save retried (with backoff) until the store answers, so a result produced during
        an outage is written after it instead of being thrown away and re-run. The store still
        decides: if the lease was lost meanwhile (another replica re-ran the job), it answers
        False and that replica's run counts. On shutdown the run is dropped: the job's lease
        runs out and it is run again, so nothing is lost either way."""
        failures = 0
        while True:
            try:
                return await self.store.finish(job.id, self.name, outcome.run)
            except Exception as exc:
                failures += 1
                if self._stopping:
                    log.error("job %s: cannot save its run: %s (it will run again)", job.id, exc)
                    return False
                delay = min(0.25 * 2**failures, 2.0)
                if failures == 1:
                    log.warning("job %s: cannot save its run yet: %s; retrying", job.id, exc)
                await asyncio.sleep(delay)
                if failures % 20 == 0:
                    log.warning("job %s: still cannot save its run: %s", job.id, exc)

    async def _heartbeat(
        self, job: Job, run_task: asyncio.Task[Outcome], lost: asyncio.Event
    ) -> None:
        lease = self.config.worker.lease
        while True:
            await asyncio.sleep(lease / 3)
            try:
                mine = await self.store.renew(job.id, self.name, lease)
            except Exception as exc:
                log.warning("job %s: cannot renew its lease: %s", job.id, exc)
                continue
            if not mine:
                log.warning("job %s: lease lost to another worker; abandoning this run", job.id)
                lost.set()
                run_task.cancel()
                return


async def _ready(outcome: Outcome) -> Outcome:
    return outcome


class Scheduler:
    """Queues each schedule once per ``every`` slot. The slot number is the job's nonce, so
    replicas that all run the scheduler still queue one job per slot (the store dedups)."""

    def __init__(self, config: ServeConfig, store: Store, wake: Callable[[], None]) -> None:
        self.config = config
        self.store = store
        self._wake = wake
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.config.schedules:
            self._task = asyncio.create_task(self._loop(), name="smokegate-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def tick(self, now: float | None = None) -> int:
        """Queue every schedule whose current slot has no job yet; returns how many were new."""
        now = time.time() if now is None else now
        created = 0
        for s in self.config.schedules:
            slot = int(now // s.every)
            release = s.release or f"schedule/{s.name}"
            payload = {"schedule": s.name, "suites": list(s.suites)}
            result = await self.store.enqueue(
                release, "", "schedule", nonce=f"{s.name}:{slot}", payload=payload
            )
            created += int(result.created)
        if created:
            self._wake()
        return created

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as exc:
                log.warning("scheduler: %s", exc)
            now = time.time()
            # Sleep until just after the next slot boundary of any schedule (at least 1 s).
            # Just after: a timer firing a hair early computes the previous slot (a duplicate)
            # and, a hair late the next time, the one after it: a slot silently skipped.
            waits = [s.every - (now % s.every) for s in self.config.schedules]
            await asyncio.sleep(max(1.0, min(waits)) + SLOT_MARGIN)
