"""One release flow for ``gate`` and ``serve``: ``run_release(ReleaseRequest, observer)``.

    wait for Flux ─▶ release facts ─▶ suites ─▶ Secrets ─▶ discovery ─▶ Helm tests ─▶ plan
        ─▶ run ─▶ redact (once) ─▶ render (the front end) ─▶ report back (notifiers)

1. **Wait** until Flux has reconciled the HelmRelease (``flux.wait.wait_for_release``): a
   terminal failure or the timeout is exit 3. A missing HelmRelease is waited for (``gate``),
   an error (``serve``), or, for a canary, no HelmRelease at all (the request's facts).
2. **Facts**: ``${release.*}`` from the HelmRelease (``flux.helmrelease.release_facts``).
3. **Suites**: the front end's choice, parsed once (``SuiteChoice``); ``serve`` makes it from the
   HelmRelease's annotations and its rules, so the choice may be a callable of the HelmRelease.
4. **Secrets** the suites reference, read in one batch (the release's namespace by default).
5. **Discovery** (``discover.request``), after the wait so the release Secret read is the new
   revision's; its checks are merged in memory, the suites' own checks winning name clashes.
6. **Helm tests**: Flux's results, or the chart's test hooks run here (``helm_tests="run"``)
   when Flux ran none.
7. **Plan and run** (``api.plan_suites``, ``api.execute_plan``); the front end's observer sees
   the run live (the console) and renders its outcome (console summary, report files).
8. **Redact** the run once (``report.redacted``): everything after reads the clean run.
9. **Report back** through the request's notifiers (``app.notify``: the Event, Flux's
   notification-controller), for a verdict only (exit 0 or 1).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from smokegate.api import RunPlan, RunSettings
from smokegate.app.notify import Delivery, Notifier, Verdict
from smokegate.core.errors import SmokegateError
from smokegate.core.selection import Selection

if TYPE_CHECKING:
    from smokegate.core.results import CheckResult, RunResult
    from smokegate.discover.build import Discovery
    from smokegate.discover.request import DiscoverRequest
    from smokegate.engine.runner import Observer
    from smokegate.flux.helmrelease import ReleaseFacts
    from smokegate.kube.client import KubeClient
    from smokegate.suite.parse import RawSuite

__all__ = [
    "Cluster",
    "KubeCluster",
    "Quiet",
    "ReleaseNotFound",
    "ReleaseObserver",
    "ReleaseRequest",
    "ReleaseResult",
    "RunInput",
    "Runner",
    "SuiteChoice",
    "run_release",
]


class ReleaseNotFound(SmokegateError):
    """The HelmRelease does not exist (and the request does not wait for it): exit 3."""

    exit_code = 3


class Cluster(Protocol):
    """Where the flow's API clients come from (one per namespace asked for)."""

    def client(self, namespace: str) -> KubeClient: ...


class KubeCluster:
    """A cluster reached with one configuration, read once (``kube.client.load_config``)."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def client(self, namespace: str) -> KubeClient:
        from smokegate.kube.client import KubeClient

        return KubeClient(self.config, namespace)


@dataclass(frozen=True, slots=True)
class SuiteChoice:
    """What a run of the release runs: parsed suites, their ``--var``s, discovery, and
    ``--resolve`` overrides for the whole run."""

    suites: Sequence[RawSuite] = ()
    vars: Mapping[str, str] = field(default_factory=dict)
    discover: DiscoverRequest | None = None
    """Discovery joins the suites (only with a HelmRelease and a cluster)."""
    resolve: Mapping[tuple[str, int], str] | None = None
    """Overrides ``ReleaseRequest.settings.resolve`` when given."""
    runner: Runner | None = None
    """Where the checks run, when the choice decides it (serve's ``inCluster`` rules);
    overrides ``ReleaseRequest.runner``."""


ChooseSuites = Callable[["dict[str, Any] | None"], Awaitable[SuiteChoice]]
"""Makes the choice once the HelmRelease (None: there is none) has been read."""


@dataclass(slots=True)
class RunInput:
    """What a ``Runner`` gets besides the plan: the run as ``api.execute_plan`` would make it."""

    settings: RunSettings
    selection: Selection
    vars: Mapping[str, str]
    """The run's ``--var`` values."""
    facts: ReleaseFacts
    namespace: str | None
    """The default namespace of ``kube`` checks and Secret references."""
    context: dict[str, Any]
    extra_results: list[CheckResult]
    """Results that go first in the run (Helm tests)."""
    observer: Observer | None


class Runner(Protocol):
    """Runs a plan somewhere else than this event loop (the in-cluster Job runner) and returns
    the run as if it ran here; the flow redacts and reports it like any other."""

    async def __call__(self, plan: RunPlan, run: RunInput) -> RunResult: ...


@dataclass(slots=True)
class ReleaseRequest:
    namespace: str
    """The HelmRelease's namespace (without one: the namespace of the run)."""
    name: str | None
    """The HelmRelease's name; None: there is none (a scheduled run)."""
    suites: SuiteChoice | ChooseSuites
    cluster: Cluster | None = None
    """None: Kubernetes is not used (no wait, no Secrets, no discovery, no report back)."""
    revision: str | None = None
    """Wait for this chart version."""
    wait_timeout: float = 600.0
    missing: Literal["wait", "fail", "skip"] = "wait"
    """A HelmRelease that is not there: wait for it to be created (the gate), fail
    (``ReleaseNotFound``), or run without one, with ``facts`` (a canary)."""
    facts: ReleaseFacts | None = None
    """The facts when there is no HelmRelease to read them from."""
    selection: Selection = field(default_factory=Selection)
    helm_tests: Literal["flux", "run"] = "flux"
    """``run``: run the chart's test hooks when Flux did not."""
    ignore_helm_tests: bool = False
    settings: RunSettings = field(default_factory=RunSettings)
    context: Mapping[str, Any] = field(default_factory=dict)
    """Recorded in the report next to the release's facts (a trigger, a job id)."""
    notifiers: Sequence[Notifier] = ()
    runner: Runner | None = None
    """None: the checks run here (``api.execute_plan``)."""


@dataclass(slots=True)
class ReleaseResult:
    facts: ReleaseFacts
    helmrelease: dict[str, Any] | None
    run: RunResult | None = None
    """The run, redacted (None: nothing ran: nothing to run, or the observer stopped it)."""
    code: int | None = None
    """The run's exit code (``api.exit_code``: 0, 1, 130, or 4 for a missing report)."""
    plan: RunPlan | None = None
    helm_tests: list[CheckResult] = field(default_factory=list)
    discovery: Discovery | None = None
    report_errors: list[str] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)


class ReleaseObserver(Protocol):
    """What a front end sees of the flow. The CLI prints (progress on stderr, the live console,
    reports: ``cli.gate.GateObserver``); the server logs (``server.execute``). ``Quiet``
    implements every hook as doing nothing, to subclass."""

    def phase(self, name: str) -> None:
        """Entering a phase: ``wait``, ``suites``, ``secrets``, ``discover``, ``helm-tests``,
        ``plan``, ``run``, ``report``."""

    def progress(self, message: str) -> None:
        """Flux's progress while waiting; notes from the Helm tests."""

    def discovered(self, discovery: Discovery) -> None:
        """What discovery found (before it joins the suites)."""

    def helm_tests(self, results: list[CheckResult]) -> None:
        """Flux's (or smokegate's) Helm test results, before the suites run."""

    def planned(self, plan: RunPlan, helm_tests: list[CheckResult]) -> bool:
        """The plan, before it runs; False stops the flow there (nothing selected)."""

    def run_observer(self, plan: RunPlan) -> Observer | None:
        """The engine observer that watches the run live (the console reporter)."""

    def finished(self, run: RunResult, plan: RunPlan) -> list[str]:
        """The redacted run, to render; returns the reports that could not be written."""

    def reported(self, delivery: Delivery) -> None:
        """One notifier's delivery (or why it failed)."""


class Quiet:
    """A ``ReleaseObserver`` that watches nothing: subclass it and override what you need."""

    def phase(self, name: str) -> None:
        pass

    def progress(self, message: str) -> None:
        pass

    def discovered(self, discovery: Discovery) -> None:
        pass

    def helm_tests(self, results: list[CheckResult]) -> None:
        pass

    def planned(self, plan: RunPlan, helm_tests: list[CheckResult]) -> bool:
        return True

    def run_observer(self, plan: RunPlan) -> Observer | None:
        return None

    def finished(self, run: RunResult, plan: RunPlan) -> list[str]:
        return []

    def reported(self, delivery: Delivery) -> None:
        pass


async def run_release(
    request: ReleaseRequest, observer: ReleaseObserver | None = None
) -> ReleaseResult:
    """The whole flow (see the module docstring). Raises what its phases raise:
    ``GateTimeout``/``ReleaseFailed``/``ReleaseNotFound`` (exit 3), ``SuiteError`` (2),
    ``ClusterError`` (4), and the observer's own errors."""
    observer = observer if observer is not None else Quiet()
    cluster = request.cluster
    client = cluster.client(request.namespace) if cluster is not None else None
    try:
        return await _flow(request, observer, client)
    finally:
        if client is not None:
            await client.close()


async def _flow(
    request: ReleaseRequest, observer: ReleaseObserver, client: KubeClient | None
) -> ReleaseResult:
    from smokegate.api import fetch_suite_secrets
    from smokegate.flux.helmrelease import release_facts

    hr = await _helmrelease(request, observer, client)
    facts = release_facts(hr) if hr is not None else request.facts
    if facts is None:
        raise ValueError("ReleaseRequest.facts is required when there is no HelmRelease")
    observer.phase("suites")
    choice = request.suites if isinstance(request.suites, SuiteChoice) else await request.suites(hr)
    result = ReleaseResult(facts, hr)
    namespace = facts.namespace or None
    secrets: dict[Any, Any] = {}
    if client is not None:
        observer.phase("secrets")
        # References may use ${release.*} and --vars: expanded with the real facts.
        secrets = await fetch_suite_secrets(
            client,
            choice.suites,
            namespace,
            cli_vars=choice.vars,
            release_vars=facts.variables(),
        )
    suites = list(choice.suites)
    if choice.discover is not None and hr is not None and client is not None:
        from smokegate.discover.request import discover_from_helmrelease, merge_discovered

        observer.phase("discover")
        result.discovery = await discover_from_helmrelease(client, hr, choice.discover)
        observer.discovered(result.discovery)
        if result.discovery.checks:
            suites = merge_discovered(suites, result.discovery)
    result.helm_tests = await _helm_tests(request, observer, client, hr, facts)
    if not suites and not result.helm_tests:
        return result  # nothing to run
    result.plan = plan = await _plan(request, observer, choice, suites, facts, secrets)
    if result.helm_tests:
        observer.helm_tests(result.helm_tests)
    if not observer.planned(plan, result.helm_tests):
        return result
    result.run = run = await _run(request, observer, choice, plan, facts, result.helm_tests)
    result.report_errors = observer.finished(run, plan)
    from smokegate.api import exit_code

    result.code = exit_code(run, result.report_errors)
    if hr is not None and client is not None and result.code in (0, 1) and request.notifiers:
        from smokegate.flux.notify import outcome_of

        observer.phase("report")
        verdict = Verdict(facts, hr, outcome_of(run), client)
        for notifier in request.notifiers:
            delivery = await notifier.notify(verdict)
            result.deliveries.append(delivery)
            observer.reported(delivery)
    return result


async def _helmrelease(
    request: ReleaseRequest, observer: ReleaseObserver, client: KubeClient | None
) -> dict[str, Any] | None:
    """The HelmRelease once Flux has reconciled it; None when there is none to read."""
    if request.name is None or client is None:
        return None
    from smokegate.core.errors import ClusterError
    from smokegate.flux.wait import wait_for_release
    from smokegate.kube.client import HELMRELEASE, KubeError

    observer.phase("wait")
    if request.missing != "wait":
        try:
            found = await client.get_or_none(HELMRELEASE, request.name, request.namespace)
        except KubeError as exc:
            raise ClusterError(str(exc)) from None
        if found is None:
            if request.missing == "skip":
                return None
            raise ReleaseNotFound(f"HelmRelease {request.namespace}/{request.name} not found")
    return await wait_for_release(
        client,
        request.namespace,
        request.name,
        revision=request.revision,
        timeout=request.wait_timeout,
        progress=observer.progress,
    )


async def _helm_tests(
    request: ReleaseRequest,
    observer: ReleaseObserver,
    client: KubeClient | None,
    hr: dict[str, Any] | None,
    facts: ReleaseFacts,
) -> list[CheckResult]:
    if hr is None:
        return []
    from smokegate.flux.helmrelease import helm_test_results

    results: list[CheckResult] = helm_test_results(hr, ignore_failures=request.ignore_helm_tests)
    if request.helm_tests == "run" and client is not None:
        from smokegate.helmtest.flux import flux_ran_tests, run_release_tests

        if not flux_ran_tests(hr):
            observer.phase("helm-tests")
            observer.progress(f"Flux did not run {facts.name}'s Helm tests: running them")
            results = await run_release_tests(
                client, hr, ignore_failures=request.ignore_helm_tests, note=observer.progress
            )
    return results


async def _plan(
    request: ReleaseRequest,
    observer: ReleaseObserver,
    choice: SuiteChoice,
    suites: list[RawSuite],
    facts: ReleaseFacts,
    secrets: Mapping[Any, Any],
) -> RunPlan:
    from smokegate.api import plan_suites

    observer.phase("plan")
    # Interpolating and validating is synchronous CPU work: off the event loop (the server
    # keeps answering while a big suite is planned).
    return await asyncio.to_thread(
        plan_suites,
        suites,
        cli_vars=choice.vars,
        selection=request.selection,
        release_vars=facts.variables(),
        secrets=secrets,
        default_namespace=facts.namespace or None,
    )


async def _run(
    request: ReleaseRequest,
    observer: ReleaseObserver,
    choice: SuiteChoice,
    plan: RunPlan,
    facts: ReleaseFacts,
    helm_tests: list[CheckResult],
) -> RunResult:
    """Run the plan and return it redacted: the one place the outcome is scrubbed for
    everything after it (render, store, notifiers)."""
    from smokegate.api import execute_plan
    from smokegate.report import redacted

    run_observer = observer.run_observer(plan)
    observer.phase("run")
    settings = request.settings
    if choice.resolve is not None:
        settings = dataclasses.replace(settings, resolve=dict(choice.resolve))
    namespace = facts.namespace or None
    context = facts.context() if facts.helm_release_namespace else {}
    context |= dict(request.context)
    cluster = request.cluster
    runner = choice.runner or request.runner
    if runner is not None:
        run_input = RunInput(
            settings,
            request.selection,
            choice.vars,
            facts,
            namespace,
            context,
            helm_tests,
            run_observer,
        )
        run = await runner(plan, run_input)
    else:
        run = await execute_plan(
            plan,
            settings,
            observer=run_observer,
            context=context,
            kube_factory=(lambda: cluster.client(namespace or "default")) if cluster else None,
            namespace=namespace,
            extra_results=helm_tests,
        )
    return redacted(run, plan.redactor)
