"""The Python API: plan a run from suite files, execute it. Every front end calls these (the CLI's
``run``, ``lint``, ``demo`` and ``gate``, and ``smokegate serve`` for each job); front ends only
parse their inputs, render, and pick the exit code.

    from smokegate.api import RunSettings, exit_code, plan_run, run_plan
    from smokegate.report import parse_report_flag, write_reports

    plan = plan_run(["suites/"], cli_vars={"base": "http://localhost:8080"})
    run = run_plan(plan, RunSettings(concurrency=16))
    errors = write_reports(run, [parse_report_flag("junit=out/junit.xml")], plan.redactor)
    raise SystemExit(exit_code(run, errors))

* ``plan_run``: load (each file parsed once), validate, interpolate, select
  (``SuiteError``/``UsageError``: exit 2); ``plan_suites`` the same for suites already parsed
  (``parse_suites``); ``plan_run_with_cluster``/``plan_suites_with_cluster``: for suites that
  reference Kubernetes Secrets (read first); ``validate_suites``: before the release is known;
* ``execute_plan`` (async) / ``run_plan`` (on its own event loop): run the checks, with an
  optional ``Observer`` for progress (``report.console.ConsoleReporter`` is one);
* ``exit_code``: 0/1/130 from the run, 4 when a promised report could not be written;
* ``run_async``: the event loop every synchronous entry point uses (uvloop when installed,
  SIGTERM handled like Ctrl-C).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smokegate.core.errors import UsageError
from smokegate.core.loop import run_async
from smokegate.core.secrets import Redactor, Secret
from smokegate.core.selection import Selection
from smokegate.engine.select import select
from smokegate.suite.interpolate import Scope, SecretKey
from smokegate.suite.loader import (
    CompileOptions,
    PlannedCheck,
    RawSuite,
    Suite,
    compile_suites,
    parse_suites,
)
from smokegate.suite.secretscan import suite_secret_keys

__all__ = [
    "RunPlan",
    "RunSettings",
    "execute_plan",
    "exit_code",
    "fetch_suite_secrets",
    "kube_factory_for",
    "parse_resolve_flags",
    "parse_suites",
    "parse_vars",
    "plan_run",
    "plan_run_with_cluster",
    "plan_suites",
    "plan_suites_with_cluster",
    "release_placeholders",
    "run_async",
    "run_plan",
    "suite_secret_keys",
    "validate_suites",
]


@dataclass(slots=True)
class RunPlan:
    suites: list[Suite]
    checks: list[PlannedCheck]
    pulled_in: set[str] = field(default_factory=set)
    redactor: Redactor = field(default_factory=Redactor)


def parse_vars(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--var {item!r}: use KEY=VALUE")
        out[key.strip()] = value
    return out


@dataclass(slots=True)
class RunSettings:
    """How to run a plan: checks in flight, stop at the first failure, ``--resolve`` overrides."""

    concurrency: int = 32
    fail_fast: bool = False
    resolve: Mapping[tuple[str, int], str] | None = None
    """(host, port) -> address to connect to instead (``parse_resolve_flags``)."""


async def execute_plan(
    plan: RunPlan,
    settings: RunSettings | None = None,
    *,
    observer: Any = None,
    context: dict[str, Any] | None = None,
    kube_factory: Any = None,
    namespace: str | None = None,
    extra_results: Sequence[Any] | None = None,
) -> Any:
    """Run ``plan``'s checks; returns the ``engine.results.RunResult``. ``kube_factory``: makes
    the client of ``kube``/``helmTest`` checks; ``namespace``: their default namespace;
    ``extra_results`` (e.g. Flux's Helm test results) go first in the run's results;
    ``context``: facts recorded in the report (the release, the trigger)."""
    from smokegate.checks.base import CheckContext
    from smokegate.engine.runner import RunOptions, execute

    settings = settings or RunSettings()
    ctx = CheckContext(
        redactor=plan.redactor,
        resolve=dict(settings.resolve) if settings.resolve is not None else None,
        kube_factory=kube_factory,
        namespace=namespace,
        max_connections_per_origin=max(settings.concurrency, 1),
    )
    run = await execute(
        plan.suites,
        plan.checks,
        ctx,
        RunOptions(concurrency=settings.concurrency, fail_fast=settings.fail_fast),
        observer,
        context=context,
    )
    if extra_results:
        run.results = [*extra_results, *run.results]
    return run


def run_plan(plan: RunPlan, settings: RunSettings | None = None, **kw: Any) -> Any:
    """``execute_plan`` on its own event loop (``run_async``), for synchronous callers."""
    return run_async(execute_plan(plan, settings, **kw))


def exit_code(run: Any, report_errors: Sequence[str] = ()) -> int:
    """130 interrupted, 0 every check passed, else 1; a passing run whose promised report is
    missing is 4: it must not look green to CI."""
    if run.interrupted:
        return 130
    code = 0 if run.ok else 1
    return 4 if report_errors and code == 0 else code


def parse_resolve_flags(items: Sequence[str]) -> dict[tuple[str, int], str]:
    from smokegate.checks.http import parse_resolve

    out = {}
    for item in items:
        try:
            host, port, addr = parse_resolve(item)
        except ValueError as exc:
            raise UsageError(f"--resolve: {exc}") from None
        out[(host, port)] = addr
    return out


RELEASE_FACTS = (
    "name", "namespace", "revision", "appVersion", "digest", "chart", "version",
    "helmRelease", "helmReleaseNamespace",
)  # fmt: skip


def release_placeholders() -> dict[str, str]:
    """``${release.*}`` stand-ins for validating a suite before the release is known (lint, the
    gate before its wait); a misspelt fact (``${release.appversion}``) is still an error."""
    return {f"release.{key}": f"<release.{key}>" for key in RELEASE_FACTS}


def plan_run(
    paths: Sequence[str],
    *,
    cli_vars: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    selection: Selection | None = None,
    release_vars: Mapping[str, Any] | None = None,
    secrets: Mapping[SecretKey, str | Secret] | None = None,
    default_namespace: str | None = None,
    lint: bool = False,
    stdin_text: str | None = None,
) -> RunPlan:
    """Parse the suite files at ``paths`` (each once) and plan them (``plan_suites``). Raises
    SuiteError/UsageError (exit 2)."""
    return plan_suites(
        parse_suites(paths, stdin_text=stdin_text),
        cli_vars=cli_vars,
        env=env,
        selection=selection,
        release_vars=release_vars,
        secrets=secrets,
        default_namespace=default_namespace,
        lint=lint,
    )


def plan_suites(
    raws: Sequence[RawSuite],
    *,
    cli_vars: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    selection: Selection | None = None,
    release_vars: Mapping[str, Any] | None = None,
    secrets: Mapping[SecretKey, str | Secret] | None = None,
    default_namespace: str | None = None,
    lint: bool = False,
) -> RunPlan:
    """Validate, interpolate and select parsed suites (``parse_suites``; discovered ones merged
    in with ``discover.request.merge_discovered``). Raises SuiteError/UsageError (exit 2)."""
    import os

    redactor = Redactor()
    for value in (secrets or {}).values():
        redactor.add(value)
    real_env: Mapping[str, str] = dict(os.environ) if env is None else env
    if lint and release_vars is None:
        release_vars = release_placeholders()
    scope = Scope(
        env=real_env,
        secrets=secrets or {},
        default_namespace=default_namespace,
        redactor=redactor,
        # lint never talks to a cluster: Secret references get a placeholder value.
        missing_secret=(lambda key: "<secret>") if lint else None,
    )
    options = CompileOptions(
        cli_vars=cli_vars or {}, env=scope.env, release_vars=release_vars or {}, scope=scope
    )
    # lint: also what only the pre-fetch scan can tell (a Secret named after a var that reads a
    # Secret); with Secrets given, the scan ran before they were fetched.
    suites = (
        compile_with_secret_scan(list(raws), options)
        if lint
        else compile_suites(list(raws), options)
    )
    every = [c for s in suites for c in s.checks]
    chosen = select(every, selection or Selection())
    return RunPlan(suites, chosen.checks, chosen.pulled_in, redactor)


def validate_suites(raws: Sequence[RawSuite], *, cli_vars: Mapping[str, str]) -> None:
    """Every check of ``raws`` validated now, with placeholder release facts and Secret values:
    for a run that waits for its release first (``gate``), so that a typo fails in a second
    (exit 2), not after the wait."""
    import os

    scope = Scope(env=dict(os.environ), missing_secret=lambda key: "<secret>")
    compile_with_secret_scan(
        list(raws),
        CompileOptions(
            cli_vars=cli_vars, env=scope.env, release_vars=release_placeholders(), scope=scope
        ),
    )


def compile_with_secret_scan(raws: list[Any], options: CompileOptions) -> list[Suite]:
    """``compile_suites``, plus the problems of the Secret pre-fetch scan (``suite_secret_keys``)
    that compiling cannot see, all reported together. For runs that read no Secret (lint, the
    gate's check before waiting)."""
    from smokegate.core.errors import SuiteError

    scan_problems: list[Any] = []
    try:
        suite_secret_keys(
            raws,
            options.scope.default_namespace if options.scope else None,
            "",
            cli_vars=options.cli_vars,
            release_vars=options.release_vars,
            env=options.env,
        )
    except SuiteError as exc:
        scan_problems = exc.problems
    try:
        suites = compile_suites(raws, options)
    except SuiteError as exc:
        if not scan_problems:
            raise
        seen = {str(p) for p in exc.problems}
        extra = [p for p in scan_problems if str(p) not in seen]
        raise SuiteError([*exc.problems, *extra]) from None
    if scan_problems:
        raise SuiteError(scan_problems)
    return suites


def kube_factory_for(plan: RunPlan, kube: Any) -> Any:
    """The ``kube_factory`` for running ``plan`` (``kube``: ``KubeOptions``). When a check that
    will run needs the cluster, the kubeconfig is read now: a missing/invalid kubeconfig or an
    unknown ``--context`` is a usage error (exit 2) before anything runs, not a failure of every
    such check. Otherwise the configuration is never read."""
    from smokegate.checks import KINDS
    from smokegate.kube.client import KubeClient, effective_namespace, load_config

    if not any(KINDS[c.kind].needs_cluster and not c.skip for c in plan.checks):
        return _lazy_client(kube)
    config = load_config(kube)  # UsageError naming the kubeconfig/context
    namespace = effective_namespace(config, kube)
    return lambda: KubeClient(config, namespace)


def _lazy_client(options: Any) -> Any:
    """For ``CheckContext(kube_factory=...)``: connects on first use only, so a run without
    ``kube`` checks never reads a kubeconfig; a configuration problem fails the check that
    needed the cluster (kind ``config``) instead of the whole run."""

    def make() -> Any:
        from smokegate.core.outcome import CheckFailed, ErrorKind
        from smokegate.kube.client import KubeClient

        try:
            return KubeClient.from_options(options)
        except UsageError as exc:
            raise CheckFailed(str(exc), kind=ErrorKind.CONFIG) from None

    return make


# --- Secrets referenced by suites ------------------------------------------------------------
# Interpolation is synchronous and runs once per suite, so every Secret a suite references is
# fetched first, in one batch, and handed to ``plan_run(secrets=...)``. Only suites that
# reference a Secret ever cause a Kubernetes client to be created.


def read_stdin_once(paths: Sequence[str], stdin_text: str | None = None) -> str | None:
    """The text of ``-`` (stdin) among ``paths``, read now, for a caller that parses later
    (the gate reads it before it waits); None when ``-`` is not there."""
    import sys

    if stdin_text is None and "-" in paths:
        return sys.stdin.read()
    return stdin_text


async def fetch_suite_secrets(
    client: Any,
    raws: Sequence[Any],
    default_namespace: str | None,
    *,
    cli_vars: Mapping[str, str] | None = None,
    release_vars: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[SecretKey, Secret]:
    """Fetch what ``raws`` reference (``cli_vars``, ``release_vars`` and ``env``: as given to
    ``plan_run``, for variables in the references). Missing Secrets/keys raise ``SuiteError``
    (exit 2, every problem listed); API failures raise ``ClusterError`` naming the Secret and
    the reason."""
    from smokegate.core.errors import ClusterError, Problem, SuiteError
    from smokegate.kube.client import KubeError
    from smokegate.kube.secrets import fetch_secrets

    wanted = suite_secret_keys(
        raws,
        default_namespace,
        client.namespace,
        cli_vars=cli_vars,
        release_vars=release_vars,
        env=env,
    )
    if not wanted:
        return {}
    try:
        values, problems = await fetch_secrets(client, {fetch for fetch, _ in wanted.values()})
    except KubeError as exc:
        raise ClusterError(str(exc)) from None
    if problems:
        files = {fetch: file for fetch, file in wanted.values()}
        raise SuiteError([Problem(files[p.key], None, None, str(p)) for p in problems])
    return {lookup: values[fetch] for lookup, (fetch, _) in wanted.items()}


def plan_run_with_cluster(
    paths: Sequence[str],
    *,
    kube_options: Any,
    cli_vars: Mapping[str, str] | None = None,
    selection: Selection | None = None,
    release_vars: Mapping[str, Any] | None = None,
    default_namespace: str | None = None,
    stdin_text: str | None = None,
) -> RunPlan:
    """``plan_run`` for suites that may reference Secrets: parse (once), fetch the Secrets
    (connecting to the cluster only if some suite references one), then plan.
    ``kube_options`` is a ``KubeOptions``."""
    return plan_suites_with_cluster(
        parse_suites(paths, stdin_text=stdin_text),
        kube_options=kube_options,
        cli_vars=cli_vars,
        selection=selection,
        release_vars=release_vars,
        default_namespace=default_namespace,
    )


def plan_suites_with_cluster(
    raws: Sequence[RawSuite],
    *,
    kube_options: Any,
    cli_vars: Mapping[str, str] | None = None,
    selection: Selection | None = None,
    release_vars: Mapping[str, Any] | None = None,
    default_namespace: str | None = None,
) -> RunPlan:
    """``plan_suites`` for parsed suites that may reference Secrets (see
    ``plan_run_with_cluster``)."""
    secrets: dict[SecretKey, Secret] = {}
    refs = {"cli_vars": cli_vars, "release_vars": release_vars}
    if any(suite_secret_keys(raws, default_namespace, "", **refs)):
        from smokegate.kube.client import KubeClient

        client = KubeClient.from_options(kube_options)

        async def fetch() -> dict[SecretKey, Secret]:
            try:
                return await fetch_suite_secrets(client, raws, default_namespace, **refs)
            finally:
                await client.close()

        secrets = run_async(fetch())
    return plan_suites(
        raws,
        cli_vars=cli_vars,
        selection=selection,
        release_vars=release_vars,
        secrets=secrets,
        default_namespace=default_namespace,
    )
