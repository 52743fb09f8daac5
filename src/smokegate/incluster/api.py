"""Run suites inside the cluster, as a Job, and report as if they ran here: the entry points
of ``smokegate run --in-cluster``, ``gate --in-cluster`` and serve's ``inCluster: true``.

    prepared = prepare(InClusterRequest(suites=["suites/"], namespace="apps"))
    outcome = run_in_cluster(prepared, output=sys.stdout.write, progress=print)
    # outcome.code: 0/1/2/4/130, as a local run; outcome.run: the RunResult for the reports

* ``prepare``: validate the suites here first (``api.plan_run`` with Secret placeholders and
  the pod's environment: a suite error is exit 2 before anything is created), then the
  ConfigMap's files (``bundle``) and the Job (``manifests``);
* ``execute`` (async, a ``KubeClient`` given) / ``run_in_cluster`` (its own event loop, with
  Ctrl-C and SIGTERM handled): create, follow, stop, clean up (``follow.JobFollower``), then
  ``outcome_of``: the pod's JSON report (read back from its log, ``report.logblock``) as a
  ``RunResult``, file names mapped back to the local ones, and the exit code.

Secrets are never copied: the pod's ``smokegate run`` resolves ``${secret:…}``/``secretRef``
with its own ServiceAccount. ``--var`` values and ``env`` travel in the Job's arguments and
environment, readable by whoever can read the Job: not for secrets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smokegate.api import RunPlan, parse_resolve_flags, plan_run
from smokegate.checks.base import ErrorKind
from smokegate.core.durations import format_duration
from smokegate.core.errors import ClusterError, Problem, SuiteError, UsageError
from smokegate.core.results import CheckResult, RunResult, Status, SuiteInfo
from smokegate.core.selection import Selection
from smokegate.incluster.bundle import SuiteBundle, bundle_suites
from smokegate.incluster.follow import Collected, JobFollower
from smokegate.incluster.manifests import (
    DEFAULT_TIMEOUT,
    PodOptions,
    build_configmap,
    build_job,
    new_run_id,
)
from smokegate.kube.client import KubeClient, KubeError, KubeOptions

__all__ = [
    "InClusterOutcome",
    "InClusterRequest",
    "Prepared",
    "execute",
    "outcome_of",
    "prepare",
    "run_in_cluster",
]

RUNNER_SUITE = "in-cluster"
RUNNER_ID = "in-cluster/runner"
RBAC_HINT = "run --in-cluster needs these permissions in the namespace: docs/in-cluster.md"


@dataclass(slots=True)
class InClusterRequest:
    suites: Sequence[str]
    namespace: str | None = None
    """Where the Job runs, and the default namespace of the pod's checks (None: the context's)."""
    kube: KubeOptions = field(default_factory=KubeOptions)
    pod: PodOptions = field(default_factory=PodOptions)
    timeout: float = DEFAULT_TIMEOUT
    """From creating the Job to the pod's end; the Job's activeDeadlineSeconds backs it."""
    cli_vars: Mapping[str, str] = field(default_factory=dict)
    """``--var`` values (release facts under ``gate``: ``release.name=…``), passed along."""
    selection: Selection = field(default_factory=Selection)
    concurrency: int = 32
    fail_fast: bool = False
    resolve: Sequence[str] = ()
    """``HOST:PORT:ADDR`` entries, as ``--resolve`` takes them."""
    quiet: bool = False
    verbose: bool = False
    keep: bool = False
    """Leave the Job, its pod and the ConfigMap (their TTL deletes them later)."""
    context: Mapping[str, Any] = field(default_factory=dict)
    """Facts recorded in the report (the release under ``gate``)."""
    extra_results: Sequence[CheckResult] = ()
    """Results that go first in the run (Flux's Helm tests under ``gate``)."""
    stdin_text: str | None = None
    columns: int = 120
    """The pod's console width (the local terminal's)."""


@dataclass(slots=True)
class Prepared:
    request: InClusterRequest
    namespace: str
    plan: RunPlan
    """The local validation's plan (Secrets as placeholders): what the pod will run."""
    bundle: SuiteBundle
    run_id: str
    job: dict[str, Any]


@dataclass(slots=True)
class InClusterOutcome:
    code: int
    run: RunResult | None
    """None when the pod stopped before running anything (a suite or cluster error in the pod:
    exit 2 or 4, its message in the streamed log), as a local run writes no report then."""
    collected: Collected
    notes: list[str] = field(default_factory=list)


# --- prepare --------------------------------------------------------------------------------


def pod_env(request: InClusterRequest) -> dict[str, str]:
    """The environment ``${env:…}`` sees in the pod (besides what the image sets)."""
    return {**request.pod.env, "HOME": "/tmp", "COLUMNS": str(request.columns)}


def prepare(request: InClusterRequest, *, namespace: str) -> Prepared:
    """Validate and build; nothing touches the cluster. ``SuiteError``/``UsageError``: exit 2."""
    if request.timeout <= 0:
        raise UsageError("--timeout must be positive")
    if request.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    parse_resolve_flags(request.resolve)  # a UsageError now, not in the pod
    bundle = bundle_suites(request.suites, stdin_text=request.stdin_text)
    try:
        plan = plan_run(
            request.suites,
            cli_vars=request.cli_vars,
            env=pod_env(request),
            selection=request.selection,
            release_vars={},  # no placeholders: the pod's `run` knows only what --var says
            default_namespace=namespace,
            lint=True,  # Secret references get placeholders: the pod reads the Secrets
            stdin_text=request.stdin_text,
        )
    except SuiteError as exc:
        raise SuiteError([_env_hint(p) for p in exc.problems]) from None
    run_id = new_run_id()
    job = build_job(
        run_id,
        namespace,
        pod_args(request, namespace, bundle),
        bundle,
        request.pod,
        timeout=request.timeout,
        columns=request.columns,
    )
    return Prepared(request, namespace, plan, bundle, run_id, job)


def _env_hint(problem: Problem) -> Problem:
    if "environment variable" not in problem.message:
        return problem
    note = " (in-cluster: the pod's environment holds only what --env passes)"
    return Problem(problem.file, problem.line, problem.column, problem.message + note)


def pod_args(request: InClusterRequest, namespace: str, bundle: SuiteBundle) -> list[str]:
    """The pod's ``smokegate`` arguments: ``run`` with the same selection and settings, plain
    console output, and the report block at the end of its log (``--log-report``)."""
    args = ["run", "-n", namespace, "--no-color", "--log-report"]
    args += ["-c", str(request.concurrency)]
    if request.fail_fast:
        args.append("-x")
    if request.quiet:
        args.append("-q")
    if request.verbose:
        args.append("-v")
    for entry in request.resolve:
        args += ["--resolve", entry]
    sel = request.selection
    for flag, values in (
        ("-k", sel.patterns),
        ("-t", sel.tags),
        ("--exclude-tag", sel.exclude_tags),
    ):
        for value in values:
            args += [flag, value]
    for key, value in request.cli_vars.items():
        args += ["--var", f"{key}={value}"]
    return [*args, *bundle.pod_paths]


# --- run --------------------------------------------------------------------------------------


async def execute(
    prepared: Prepared,
    client: KubeClient,
    *,
    output: Callable[[str], None],
    progress: Callable[[str], None],
    on_follower: Callable[[JobFollower], None] | None = None,
) -> InClusterOutcome:
    """Create, follow and clean up; then the outcome. API refusals (creating the Job, reading
    the pod or its log) raise ``ClusterError`` after the cleanup; a cancellation is re-raised
    after it (``follower.collected`` then holds what was gathered)."""
    request = prepared.request
    follower = JobFollower(
        client,
        prepared.job,
        lambda job: build_configmap(prepared.run_id, prepared.namespace, prepared.bundle, job),
        run_id=prepared.run_id,
        timeout=request.timeout,
        output=output,
        progress=progress,
        keep=request.keep,
    )
    if on_follower is not None:
        on_follower(follower)
    try:
        collected = await follower.run()
    except KubeError as exc:
        hint = f" ({RBAC_HINT})" if exc.forbidden else ""
        raise ClusterError(f"{exc}{hint}") from None
    return outcome_of(prepared, collected)


def run_in_cluster(
    prepared: Prepared,
    *,
    output: Callable[[str], None],
    progress: Callable[[str], None],
) -> InClusterOutcome:
    """``execute`` on its own event loop. The first Ctrl-C or SIGTERM stops the run (the pod
    is asked to stop and its partial report collected, as a local run reports what finished;
    the outcome's code is then 130); a second one skips that wait; the cleanup always runs."""
    import asyncio
    import signal

    from smokegate.core.loop import run_async
    from smokegate.kube.client import load_config

    config = load_config(prepared.request.kube)

    async def main() -> InClusterOutcome:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        follower: list[JobFollower] = []
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            if signals == 1 and task is not None:
                task.cancel()
            elif follower:
                follower[0].hurry()

        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, on_signal)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread: the caller's own handling applies
        client = KubeClient(config, prepared.namespace)
        try:
            return await execute(
                prepared, client, output=output, progress=progress, on_follower=follower.append
            )
        except asyncio.CancelledError:
            if not follower:
                raise KeyboardInterrupt from None
            # The run is over (stopped, cleaned up): this is its outcome, code 130.
            return outcome_of(prepared, follower[0].collected)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await client.close()

    return run_async(main())


# --- the outcome --------------------------------------------------------------------------------


def outcome_of(prepared: Prepared, collected: Collected) -> InClusterOutcome:
    """The run as if it ran here, and its exit code:

    * the pod's report read back: its exit code (0/1/130); a timeout is a failure (1), with a
      ``in-cluster/runner`` result saying so next to the checks that finished;
    * no report, the container exited 2 or 4 (a suite or cluster problem the pod printed):
      that code and no report, as a local run;
    * no report otherwise (the pod never started, crashed, was stopped before reporting):
      every planned check skipped plus an ``in-cluster/runner`` error result saying why;
      exit 4 (1 after a timeout while it ran, 130 when interrupted)."""
    from smokegate.api import exit_code
    from smokegate.report.jsonreport import ReportFormatError, parse_report

    notes = [f"left behind: {item}" for item in collected.leftovers]
    if collected.kept:
        notes.append(
            f"kept job {collected.namespace}/{collected.job} (--keep-job): its TTL deletes it, "
            "its pod and its ConfigMap once it has finished"
        )
    run: RunResult | None = None
    problem = collected.report_problem
    if collected.report_json is not None:
        try:
            run = parse_report(collected.report_json)
        except ReportFormatError as exc:
            problem = f"the pod's report cannot be read: {exc}"
    if run is not None:
        _localize(run, prepared, collected)
        if collected.timed_out:
            run.results.append(_runner_result(prepared, collected, _timeout_text(prepared)))
            return InClusterOutcome(1, run, collected, notes)
        if collected.interrupted:
            run.interrupted = True
        return InClusterOutcome(exit_code(run), run, collected, notes)
    if collected.exit_code in (2, 4) and not (collected.timed_out or collected.interrupted):
        return InClusterOutcome(collected.exit_code, None, collected, notes)
    run = _planned_as_skipped(prepared, collected)
    if collected.interrupted and not collected.never_started:
        run.interrupted = True
        return InClusterOutcome(130, run, collected, notes)
    why = _no_report_text(prepared, collected, problem)
    run.results.append(_runner_result(prepared, collected, why))
    # A timeout while the checks ran is a failure, as when the report came back; a runner that
    # never ran or broke is an infrastructure problem.
    code = 130 if collected.interrupted else 1 if collected.timed_out and collected.started else 4
    return InClusterOutcome(code, run, collected, notes)


def _timeout_text(prepared: Prepared) -> str:
    return (
        f"the in-cluster run did not finish within {format_duration(prepared.request.timeout)} "
        "(the job timeout): checks that had not finished are reported as skipped"
    )


def _no_report_text(prepared: Prepared, c: Collected, problem: str) -> str:
    if c.never_started:
        return f"the runner pod never ran: {c.never_started}"
    limit = format_duration(prepared.request.timeout)
    if c.timed_out and not c.started:
        where = c.last_state or ("no pod yet" if c.pod is None else "not started")
        return f"the runner pod did not start within {limit} (the job timeout): {where}"
    if c.timed_out:
        return f"the runner pod did not finish within {limit} (the job timeout) nor report"
    how = f"exited {c.exit_code}" if c.exit_code is not None else "ended"
    text = f"the runner pod {c.pod or '?'} {how} without a report ({problem or 'no report'})"
    return text + (f": {c.termination}" if c.termination else "")


def _localize(run: RunResult, prepared: Prepared, c: Collected) -> None:
    """File names back to the local ones; the run's context and the gate's extra results."""
    bundle = prepared.bundle
    for suite in run.suites:
        suite.file = bundle.local_path(suite.file)
    for result in run.results:
        path, sep, line = result.source.rpartition(":")
        if sep and line.isdigit():
            result.source = f"{bundle.local_path(path)}:{line}"
        else:
            result.source = bundle.local_path(result.source)
    run.context = {**run.context, **prepared.request.context, "inCluster": _where(prepared, c)}
    run.results = [*prepared.request.extra_results, *run.results]


def _where(prepared: Prepared, c: Collected) -> dict[str, Any]:
    return {
        "namespace": prepared.namespace,
        "job": c.job,
        "pod": c.pod,
        "node": c.node,
        "image": prepared.request.pod.image,
        "exitCode": c.exit_code,
    }


def _planned_as_skipped(prepared: Prepared, c: Collected) -> RunResult:
    now = time.time()
    reason = (
        "not run: interrupted before the in-cluster run reported"
        if c.interrupted
        else "not run: the in-cluster run produced no report"
    )
    plan = prepared.plan
    results = [
        CheckResult(
            id=check.id,
            name=check.name,
            suite=check.suite,
            kind=check.kind,
            status=Status.SKIPPED,
            tags=check.tags,
            source=check.source,
            description=check.description,
            started_at=now,
            message=reason,
        )
        for check in plan.checks
    ]
    return RunResult(
        run_id=c.run_id,
        started_at=now,
        finished_at=now,
        suites=[SuiteInfo(s.name, s.file, s.release) for s in plan.suites],
        results=[*prepared.request.extra_results, *results],
        context={**prepared.request.context, "inCluster": _where(prepared, c)},
    )


def _runner_result(prepared: Prepared, c: Collected, message: str) -> CheckResult:
    return CheckResult(
        id=RUNNER_ID,
        name="runner",
        suite=RUNNER_SUITE,
        kind="in-cluster",
        status=Status.ERROR,
        source=f"job {prepared.namespace}/{c.job}",
        started_at=time.time(),
        message=message,
        error_kind=(
            ErrorKind.TIMEOUT
            if c.timed_out
            else ErrorKind.CONFIG
            if c.never_started
            else ErrorKind.INTERNAL
        ),
        details=_where(prepared, c),
    )
