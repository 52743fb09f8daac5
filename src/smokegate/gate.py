"""The CI promotion gate for a Flux HelmRelease, as one library call: ``run_gate(GateRequest)``
(the front end is ``smokegate.cli.gate``).

1. **Wait** until Flux has reconciled the release (``flux.wait.wait_for_release``): generation
   observed, ``Ready=True``, at ``revision`` when one is asked for, Flux's Helm tests finished;
   ``Stalled``, a terminal ``Ready=False`` reason or the timeout fail (exit 3).
2. **Facts**: ``${release.name}``, ``${release.namespace}``, ``${release.revision}`` (chart
   version), ``${release.appVersion}``, ``${release.digest}`` and a few more.
3. **Flux's Helm tests**: each ``status.history[0].testHooks`` entry becomes a ``helm-test/<hook>``
   result; a failed test fails the gate unless ``ignore_helm_tests``.
4. **Run** the suites (Secrets they reference are read first; the default namespace of ``kube``
   checks and Secret references is the release's namespace).
5. **Report back** where Flux users look: a Kubernetes Event on the HelmRelease (reason
   ``SmokeTestSucceeded``/``SmokeTestFailed``) and, with ``notify_url``, the same result POSTed
   to Flux's notification-controller in its own event format.

Each phase runs on its own event loop (the suite runner owns one), so each opens its own API
connection; the kubeconfig is read once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from smokegate.core.selection import Selection
from smokegate.flux.helmrelease import (
    ReleaseFacts,
    helm_test_results,
    parse_target,
    release_facts,
)
from smokegate.flux.wait import Progress, ReleaseFailed, wait_for_release
from smokegate.kube.client import HELMRELEASE, KubeClient, KubeError, KubeOptions

__all__ = ["GateRequest", "GateResult", "ReleaseFailed", "run_gate", "wait_for_release"]


@dataclass(slots=True)
class GateRequest:
    target: str
    suites: Sequence[str]
    kube: KubeOptions = field(default_factory=KubeOptions)
    revision: str | None = None
    timeout: float = 600.0
    ignore_helm_tests: bool = False
    notify_url: str | None = None
    record_event: bool = True
    cli_vars: dict[str, str] = field(default_factory=dict)
    selection: Selection = field(default_factory=Selection)
    stdin_text: str | None = None
    discover: Any = None
    helm_tests: str = "flux"
    """``run``: run the chart's test hooks when Flux did not (``flux``: report Flux's only)."""
    """A ``DiscoverRequest`` for ``gate --discover``: derived checks join the suites."""


@dataclass(slots=True)
class GateResult:
    code: int
    facts: ReleaseFacts
    run: Any = None
    helm_tests: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Report-back outcomes (the Event, the notification), for the user to read."""


Execute = Callable[..., tuple[int, Any]]


# --- the whole flow ------------------------------------------------------------------------


def run_gate(request: GateRequest, *, execute: Execute, progress: Progress) -> GateResult:
    """Wait, gather facts, run the suites through ``execute``, report back.

    ``execute(plan, context=..., kube_factory=..., extra_results=..., namespace=...)`` runs a
    plan and returns ``(exit_code, RunResult)`` (the CLI passes its reporting runner)."""
    from smokegate.api import (
        fetch_suite_secrets,
        parse_suites,
        plan_run,
        read_stdin_once,
        run_async,
    )
    from smokegate.kube.client import effective_namespace, load_config

    # Everything that can be checked without the cluster is checked before a long wait.
    ns_hint, name = parse_target(request.target, request.kube.namespace)
    config = load_config(request.kube)
    namespace = ns_hint or effective_namespace(config, request.kube)
    stdin_text = read_stdin_once(request.suites, request.stdin_text)
    raws = parse_suites(request.suites, stdin_text=stdin_text) if request.suites else []
    if raws:
        _validate_before_waiting(raws, request)

    async def prepare() -> tuple[dict[str, Any], dict[Any, str], Any]:
        client = KubeClient(config, namespace)
        try:
            hr = await wait_for_release(
                client,
                namespace,
                name,
                revision=request.revision,
                timeout=request.timeout,
                progress=progress,
            )
            facts = release_facts(hr)
            # Secret references may use ${release.*} and --vars: expanded with the real facts.
            secrets = await fetch_suite_secrets(
                client,
                raws,
                facts.namespace,
                cli_vars=request.cli_vars,
                release_vars=facts.variables(),
            )
            discovery = None
            if request.discover is not None:
                # After the wait, so the release Secret read is the new revision's.
                from smokegate.discover.request import discover_from_helmrelease

                discovery = await discover_from_helmrelease(client, hr, request.discover)
            return hr, secrets, discovery
        finally:
            await client.close()

    hr, secrets, discovery = run_async(prepare())
    paths = list(request.suites)
    if discovery is not None:
        from smokegate.discover.request import merged_suite_paths

        paths = merged_suite_paths(request.suites, discovery, stdin_text=stdin_text)
    facts = release_facts(hr)
    helm_tests = helm_test_results(hr, ignore_failures=request.ignore_helm_tests)
    if request.helm_tests == "run":
        from smokegate.helmtest.flux import flux_ran_tests, run_for_gate

        if not flux_ran_tests(hr):
            progress(f"Flux did not run {facts.name}'s Helm tests: running them")
            helm_tests = run_for_gate(
                config, hr, ignore_failures=request.ignore_helm_tests, progress=progress
            )
    plan = plan_run(
        paths,
        cli_vars=request.cli_vars,
        selection=request.selection,
        release_vars=facts.variables(),
        secrets=secrets,
        default_namespace=facts.namespace,
        stdin_text=stdin_text,
    )
    code, run = execute(
        plan,
        context=facts.context(),
        kube_factory=lambda: KubeClient(config, facts.namespace),
        extra_results=helm_tests,
        namespace=facts.namespace,
    )
    result = GateResult(code, facts, run, helm_tests)
    if run is not None and code in (0, 1):
        result.notes = run_async(
            _report_back(config, namespace, hr, facts, run, request, plan.redactor)
        )
    return result


def _validate_before_waiting(raws: list[Any], request: GateRequest) -> None:
    """Every check is validated now, with placeholder release facts and Secret values, so a
    typo fails in a second (exit 2), not after waiting up to ``--timeout`` for Flux."""
    from smokegate.api import compile_with_secret_scan, release_placeholders
    from smokegate.suite.interpolate import Scope
    from smokegate.suite.loader import CompileOptions

    placeholders = release_placeholders()
    scope = Scope(env=dict(os.environ), missing_secret=lambda key: "<secret>")
    compile_with_secret_scan(
        raws,
        CompileOptions(
            cli_vars=request.cli_vars, env=scope.env, release_vars=placeholders, scope=scope
        ),
    )


# --- 5. report back ------------------------------------------------------------------------


async def _report_back(
    config: Any,
    namespace: str,
    hr: dict[str, Any],
    facts: ReleaseFacts,
    run: Any,
    request: GateRequest,
    redactor: Any,
) -> list[str]:
    """Record the Event and notify Flux; failures become notes, not a different exit code (the
    suite's verdict stands; the note says what could not be reported and why)."""
    from smokegate.flux.notify import NotifyError, build_event, outcome_of, post_event
    from smokegate.kube.events import record_event

    outcome = outcome_of(run, redactor)
    what = HELMRELEASE.describe(facts.helm_release, namespace)
    notes: list[str] = []
    if request.record_event:
        client = KubeClient(config, namespace)
        try:
            await record_event(
                client, hr, reason=outcome.reason, message=outcome.message(), warning=not outcome.ok
            )
            notes.append(f"recorded Event {outcome.reason} on {what}")
        except KubeError as exc:
            notes.append(f"warning: could not record an Event on {what}: {exc}")
        finally:
            await client.close()
    if request.notify_url:
        try:
            status = await post_event(request.notify_url, build_event(facts, outcome))
            notes.append(f"notified Flux at {request.notify_url}: {status}")
        except NotifyError as exc:
            notes.append(f"warning: {exc}")
    return notes
