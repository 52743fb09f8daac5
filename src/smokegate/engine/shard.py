"""Splitting one planned run into shards for worker processes (``app.shard`` runs them).

A shard is a list of indices into the plan's checks. Checks linked by ``needs`` (directly or
through others) always land in the same shard: ordering and "skipped because its need failed"
are decided by one scheduler, exactly as in a single-process run. Everything here is
deterministic: the same plan and shard count give the same shards, so a worker can be handed
its shard by index.
"""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Sequence

from smokegate.checks.base import ErrorKind
from smokegate.core.results import CheckResult, Status
from smokegate.engine.runner import skipped_result  # re-exported: a check a worker never started
from smokegate.suite.loader import PlannedCheck

__all__ = [
    "components",
    "crashed_result",
    "partition",
    "skipped_result",
    "split_concurrency",
    "usable_cpus",
]


def usable_cpus() -> int:
    """The CPUs this process may run on (``-j auto``): the affinity mask, which a container's
    cpuset or ``taskset`` narrows, rather than every CPU of the machine."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def components(checks: Sequence[PlannedCheck]) -> list[list[int]]:
    """Groups of check indices linked by ``needs`` (either direction), in plan order: each
    group sorted, groups ordered by their first check."""
    index = {c.id: i for i, c in enumerate(checks)}
    parent = list(range(len(checks)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving
            i = parent[i]
        return i

    for i, c in enumerate(checks):
        for dep in c.needs:
            j = index.get(dep)
            if j is not None:
                a, b = root(i), root(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(len(checks)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())  # dict order: by first index, each list ascending


def partition(checks: Sequence[PlannedCheck], shards: int) -> list[list[int]]:
    """At most ``shards`` shards (fewer when there are fewer ``needs`` groups), balanced by
    check count: each group goes to the shard with the fewest checks so far (ties: the lowest
    shard). A matrix of independent checks is dealt round-robin, so every shard gets a share
    of each part of the plan (a slow host is not one shard's problem). Each shard's indices
    are in plan order."""
    groups = components(checks)
    n = max(1, min(shards, len(groups)))
    if n == 1:
        return [list(range(len(checks)))] if checks else []
    out: list[list[int]] = [[] for _ in range(n)]
    heap = [(0, s) for s in range(n)]
    for group in groups:
        load, s = heapq.heappop(heap)
        out[s].extend(group)
        heapq.heappush(heap, (load + len(group), s))
    for shard in out:
        shard.sort()
    return out


def split_concurrency(concurrency: int, shards: int) -> list[int]:
    """``-c`` shared out: the run as a whole keeps at most ``concurrency`` checks in flight
    (and as many connections per origin), as in one process."""
    base, extra = divmod(concurrency, shards)
    return [base + (1 if s < extra else 0) for s in range(shards)]


def crashed_result(check: PlannedCheck, reason: str) -> CheckResult:
    """The result of a check whose worker process died before reporting it: an error (the
    run did not say whether it passes), never a silent skip."""
    return CheckResult(
        check.id,
        check.name,
        check.suite,
        check.kind,
        Status.ERROR,
        check.tags,
        check.source,
        check.description,
        [],
        time.time(),
        0.0,
        reason,
        ErrorKind.INTERNAL,
    )
