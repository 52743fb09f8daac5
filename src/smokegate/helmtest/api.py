"""The entry points of ``smokegate helm-test``: choose a release's test hooks, run them, clean up
what crashed runs left. The command (``smokegate.cli.helm_test``) parses flags, calls these,
and prints; the ``helmTest`` check kind and ``gate --helm-tests run`` use the same pieces
(``hooks``, ``runner``) through ``smokegate.helmtest.flux`` and ``smokegate.checks.helmtest``.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smokegate.core.results import RunResult, SuiteInfo
from smokegate.core.selection import Selection
from smokegate.helmtest.hooks import Chosen, HookFilter, choose, failed_last_time, release_tests
from smokegate.helmtest.objects import RUN_LABEL
from smokegate.helmtest.runner import HelmTestRun, Options
from smokegate.helmtest.target import LoadedRelease, Target, load_release, resolve_target

Note = Callable[[str], None]


@dataclass(slots=True)
class Cleanup:
    deleted: list[str]
    problems: list[str]
    release: str | None
    namespace: str

    def summary(self) -> str:
        scope = f"of release {self.release} " if self.release else ""
        return f"{len(self.deleted)} object(s) {scope}removed from namespace {self.namespace}"


async def clean_up(
    client: Any,
    target: str | None,
    namespace: str,
    *,
    namespace_flag: str | None,
    older_than: float | None,
) -> Cleanup:
    """Delete what earlier runs left in ``namespace`` (of ``target``'s release only, if given;
    ``older_than``: only objects at least that old)."""
    from smokegate.helmtest.cleanup import cleanup_leftovers

    release, where = None, namespace
    if target:
        resolved = await resolve_target(client, target, namespace, namespace_flag=namespace_flag)
        release, where = resolved.release, resolved.namespace
    deleted, problems = await cleanup_leftovers(
        client, where, release=release, older_than=older_than
    )
    return Cleanup(deleted, problems, release, where)


@dataclass(slots=True)
class TestPlan:
    target: Target
    loaded: LoadedRelease
    hooks: list[Any]
    """Every hook of the release (tests and their support objects)."""
    chosen: Chosen
    only: set[str] | None
    """With ``rerun_failed``: the tests that failed last time (None: not asked)."""

    @property
    def has_tests(self) -> bool:
        return any(h.runnable for h in self.hooks)

    @property
    def last_run_source(self) -> str:
        return "Flux's status" if self.target.flux_test_hooks else "Helm's record"


async def plan_tests(
    client: Any,
    target: str,
    namespace: str,
    *,
    namespace_flag: str | None,
    filters: HookFilter,
    selection: Selection,
    rerun_failed: bool = False,
    flux_filters: bool = True,
) -> TestPlan:
    """Resolve ``target`` (a release, or a HelmRelease as Flux resolves it), read its latest
    deployed record, and choose its tests."""
    resolved = await resolve_target(client, target, namespace, namespace_flag=namespace_flag)
    loaded = await load_release(client, resolved)
    hooks = release_tests(loaded.record, loaded.describe)
    only = failed_last_time(hooks, resolved.flux_test_hooks) if rerun_failed else None
    chosen = choose(
        hooks,
        filters=filters,
        selection=selection,
        only=only,
        flux_filters=resolved.flux_filters if flux_filters else (),
    )
    return TestPlan(resolved, loaded, hooks, chosen, only)


@dataclass(slots=True)
class TestOutcome:
    run: RunResult
    test_run: HelmTestRun
    record_note: str | None = None
    """What recording ``last_run`` in Helm's record did (``record=True``)."""


def start_note(loaded: LoadedRelease, test_run: HelmTestRun, options: Options) -> str:
    n = len(test_run.tests)
    return (
        f"{loaded.describe} (chart {loaded.chart}): running {n} test{'s' if n != 1 else ''}"
        f"{' in parallel per weight' if options.parallel else ''} in namespace "
        f"{loaded.target.namespace} (run {test_run.run_id})"
    )


async def run_tests(
    client: Any,
    loaded: LoadedRelease,
    hooks: list[Any],
    options: Options,
    *,
    observer: Any = None,
    note: Note = lambda message: None,
    verbose_note: Note = lambda message: None,
    record: bool = False,
) -> TestOutcome:
    """Run ``hooks`` (Helm's order: by weight, then name) and return the run as a report.
    SIGINT/SIGTERM stop it: logs are collected and what this run created is deleted first
    (``note`` says so); ``record``: write the outcomes to Helm's record, as ``helm test``."""
    from smokegate.helmtest.record import record_last_runs

    test_run = HelmTestRun(client, loaded, hooks, options, observer=observer, note=verbose_note)
    note(start_note(loaded, test_run, options))
    run = RunResult(
        run_id=uuid.uuid4().hex[:12],
        started_at=time.time(),
        suites=[SuiteInfo(test_run.suite, loaded.describe, release_info(loaded))],
        # The release facts are on the suite entry; the context says which run created what.
        context={"helmTest": {"run": test_run.run_id, "label": f"{RUN_LABEL}={test_run.run_id}"}},
    )
    task = asyncio.ensure_future(test_run.run())
    loop = asyncio.get_running_loop()
    signals = [signal.SIGINT, signal.SIGTERM]

    def interrupt() -> None:
        if not task.done() and not task.cancelling():
            note("interrupted: collecting logs and deleting what this run created…")
            task.cancel()
        else:
            note("still cleaning up (at most 30s)…")

    for sig in signals:
        loop.add_signal_handler(sig, interrupt)
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled() or (me := asyncio.current_task()) is None or me.cancelling():
            raise  # this coroutine itself is being cancelled: not ours to swallow
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    run.results = test_run.ordered_results()
    run.interrupted = test_run.interrupted
    run.finished_at = time.time()
    outcome = TestOutcome(run, test_run)
    if record:
        outcome.record_note = await record_last_runs(client, loaded, test_run.last_runs)
    return outcome


def release_info(loaded: LoadedRelease) -> dict[str, Any]:
    t = loaded.target
    info: dict[str, Any] = {
        "name": t.release,
        "namespace": t.namespace,
        "storageNamespace": t.storage_namespace,
        "revision": loaded.record.version,
        "chart": loaded.chart,
    }
    if t.helmrelease is not None:
        meta = t.helmrelease.get("metadata") or {}
        info["helmRelease"] = f"{meta.get('namespace')}/{meta.get('name')}"
    return info
