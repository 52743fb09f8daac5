"""Reporters read results only. File reporters are one module each with
``render(run: RunResult) -> str``; ``write_reports`` redacts and writes them.

Writing is best-effort per report: one unwritable path does not lose the others.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from smokegate.engine.results import RunResult
from smokegate.errors import UsageError
from smokegate.secrets import Redactor

FORMATS = {
    "junit": "smokegate.report.junit",
    "json": "smokegate.report.jsonreport",
    "markdown": "smokegate.report.markdown",
    "html": "smokegate.report.html",
}


@dataclass(frozen=True, slots=True)
class ReportTarget:
    format: str
    path: str
    append: bool = False


def parse_report_flag(value: str) -> ReportTarget:
    """``junit=out/junit.xml`` → ReportTarget; clear error for anything else."""
    fmt, sep, path = value.partition("=")
    fmt = fmt.strip().lower()
    if fmt == "md":
        fmt = "markdown"
    if not sep or not path or fmt not in FORMATS:
        raise UsageError(
            f"--report {value!r}: use FORMAT=PATH with FORMAT one of {', '.join(FORMATS)}"
        )
    return ReportTarget(fmt, path)


def render(fmt: str, run: RunResult) -> str:
    return importlib.import_module(FORMATS[fmt]).render(run)


def write_reports(run: RunResult, targets: list[ReportTarget], redactor: Redactor) -> list[str]:
    """Write each report; returns error messages for the ones that could not be written."""
    errors = []
    for t in targets:
        try:
            text = redactor.redact(render(t.format, run))
            p = Path(t.path)
            if p.parent and not p.parent.exists():
                p.parent.mkdir(parents=True, exist_ok=True)
            with p.open("a" if t.append else "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            errors.append(f"cannot write {t.format} report to {t.path}: {exc}")
    return errors
