"""Helm tests for ``smokegate gate --helm-tests run``: run the chart's tests when Flux did not.

Flux runs a release's tests only with ``spec.test.enable`` (off by default), once per revision,
and keeps no logs. When it did run them (``status.history[0].testHooks`` has entries) the gate
reports Flux's results (``smokegate.flux.helmrelease.helm_test_results``); when it did not,
``run_release_tests`` (what the release flow calls; ``run_for_gate`` on its own event loop)
runs them here, with Flux's ``spec.test.filters`` applied, and returns one ``CheckResult`` per
test (id ``helm-test/<hook>``, the same shape as Flux's), logs included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from smokegate.core.results import CheckResult, Status

if TYPE_CHECKING:
    from smokegate.kube.client import KubeClient


def flux_ran_tests(hr: Mapping[str, Any]) -> bool:
    """Did helm-controller run this release's tests (enabled, and results recorded)?"""
    from smokegate.helmtest.target import target_from_helmrelease

    enabled = bool(((hr.get("spec") or {}).get("test") or {}).get("enable"))
    return enabled and bool(target_from_helmrelease(hr).flux_test_hooks)


async def run_release_tests(
    client: KubeClient,
    hr: Mapping[str, Any],
    *,
    timeout: float = 300.0,
    ignore_failures: bool = False,
    note: Callable[[str], None] | None = None,
) -> list[CheckResult]:
    """Run the tests of the HelmRelease ``hr`` (already read by the gate) with ``client``.
    Raises ``HelmTestError``/``ClusterError`` like the CLI."""
    from smokegate.helmtest.hooks import choose, release_tests
    from smokegate.helmtest.runner import HelmTestRun, Options
    from smokegate.helmtest.target import load_release, target_from_helmrelease

    target = target_from_helmrelease(hr)
    loaded = await load_release(client, target)
    chosen = choose(release_tests(loaded.record, loaded.describe), flux_filters=target.flux_filters)
    if not chosen.tests:
        return []
    test_run = HelmTestRun(
        client, loaded, chosen.selected, Options(timeout=timeout), note=note, suite="helm-test"
    )
    results = await test_run.run()
    for r in results:
        r.description = f"Helm test hook run by smokegate for {loaded.describe}"
        if ignore_failures and r.status in (Status.FAILED, Status.ERROR):
            r.status = Status.SKIPPED
            r.message = f"{r.message} (ignored: --ignore-helm-tests)"
    return results


def run_for_gate(
    config: Any,
    hr: Mapping[str, Any],
    *,
    timeout: float = 300.0,
    ignore_failures: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[CheckResult]:
    """``run_release_tests`` on its own event loop (each gate phase runs on its own), with a
    fresh client for ``config`` (the gate's ``SingleConfig``)."""
    from smokegate.core.loop import run_async
    from smokegate.kube.client import KubeClient

    namespace = str((hr.get("metadata") or {}).get("namespace") or "default")

    async def go() -> list[CheckResult]:
        client = KubeClient(config, namespace)
        try:
            return await run_release_tests(
                client, hr, timeout=timeout, ignore_failures=ignore_failures, note=progress
            )
        finally:
            await client.close()

    return run_async(go())
