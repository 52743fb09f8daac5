"""The worker side of ``app.shard``: a forked process running its shard of the plan, and the
wire both sides speak (length-prefixed pickles over two pipes)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import struct
from typing import Any

from smokegate.api import RunPlan, RunSettings, execute_plan
from smokegate.core.results import CheckResult, Status

__all__ = ["Frames", "send", "worker_main"]

_BATCH = 256
_FLUSH = 0.05  # seconds

# --- the wire: length-prefixed pickles over pipes --------------------------------------------
# Plain pipes rather than multiprocessing.Connection: the event loop makes a descriptor it
# watches non-blocking, and Connection.recv then fails on a message that arrived in parts.

_HEAD = struct.Struct("!I")


def send(fd: int, message: tuple[Any, ...]) -> None:
    """One message, whole (a blocking descriptor: only the reading side is an event loop's)."""
    data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEAD.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


class Frames:
    """The messages on a (non-blocking) descriptor, as they come: ``read`` when readable."""

    __slots__ = ("buf", "eof", "fd")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.eof = False

    def read(self) -> list[tuple[Any, ...]]:
        try:
            chunk = os.read(self.fd, 1 << 20)
        except BlockingIOError:
            return []
        except OSError:
            chunk = b""
        if not chunk:
            self.eof = True
            return []
        buf = self.buf
        buf += chunk
        out = []
        start = 0
        while len(buf) - start >= _HEAD.size:
            (n,) = _HEAD.unpack_from(buf, start)
            end = start + _HEAD.size + n
            if end > len(buf):
                break
            out.append(pickle.loads(memoryview(buf)[start + _HEAD.size : end]))
            start = end
        del buf[:start]
        return out


# --- the worker process ---------------------------------------------------------------------


def worker_main(
    plan: RunPlan,
    indices: list[int],
    settings: RunSettings,
    kube_factory: Any,
    namespace: str | None,
    out: int,
    control: int,
    others: list[int],
) -> None:
    """A forked worker: its shard, on its own event loop; never returns (``os._exit``)."""
    # The parent's event loop woke on signals through this fd; this process has its own loop.
    signal.set_wakeup_fd(-1)
    # The parent decides about Ctrl-C (it reaches the whole process group): without this, a
    # worker would stop on its own and its checks be reported before the parent knows why.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for fd in others:
        with contextlib.suppress(OSError):
            os.close(fd)
    code = 0
    try:
        from smokegate.core.loop import run_async

        sub = RunPlan(plan.suites, [plan.checks[i] for i in indices], plan.pulled_in, plan.redactor)
        interrupted = run_async(
            _work(sub, indices, settings, kube_factory, namespace, out, control)
        )
        send(out, ("done", interrupted))
    except BaseException as exc:  # report it, then exit: the parent turns it into a crash
        code = 4
        try:
            text = f"{type(exc).__name__}: {exc}"
            send(out, ("error", text))
        except BaseException:
            pass
    os._exit(code)


async def _work(
    plan: RunPlan,
    indices: list[int],
    settings: RunSettings,
    kube_factory: Any,
    namespace: str | None,
    out: int,
    control: int,
) -> bool:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    forward = _Forward(out, {c.id: i for c, i in zip(plan.checks, indices, strict=True)}, loop)

    frames = Frames(control)

    def on_control() -> None:
        for message in frames.read():
            if message[0] == "stop":
                forward.stop(message[1])
            elif message[0] == "interrupt":
                task.cancel()
        if frames.eof:  # the parent is gone: stop, report nothing more
            loop.remove_reader(control)
            forward.parent_gone = True
            task.cancel()

    loop.add_reader(control, on_control)
    try:
        run = await execute_plan(
            plan, settings, observer=forward, kube_factory=kube_factory, namespace=namespace
        )
    except asyncio.CancelledError:  # before the scheduler ran: the parent skips the shard
        return True
    finally:
        if not forward.parent_gone:
            loop.remove_reader(control)
    forward.flush()
    return bool(run.interrupted)


class _Forward:
    """The worker's engine observer: results to the parent in batches, retries at once."""

    def __init__(self, out: int, index: dict[str, int], loop: asyncio.AbstractEventLoop) -> None:
        self.out = out
        self.index = index
        self.loop = loop
        self.batch: list[tuple[int, CheckResult]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.scheduler: Any = None
        self.stop_reason: str | None = None
        self.parent_gone = False

    def attach(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        if self.stop_reason is not None:
            scheduler.stop(self.stop_reason)

    def stop(self, reason: str) -> None:
        """Another shard failed under ``--fail-fast``: stop as if this one had."""
        self.stop_reason = reason
        if self.scheduler is not None:
            self.scheduler.stop(reason)

    def on_start(self, checks: Any) -> None:
        pass

    def on_retry(self, check: Any, attempt: Any) -> None:
        self._emit(("retry", self.index[check.id], attempt))

    def on_result(self, result: CheckResult) -> None:
        self.batch.append((self.index[result.id], result))
        if len(self.batch) >= _BATCH or result.status in (Status.FAILED, Status.ERROR):
            self.flush()
        elif self.timer is None:
            self.timer = self.loop.call_later(_FLUSH, self.flush)

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.batch:
            batch, self.batch = self.batch, []
            self._emit(("results", batch))

    def _emit(self, message: tuple[Any, ...]) -> None:
        if self.parent_gone:
            return
        try:
            send(self.out, message)
        except OSError:  # BrokenPipeError: the parent is gone
            self.parent_gone = True
