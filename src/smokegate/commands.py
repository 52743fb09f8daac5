"""One function per CLI command. Each turns parsed flags into library calls and an exit code."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from smokegate.engine.select import Selection


def _selection(args: argparse.Namespace) -> Selection:
    return Selection(tuple(args.select), tuple(args.tag), tuple(args.exclude_tag))


def _print_list(plan: Any) -> int:
    for c in plan.checks:
        tags = f"  [{', '.join(c.tags)}]" if c.tags else ""
        note = "  (pulled in by needs)" if c.id in plan.pulled_in else ""
        skip = f"  (skip: {c.skip})" if c.skip else ""
        print(f"{c.id}  {c.kind}{tags}{note}{skip}")
    print(f"{len(plan.checks)} checks selected", file=sys.stderr)
    return 0


def execute_and_report(
    plan: Any,
    args: argparse.Namespace,
    *,
    context: dict[str, Any] | None = None,
    kube_factory: Any = None,
    extra_results: list[Any] | None = None,
    namespace: str | None = None,
) -> tuple[int, Any]:
    """Run a plan with the console reporter, write the requested reports, return the exit code
    and the run. Shared by ``run``, ``demo`` and ``gate``. ``namespace``: the default for
    ``kube`` checks (``-n``, or the release's under ``gate``)."""
    from rich.markup import escape

    from smokegate.checks.base import CheckContext
    from smokegate.engine.runner import RunOptions, execute
    from smokegate.report import ReportTarget, check_targets, parse_report_flag, write_reports
    from smokegate.report.console import ConsoleReporter, make_console
    from smokegate.session import parse_resolve_flags, run_async

    targets = [parse_report_flag(r) for r in args.report]
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        targets.append(ReportTarget("markdown", summary, append=True))
    check_targets(targets)
    if args.concurrency < 1:
        from smokegate.errors import UsageError

        raise UsageError("--concurrency must be at least 1")
    console = make_console(no_color=args.no_color)
    reporter = ConsoleReporter(console, plan.redactor, verbose=args.verbose, quiet=args.quiet)
    ctx = CheckContext(
        redactor=plan.redactor,
        resolve=parse_resolve_flags(args.resolve),
        kube_factory=kube_factory,
        namespace=namespace,
        max_connections_per_origin=max(args.concurrency, 1),
    )
    run = run_async(
        execute(
            plan.suites,
            plan.checks,
            ctx,
            RunOptions(concurrency=args.concurrency, fail_fast=args.fail_fast),
            reporter,
            context=context,
        )
    )
    if extra_results:
        run.results = [*extra_results, *run.results]
    reporter.finish(run)
    errors = write_reports(run, targets, plan.redactor)
    for err in errors:
        print(f"smokegate: {err}", file=sys.stderr)
    for t in targets:
        if t.path != summary and not any(t.path in err for err in errors):
            console.print(f"[dim]{escape(t.format)} report: {escape(t.path)}[/dim]")
    if run.interrupted:
        return 130, run
    code = 0 if run.ok else 1
    # A passing run whose promised report is missing must not look green to CI.
    return (4 if errors and code == 0 else code), run


def _kube_options(args: argparse.Namespace) -> Any:
    from smokegate.kube.client import KubeOptions

    return KubeOptions(args.kubeconfig, args.context, args.namespace)


def cmd_run(args: argparse.Namespace) -> int:
    from smokegate.discover_cli import suites_with_discovery
    from smokegate.session import parse_vars, plan_run, plan_run_with_cluster

    args.suites = suites_with_discovery(args)
    kube = _kube_options(args)
    if args.list:
        # Listing needs no cluster: Secret references get placeholders, as under `lint`.
        return _print_list(
            plan_run(
                args.suites, cli_vars=parse_vars(args.var), selection=_selection(args), lint=True
            )
        )
    # The cluster is contacted only if a suite references a Secret (now) or runs a `kube` or
    # `helmTest` check (its configuration read before the run, the connection at first use).
    plan = plan_run_with_cluster(
        args.suites,
        kube_options=kube,
        cli_vars=parse_vars(args.var),
        selection=_selection(args),
        default_namespace=args.namespace,
    )
    if not plan.checks:
        print("smokegate: no checks selected", file=sys.stderr)
        return 2 if not _selection(args).empty else 0
    code, _ = execute_and_report(
        plan, args, kube_factory=_kube_factory(plan, kube), namespace=args.namespace
    )
    return code


# Check kinds that talk to the Kubernetes API.
KUBE_KINDS = ("kube", "helmTest")


def _kube_factory(plan: Any, kube: Any) -> Any:
    """The run's ``kube_factory``. When a check that will run needs the cluster, the
    kubeconfig is read now: a missing/invalid kubeconfig or an unknown ``--context`` is a usage
    error (exit 2) before anything runs, not a failure of every such check. Otherwise the
    configuration is never read."""
    from smokegate.kube.client import KubeClient, client_factory, effective_namespace, load_config

    if not any(c.kind in KUBE_KINDS and not c.skip for c in plan.checks):
        return client_factory(kube)
    config = load_config(kube)  # UsageError naming the kubeconfig/context
    namespace = effective_namespace(config, kube)
    return lambda: KubeClient(config, namespace)


def cmd_gate(args: argparse.Namespace) -> int:
    from smokegate.durations import format_duration
    from smokegate.errors import UsageError
    from smokegate.gate import GateRequest, run_gate
    from smokegate.session import parse_vars

    if args.notify_flux and not args.notify_flux.startswith(("http://", "https://")):
        raise UsageError(f"--notify-flux {args.notify_flux!r}: must be an http:// or https:// URL")
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    from smokegate.discover_cli import gate_discover_request

    discover = gate_discover_request(args)
    if not args.suites and discover is None:
        raise UsageError("give suite files or directories, or --discover")
    request = GateRequest(
        target=args.target,
        suites=args.suites,
        discover=discover,
        helm_tests=args.helm_tests,
        kube=_kube_options(args),
        revision=args.revision,
        timeout=args.timeout,
        ignore_helm_tests=args.ignore_helm_tests,
        notify_url=args.notify_flux,
        record_event=not args.no_event,
        cli_vars=parse_vars(args.var),
        selection=_selection(args),
    )

    def progress(message: str) -> None:
        print(f"smokegate: {message}", file=sys.stderr, flush=True)

    def execute(plan: Any, **kw: Any) -> tuple[int, Any]:
        if kw.get("extra_results"):
            _print_helm_tests(kw["extra_results"], args)
        if not plan.checks and not kw.get("extra_results"):
            print("smokegate: no checks selected", file=sys.stderr)
            return (2 if not _selection(args).empty else 0), None
        return execute_and_report(plan, args, **kw)

    progress(
        f"gate {args.target}"
        + (f" at revision {args.revision}" if args.revision else "")
        + f" (timeout {format_duration(args.timeout)})"
    )
    result = run_gate(request, execute=execute, progress=progress)
    for note in result.notes:
        progress(note)
    return result.code


def _print_helm_tests(results: list[Any], args: argparse.Namespace) -> None:
    from rich.markup import escape

    from smokegate.engine.results import Status
    from smokegate.report.console import make_console

    console = make_console(no_color=args.no_color)
    icon = {Status.PASSED: "✓", Status.FAILED: "✗", Status.SKIPPED: "-", Status.ERROR: "!"}
    console.print("[bold]Helm tests[/bold]")
    for r in results:
        console.print(f"{icon[r.status]} {escape(r.id)} [dim]helm-test[/dim] — {escape(r.message)}")


def cmd_lint(args: argparse.Namespace) -> int:
    from smokegate.session import parse_vars, plan_run

    plan = plan_run(args.suites, cli_vars=parse_vars(args.var), lint=True)
    n = len(plan.checks)
    print(
        f"ok: {len(plan.suites)} suite{'s' if len(plan.suites) != 1 else ''}, "
        f"{n} check{'s' if n != 1 else ''}"
    )
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from smokegate.suite.model import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from smokegate.demo import run_demo

    return run_demo(args)


def cmd_discover(args: argparse.Namespace) -> int:
    from smokegate.discover_cli import cmd_discover as discover

    return discover(args)


def cmd_helm_test(args: argparse.Namespace) -> int:
    from smokegate.helmtest.cli import cmd_helm_test as helm_test

    return helm_test(args)


def cmd_serve(args: argparse.Namespace) -> int:
    from smokegate.serve_cli import cmd_serve as serve

    return serve(args)


def cmd_trigger(args: argparse.Namespace) -> int:
    from smokegate.serve_cli import cmd_trigger as trigger

    return trigger(args)


def cmd_validate(args: argparse.Namespace) -> int:
    from smokegate.cli_premerge import cmd_validate as validate

    return validate(args)


def cmd_diff(args: argparse.Namespace) -> int:
    from smokegate.cli_premerge import cmd_diff as diff

    return diff(args)
