"""Terminal output: live progress for runs longer than a moment, one line per check for small
runs (or with -v), every failure with its evidence, and a summary table.

Respects NO_COLOR and non-TTY output (plain text, no progress bar). The observer methods are on
the engine's hot path, so they only count and append; rendering happens on rich's own refresh
timer or at the end.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from smokegate.core.cases import summary as cases_summary
from smokegate.core.durations import format_duration
from smokegate.core.results import Attempt, CheckResult, RunResult, Status
from smokegate.core.secrets import Redactor
from smokegate.suite.loader import PlannedCheck

# Above this many checks, passing checks are not listed one by one (unless --verbose).
LIST_LIMIT = 100
# Progress appears only when a run lasts longer than this.
PROGRESS_AFTER = 0.5
CASES_SHOWN = 30  # failing cases listed under a failed check (all cases with -v)
CASE_LINES = 6  # last lines of each failing case's failure body

_ICON = {Status.PASSED: "✓", Status.FAILED: "✗", Status.ERROR: "!", Status.SKIPPED: "-"}
_STYLE = {
    Status.PASSED: "green",
    Status.FAILED: "red",
    Status.ERROR: "magenta",
    Status.SKIPPED: "yellow",
}


def make_console(file: IO[str] | None = None, no_color: bool = False) -> Any:
    from rich.console import Console

    return Console(
        file=file or sys.stdout,
        no_color=no_color or "NO_COLOR" in os.environ,
        highlight=False,
        soft_wrap=False,
    )


class ConsoleReporter:
    def __init__(
        self, console: Any, redactor: Redactor, *, verbose: bool = False, quiet: bool = False
    ) -> None:
        self.console = console
        self.redactor = redactor
        self.verbose = verbose
        self.quiet = quiet
        self.total = 0
        self.done = 0
        self.failed = 0
        self.started = time.perf_counter()
        self._progress: Any = None
        self._task: Any = None
        self._list_each = False

    # --- engine observer -------------------------------------------------------------------
    def on_start(self, checks: Sequence[PlannedCheck]) -> None:
        self.total = len(checks)
        self.started = time.perf_counter()
        self._list_each = not self.quiet and (self.verbose or self.total <= LIST_LIMIT)
        if self.console.is_terminal and not self.console.is_dumb_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]running"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failed]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
                auto_refresh=True,
                refresh_per_second=8,
            )
            self._task = self._progress.add_task(
                "checks", total=self.total, failed="", visible=False
            )
            self._progress.start()

    def on_retry(self, check: PlannedCheck, attempt: Attempt) -> None:
        if self.verbose:
            self._print(
                f"  [dim]↻ {check.id}: attempt {attempt.number} failed: "
                f"{self._esc(attempt.message)}[/dim]"
            )

    def on_result(self, result: CheckResult) -> None:
        self.done += 1
        if result.status in (Status.FAILED, Status.ERROR):
            self.failed += 1
        if self._list_each or result.status in (Status.FAILED, Status.ERROR):
            self._print(self._line(result))
        if self._progress is not None:
            visible = time.perf_counter() - self.started > PROGRESS_AFTER
            self._progress.update(
                self._task,
                completed=self.done,
                visible=visible,
                failed=f"[red]{self.failed} failed[/red]" if self.failed else "",
            )

    # --- rendering ---------------------------------------------------------------------------
    def _print(self, markup: str) -> None:
        # Values are redacted (and escaped) one by one in `_esc`, never the assembled markup:
        # a secret that happens to be a style name ("dim", "red") would otherwise be masked
        # inside the tags and break them.
        self.console.print(markup)

    def _esc(self, text: str) -> str:
        from rich.markup import escape

        return escape(self.redactor.redact(text))

    def _line(self, r: CheckResult) -> str:
        style = _STYLE[r.status]
        extra = ""
        if r.recovered:
            extra = f" [yellow](recovered after {len(r.attempts)} attempts)[/yellow]"
        elif len(r.attempts) > 1:
            extra = f" [dim]({len(r.attempts)} attempts)[/dim]"
        msg = ""
        if r.status is not Status.PASSED and r.message:
            msg = f" [dim]—[/dim] {self._esc(r.message)}"
        elif r.cases:
            msg = f" [dim]— {self._esc(cases_summary(r.cases))}[/dim]"
        return (
            f"[{style}]{_ICON[r.status]}[/{style}] {self._esc(r.id)} "
            f"[dim]{r.kind} {format_duration(r.duration)}[/dim]{extra}{msg}"
        )

    def finish(self, run: RunResult) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        failures = [r for r in run.results if r.status in (Status.FAILED, Status.ERROR)]
        if failures:
            self.console.print()
            self.console.rule("[bold red]failures", style="red")
            for r in failures:
                self._failure_detail(r)
        self._summary(run)

    def _failure_detail(self, r: CheckResult) -> None:
        escape = self._esc
        kind = f" [{r.error_kind}]" if r.error_kind else ""
        self._print(
            f"[bold red]{_ICON[r.status]} {escape(r.id)}[/bold red]"
            f"[dim]{escape(kind)} at {escape(r.source)}[/dim]"
        )
        for m in r.evidence:
            if r.cases and m.subject.startswith("case "):
                continue  # the failing cases are listed below, with their messages
            self._print(
                f"    {escape(m.subject)}: expected [green]{escape(m.expected)}[/green]"
                f", got [red]{escape(m.actual)}[/red]"
            )
        if r.cases:
            self._cases(r)
        elif not r.evidence and r.message:
            self._print(f"    {escape(r.message)}")
        if len(r.attempts) > 1:
            last = r.attempts[-1]
            self._print(
                f"    [dim]{len(r.attempts)} attempts over "
                f"{format_duration(r.duration)}; last: {escape(last.message)}[/dim]"
            )
        if r.snippet:
            snippet = r.snippet if len(r.snippet) <= 300 else r.snippet[:300] + "…"
            self._print(f"    [dim]response: {escape(snippet)}[/dim]")
        if r.log and not any(c.failed for c in r.cases):
            # (A failing case's own body says more than the tail of the tool's whole output.)
            tail = "\n".join(r.log.rstrip().splitlines()[-20:])
            self._print("    [dim]log (last lines):[/dim]")
            for line in tail.splitlines():
                self._print(f"      [dim]{escape(line)}[/dim]")

    def _cases(self, r: CheckResult) -> None:
        """A suite-running check's failing cases, each with its message and the last lines of
        its failure body (all cases with -v)."""
        escape = self._esc
        self._print(f"    [dim]{escape(cases_summary(r.cases))}[/dim]")
        shown = r.cases if self.verbose else [c for c in r.cases if c.failed]
        for c in shown[:CASES_SHOWN]:
            style = _STYLE[Status(c.status)]
            icon = _ICON[Status(c.status)]
            message = f" — {escape(c.headline)}" if c.headline else ""
            self._print(
                f"    [{style}]{icon}[/{style}] {escape(c.full_name)} "
                f"[dim]{format_duration(c.time)}[/dim]{message}"
            )
            if c.failed and c.text:
                for line in c.text.rstrip().splitlines()[-CASE_LINES:]:
                    self._print(f"        [dim]{escape(line)}[/dim]")
        if len(shown) > CASES_SHOWN:
            self._print(f"    [dim]… {len(shown) - CASES_SHOWN} more[/dim]")

    def _summary(self, run: RunResult) -> None:
        from rich.table import Table

        counts = run.counts()
        groups = run.by_suite()
        if len(groups) > 1 or self.verbose:
            table = Table(show_edge=False, box=None, pad_edge=False)
            for col in ("suite", "passed", "failed", "error", "skipped", "time"):
                table.add_column(col, justify="left" if col == "suite" else "right")
            for name, results in groups.items():
                c = {s: sum(1 for r in results if r.status is s) for s in Status}
                dur = max((r.duration for r in results), default=0.0)
                table.add_row(
                    name,
                    str(c[Status.PASSED]),
                    str(c[Status.FAILED]),
                    str(c[Status.ERROR]),
                    str(c[Status.SKIPPED]),
                    format_duration(dur),
                )
            self.console.print()
            self.console.print(table)
        parts = [f"[green]{counts['passed']} passed[/green]"]
        if counts["failed"]:
            parts.append(f"[red]{counts['failed']} failed[/red]")
        if counts["error"]:
            parts.append(f"[magenta]{counts['error']} errors[/magenta]")
        if counts["skipped"]:
            parts.append(f"[yellow]{counts['skipped']} skipped[/yellow]")
        if counts["recovered"]:
            parts.append(f"[yellow]{counts['recovered']} recovered after retries[/yellow]")
        verdict = "[bold green]PASSED[/bold green]" if run.ok else "[bold red]FAILED[/bold red]"
        if run.interrupted:
            verdict = "[bold yellow]INTERRUPTED[/bold yellow]"
        self.console.print()
        self.console.print(
            f"{verdict} {', '.join(parts)} in {format_duration(run.duration)} "
            f"[dim](run {run.run_id})[/dim]"
        )
