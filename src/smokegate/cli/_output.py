"""What the commands print, shared: the ``--list`` table, the report flags' targets, and
``run_and_report`` (a plan run with the live console, then the reports) for ``run``, ``gate``
and ``demo``. The run itself is ``smokegate.api.run_plan``; this module only renders."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def err(message: str) -> None:
    """One ``smokegate: …`` line on stderr (stdout may be a suite or a report)."""
    print(f"smokegate: {message}", file=sys.stderr, flush=True)


def print_list(plan: Any) -> int:
    for c in plan.checks:
        tags = f"  [{', '.join(c.tags)}]" if c.tags else ""
        note = "  (pulled in by needs)" if c.id in plan.pulled_in else ""
        skip = f"  (skip: {c.skip})" if c.skip else ""
        print(f"{c.id}  {c.kind}{tags}{note}{skip}")
    print(f"{len(plan.checks)} checks selected", file=sys.stderr)
    return 0


def report_targets(args: argparse.Namespace) -> tuple[list[Any], str | None]:
    """``--report`` targets, plus Markdown appended to ``$GITHUB_STEP_SUMMARY`` when set (that
    path returned too: it is not announced on the console)."""
    from smokegate.report import ReportTarget, parse_report_flag

    targets = [parse_report_flag(r) for r in args.report]
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        targets.append(ReportTarget("markdown", summary, append=True))
    return targets, summary


def run_and_report(
    plan: Any,
    args: argparse.Namespace,
    *,
    context: dict[str, Any] | None = None,
    kube_factory: Any = None,
    extra_results: list[Any] | None = None,
    namespace: str | None = None,
) -> tuple[int, Any]:
    """Run a plan with the console reporter, write the requested reports, return the exit code
    and the run. ``namespace``: the default for ``kube`` checks (``-n``, or the release's under
    ``gate``)."""
    from rich.markup import escape

    from smokegate.api import exit_code, run_plan
    from smokegate.cli._args import run_settings
    from smokegate.report import check_targets, write_reports
    from smokegate.report.console import ConsoleReporter, make_console

    targets, summary = report_targets(args)
    check_targets(targets)  # unwritable report paths are usage errors before anything runs
    settings = run_settings(args)
    console = make_console(no_color=args.no_color)
    reporter = ConsoleReporter(console, plan.redactor, verbose=args.verbose, quiet=args.quiet)
    run = run_plan(
        plan,
        settings,
        observer=reporter,
        context=context,
        kube_factory=kube_factory,
        namespace=namespace,
        extra_results=extra_results,
    )
    reporter.finish(run)
    errors = write_reports(run, targets, plan.redactor)
    for error in errors:
        print(f"smokegate: {error}", file=sys.stderr)
    for t in targets:
        if t.path != summary and not any(t.path in error for error in errors):
            console.print(f"[dim]{escape(t.format)} report: {escape(t.path)}[/dim]")
    return exit_code(run, errors), run


def print_helm_tests(results: list[Any], args: argparse.Namespace) -> None:
    """Flux's Helm test results, before the suite's live output (``gate``)."""
    from rich.markup import escape

    from smokegate.core.results import Status
    from smokegate.report.console import make_console

    console = make_console(no_color=args.no_color)
    icon = {Status.PASSED: "✓", Status.FAILED: "✗", Status.SKIPPED: "-", Status.ERROR: "!"}
    console.print("[bold]Helm tests[/bold]")
    for r in results:
        console.print(f"{icon[r.status]} {escape(r.id)} [dim]helm-test[/dim] — {escape(r.message)}")


def problems_text(exc: BaseException) -> str:
    problems = getattr(exc, "problems", [])
    head = f"smokegate: {len(problems)} problem{'s' if len(problems) != 1 else ''}:"
    return "\n".join([head, *(f"  {p}" for p in problems)])
