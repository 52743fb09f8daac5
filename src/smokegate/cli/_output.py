"""What the commands print, shared: the ``--list`` table, the report flags' targets, and
``ConsoleRun`` (a plan run with the live console, then the reports) for ``run`` and ``demo``
(``run_and_report``) and ``gate``. The run itself is the library's (``api.run_plan``, the
release flow's); this module only renders."""

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


class ConsoleRun:
    """A plan run with the live console, then the reports: for ``run``/``demo``
    (``run_and_report``) and ``gate`` (its flow runs the plan, this renders it)."""

    def __init__(self, args: argparse.Namespace) -> None:
        from smokegate.report import check_targets

        self.args = args
        self.targets, self.summary = report_targets(args)
        check_targets(self.targets)  # unwritable report paths are usage errors before any run
        self.reporter: Any = None
        self.console: Any = None
        self.summarized = False
        """The summary is already on the console (an in-cluster pod printed its own)."""

    def observer(self, plan: Any) -> Any:
        """The engine observer that shows the run live (``report.console.ConsoleReporter``)."""
        from smokegate.report import check_targets
        from smokegate.report.console import ConsoleReporter, make_console

        check_targets(self.targets)  # still writable, after a wait for the release
        self.console = make_console(no_color=self.args.no_color)
        self.reporter = ConsoleReporter(
            self.console, plan.redactor, verbose=self.args.verbose, quiet=self.args.quiet
        )
        return self.reporter

    def finish(self, run: Any, plan: Any) -> list[str]:
        """The summary, then the reports; returns the reports that could not be written."""
        from rich.markup import escape

        from smokegate.report import write_reports

        if not self.summarized:
            self.reporter.finish(run)
        errors = write_reports(run, self.targets, plan.redactor)
        for error in errors:
            print(f"smokegate: {error}", file=sys.stderr)
        for t in self.targets:
            if t.path != self.summary and not any(t.path in error for error in errors):
                self.console.print(f"[dim]{escape(t.format)} report: {escape(t.path)}[/dim]")
        return errors


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
    and the run. ``namespace``: the default for ``kube`` checks (``-n``)."""
    from smokegate.api import exit_code, run_plan
    from smokegate.cli._args import run_settings

    console_run = ConsoleRun(args)
    run = run_plan(
        plan,
        run_settings(args),
        observer=console_run.observer(plan),
        context=context,
        kube_factory=kube_factory,
        namespace=namespace,
        extra_results=extra_results,
    )
    errors = console_run.finish(run, plan)
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
