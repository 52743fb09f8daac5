"""A check kind that exists only for engine tests: it sleeps, then passes or fails as told.

This is a test double for a *check*, not for a server: the engine's scheduling, retry and
fail-fast logic is what these tests exercise, and a controllable check makes that exact.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from smokegate.checks.base import CheckContext, CheckFailed, Outcome, Spec, passed

calls: Counter[str] = Counter()
time_left: dict[str, list[float | None]] = {}  # what ctx.time_left() said at each attempt's start
running = 0
peak = 0


class ProbeSpec(Spec):
    """Sleep, then pass, fail, or pass only from attempt N on."""

    key: str
    sleep: float = 0.0
    fail: bool = False
    pass_from_attempt: int = 1
    crash: bool = False


async def run(spec: ProbeSpec, ctx: CheckContext) -> Outcome:
    global running, peak
    calls[spec.key] += 1
    time_left.setdefault(spec.key, []).append(ctx.time_left())
    running += 1
    peak = max(peak, running)
    try:
        await asyncio.sleep(spec.sleep)
    finally:
        running -= 1
    if spec.crash:
        raise ZeroDivisionError("boom")
    if spec.fail or calls[spec.key] < spec.pass_from_attempt:
        raise CheckFailed(f"probe {spec.key} failed on call {calls[spec.key]}")
    return passed()


SPEC = ProbeSpec
