"""Reporters read results only. File reporters are one module each with
``render(run: RunResult) -> str``; ``write_reports`` redacts and writes them.

Writing is best-effort per report: one unwritable path does not lose the others.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import importlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smokegate.core.errors import UsageError
from smokegate.core.results import RunResult
from smokegate.core.secrets import Redactor

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


def check_targets(targets: list[ReportTarget]) -> None:
    """Refuse report paths that cannot be written *before* the run, not after it."""
    for t in targets:
        p = Path(t.path)
        if p.is_dir():
            raise UsageError(f"--report {t.format}={t.path}: is a directory; give a file path")
        parent = p.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise UsageError(f"--report {t.format}={t.path}: {parent} is not a directory")
        if not os.access(parent, os.W_OK):
            raise UsageError(f"--report {t.format}={t.path}: {parent} is not writable")


def render(fmt: str, run: RunResult) -> str:
    return importlib.import_module(FORMATS[fmt]).render(run)


def redacted(run: RunResult, redactor: Redactor) -> RunResult:
    """A copy of ``run`` with every secret scrubbed from every string, *before* rendering:
    escaping (HTML ``&lt;``, JSON ``\\"``) would otherwise change a secret so that scrubbing
    the rendered text no longer finds it."""
    if not redactor:
        return run
    return _scrub(run, redactor)


def _scrub(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, enum.Enum):
        return value
    if isinstance(value, str):
        return redactor.redact(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: _scrub(getattr(value, f.name), redactor) for f in dataclasses.fields(value)
        }
        return dataclasses.replace(value, **changes)
    if isinstance(value, dict):
        return {_scrub(k, redactor): _scrub(v, redactor) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v, redactor) for v in value)
    return value


def write_reports(run: RunResult, targets: list[ReportTarget], redactor: Redactor) -> list[str]:
    """Write each report; returns error messages for the ones that could not be written."""
    errors = []
    clean = redacted(run, redactor)
    for t in targets:
        try:
            # `clean` carries no secret; redacting the rendered text again could corrupt it
            # (a secret equal to a tag name) without protecting anything more.
            text = render(t.format, clean)
            p = Path(t.path)
            if p.parent and not p.parent.exists():
                p.parent.mkdir(parents=True, exist_ok=True)
            if t.append:
                with p.open("a", encoding="utf-8") as fh:
                    fh.write(text)
            else:
                _write_whole(p, text)
        except OSError as exc:
            errors.append(f"cannot write {t.format} report to {t.path}: {exc}")
        except Exception as exc:  # a reporter bug must not cost the other reports
            errors.append(f"cannot render {t.format} report: {type(exc).__name__}: {exc}")
    return errors


def _write_whole(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a report cut short by a full disk is removed, since
    CI would read a truncated JUnit file as a broken (or a shorter, passing) report."""
    try:
        with path.open("w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError:
        with contextlib.suppress(OSError):
            # Only a regular file: never a device or a symlink (``junit=/dev/stdout``).
            if stat.S_ISREG(os.lstat(path).st_mode):
                path.unlink()
        raise
