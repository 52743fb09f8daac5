#!/usr/bin/env python3
"""The logic of smokegate's GitHub Action (``action.yml`` runs this file).

It runs ``smokegate gate`` with the Action's inputs, then turns the run into what GitHub shows:

* ``::error file=…,line=…,title=…::message`` annotations for failed checks, pinned to the
  check's line in its suite file when that file is in the repository (``$GITHUB_WORKSPACE``);
  suite errors (exit 2) are annotated at their ``file:line:col``; a release that never became
  ready (exit 3) gets one annotation with Flux's last words;
* step outputs in ``$GITHUB_OUTPUT`` (exit code, counts, report paths);
* the job summary: smokegate itself appends its Markdown report to ``$GITHUB_STEP_SUMMARY``;
  when it wrote nothing there (it stopped before running checks) this script adds why.

The exit code is smokegate's. Standard library only, so it runs under any Python 3.11+ next to
the smokegate it calls (``$SMOKEGATE_BIN``, else ``smokegate`` on PATH).

Inputs come as ``INPUT_<NAME>`` environment variables (upper case, ``-`` as ``_``), mapped one
by one in action.yml, because a composite action does not export its inputs by itself.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Every input this script reads, with the default it assumes when the variable is unset (action.yml
# declares the same defaults; these matter when the script runs outside Actions, e.g. in tests).
# The install inputs (install, version, extras, python-version) are used by action.yml's own
# install steps, not here.
INPUTS: dict[str, str] = {
    "release": "",
    "namespace": "",
    "revision": "",
    "suite": "",
    "timeout": "10m",
    "kubeconfig": "",
    "context": "",
    "notify-flux": "",
    "args": "",
    "working-directory": "",
    "report-dir": "",
    "annotations": "true",
    "max-annotations": "10",
}

# Every output this script writes to $GITHUB_OUTPUT (action.yml maps each to an Action output).
OUTPUTS: tuple[str, ...] = (
    "exit-code",
    "ok",
    "passed",
    "failed",
    "errors",
    "skipped",
    "total",
    "run-id",
    "report-dir",
    "report-json",
    "report-junit",
    "report-html",
    "report-markdown",
)

EXIT_MEANING = {
    0: "all checks passed",
    1: "a check failed",
    2: "usage or suite error: nothing ran",
    3: "the release never became ready",
    4: "internal or Kubernetes API error",
    130: "interrupted",
}

# `smokegate` prints suite problems as `<file>:<line>:<col>: <message>` (one per line, possibly
# after "smokegate: " or indented under "smokegate: N problems:").
_PROBLEM = re.compile(
    r"^(?:smokegate: )?\s*(?P<file>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$"
)
_GLOB_CHARS = re.compile(r"[*?\[]")


class InputError(Exception):
    """An input the Action cannot use: reported as an annotation, exit 2 (like a usage error)."""


# --- workflow commands ------------------------------------------------------------------------
# GitHub's rules (actions/toolkit, packages/core/src/command.ts): in the message `%`, CR and LF
# are escaped; in property values also `:` and `,` (they separate properties).


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(command: str, message: str, **properties: str | int | None) -> str:
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in properties.items()
        if value is not None and value != ""
    )
    return f"::{command}{' ' + props if props else ''}::{escape_data(message)}"


# --- inputs ---------------------------------------------------------------------------------


def env_name(input_name: str) -> str:
    return "INPUT_" + input_name.upper().replace("-", "_")


def read_inputs(environ: Mapping[str, str]) -> dict[str, str]:
    return {name: environ.get(env_name(name), default).strip() for name, default in INPUTS.items()}


def _bool(name: str, value: str) -> bool:
    if value.lower() in ("true", "yes", "1", "on"):
        return True
    if value.lower() in ("false", "no", "0", "off", ""):
        return False
    raise InputError(f"input {name!r} must be true or false, not {value!r}")


def _split(name: str, value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError as e:  # an unbalanced quote
        raise InputError(f"input {name!r}: {e}: {value!r}") from None


@dataclass
class Plan:
    command: list[str]
    workdir: Path
    workspace: Path
    report_dir: Path
    reports: dict[str, Path]
    annotations: bool
    max_annotations: int


def plan_from(inputs: Mapping[str, str], environ: Mapping[str, str]) -> Plan:
    """Turn the inputs into the smokegate command line, or raise InputError saying what is wrong."""
    if not inputs["release"]:
        raise InputError("input 'release' is required (NAME, NAMESPACE/NAME or helmrelease/NAME)")
    workspace = Path(environ.get("GITHUB_WORKSPACE") or os.getcwd()).resolve()
    workdir = (workspace / inputs["working-directory"]).resolve()
    if not workdir.is_dir():
        raise InputError(f"working-directory {inputs['working-directory']!r} is not a directory")
    try:
        max_annotations = int(inputs["max-annotations"])
    except ValueError:
        max_annotations = -1
    if max_annotations < 0:
        raise InputError(
            f"input 'max-annotations' must be a number >= 0, not {inputs['max-annotations']!r}"
        )

    suites: list[str] = []
    for pattern in _split("suite", inputs["suite"]):
        if _GLOB_CHARS.search(pattern):
            matches = sorted(glob.glob(pattern, root_dir=workdir, recursive=True))
            if not matches:
                raise InputError(f"suite pattern {pattern!r} matched no file in {workdir}")
            suites += matches
        else:
            suites.append(pattern)

    smokegate = environ.get("SMOKEGATE_BIN") or shutil.which("smokegate")
    if not smokegate:
        raise InputError(
            "smokegate is not installed: leave input 'install' at true, or run the job in the "
            "smokegate image with install: false"
        )
    kubeconfig = inputs["kubeconfig"]
    if kubeconfig and not (workdir / kubeconfig).is_file():
        raise InputError(f"kubeconfig {kubeconfig!r} is not a file")

    report_dir = (
        (workdir / inputs["report-dir"]).resolve()
        if inputs["report-dir"]
        else Path(tempfile.mkdtemp(prefix="smokegate-", dir=environ.get("RUNNER_TEMP") or None))
    )
    report_dir.mkdir(parents=True, exist_ok=True)
    reports = {
        "json": report_dir / "report.json",
        "junit": report_dir / "junit.xml",
        "html": report_dir / "report.html",
        "markdown": report_dir / "report.md",
    }

    command = [smokegate, "gate", inputs["release"], *suites]
    for flag, name in (
        ("--namespace", "namespace"),
        ("--revision", "revision"),
        ("--timeout", "timeout"),
        ("--kubeconfig", "kubeconfig"),
        ("--context", "context"),
        ("--notify-flux", "notify-flux"),
    ):
        if inputs[name]:
            command += [flag, inputs[name]]
    for fmt, path in reports.items():
        command += ["--report", f"{fmt}={path}"]
    command += _split("args", inputs["args"])
    return Plan(
        command,
        workdir,
        workspace,
        report_dir,
        reports,
        _bool("annotations", inputs["annotations"]),
        max_annotations,
    )


# --- running smokegate --------------------------------------------------------------------------


@dataclass
class Outcome:
    code: int
    stderr_tail: list[str] = field(default_factory=list)


def run_smokegate(plan: Plan, environ: Mapping[str, str]) -> Outcome:
    """Run smokegate with its output streamed to the log as it comes.

    Workflow commands are paused while it runs (``::stop-commands::``): its output can quote
    what the target answered, and a response body must not be able to write annotations or
    outputs. Its stderr is also kept (the tail) for the annotations of runs that stopped early.
    """
    env = {**environ}
    env.setdefault("COLUMNS", "160")  # the log is wider than rich's 80-column default for pipes
    token = secrets.token_hex(16)
    print(f"::stop-commands::{token}", flush=True)
    tail: deque[str] = deque(maxlen=200)
    try:
        proc = subprocess.Popen(
            plan.command,
            cwd=plan.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
    except OSError as e:
        print(f"::{token}::", flush=True)
        return Outcome(4, [f"cannot run {plan.command[0]}: {e}"])

    # A cancelled job sends SIGINT, then SIGTERM: pass them on so smokegate stops its checks,
    # writes its partial reports and exits 130; this script then still reports what it has.
    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            sys.stderr.write(line)
            sys.stderr.flush()
            tail.append(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        code = proc.wait()
        reader.join()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        print(f"::{token}::", flush=True)
    return Outcome(code, list(tail))


# --- annotations -----------------------------------------------------------------------------


def split_source(source: str) -> tuple[str, int | None]:
    """``suites/web.yaml:12`` -> (``suites/web.yaml``, 12); a source without a line keeps None."""
    path, sep, line = source.rpartition(":")
    if sep and line.isdigit():
        return path, int(line)
    return source, None


def repo_path(path: str, plan: Plan) -> str | None:
    """The path relative to the workspace (as GitHub wants it), or None outside the repository."""
    if not path or path == "-":
        return None
    absolute = (plan.workdir / path).resolve()
    try:
        return absolute.relative_to(plan.workspace).as_posix()
    except ValueError:
        return None


def check_annotations(report: Mapping[str, Any], plan: Plan) -> list[str]:
    lines = []
    for result in report.get("results", []):
        status = result.get("status")
        if status not in ("failed", "error"):
            continue
        path, line = split_source(result.get("source") or "")
        file = repo_path(path, plan)
        message = result.get("message") or f"check {status}"
        if not file and path:
            message += f"\n(defined in {result.get('source')})"
        lines.append(
            workflow_command(
                "error",
                message,
                file=file,
                line=line if file else None,
                title=f"smokegate: {result.get('id')} {status}",
            )
        )
    return lines


def problem_annotations(stderr_tail: Iterable[str], plan: Plan) -> list[str]:
    lines = []
    for text in stderr_tail:
        m = _PROBLEM.match(text)
        if not m:
            continue
        file = repo_path(m["file"], plan)
        message = m["msg"] if file else f"{m['file']}:{m['line']}:{m['col']}: {m['msg']}"
        lines.append(
            workflow_command(
                "error",
                message,
                file=file,
                line=m["line"] if file else None,
                col=m["col"] if file else None,
                title="smokegate: suite error",
            )
        )
    return lines


def _last_words(stderr_tail: list[str], n: int = 5) -> str:
    meaningful = [line for line in stderr_tail if line.strip()]
    return "\n".join(meaningful[-n:]) or "(no output)"


# Runs that stopped before (or while) running checks get one annotation saying why, with the
# last lines smokegate printed (for exit 3 that is Flux's own reason and message).
_STOPPED_TITLES = {
    2: "smokegate: usage error",
    3: "smokegate: release never became ready",
    4: "smokegate: internal error",
}


def annotations_for(outcome: Outcome, report: Mapping[str, Any] | None, plan: Plan) -> list[str]:
    lines: list[str] = check_annotations(report, plan) if report is not None else []
    last_words = _last_words(outcome.stderr_tail)
    if outcome.code == 2:
        lines += problem_annotations(outcome.stderr_tail, plan) or [
            workflow_command("error", last_words, title=_STOPPED_TITLES[2])
        ]
    elif outcome.code in _STOPPED_TITLES:
        lines.append(workflow_command("error", last_words, title=_STOPPED_TITLES[outcome.code]))
    elif outcome.code == 130:
        lines.append(workflow_command("warning", "the run was interrupted", title="smokegate"))
    elif outcome.code != 0 and not lines:
        lines.append(workflow_command("error", last_words, title=f"smokegate: exit {outcome.code}"))
    if len(lines) > plan.max_annotations:
        # GitHub shows only a few annotations per step (10 errors at the time of writing): keep
        # the first ones and say how many more there are, within the limit.
        keep = max(plan.max_annotations - 1, 0)
        more = len(lines) - keep
        lines = lines[:keep]
        if plan.max_annotations:
            note = f"{more} more problems: see the job summary and the reports"
            lines.append(workflow_command("error", note, title="smokegate"))
    return lines


# --- outputs and summary ---------------------------------------------------------------------


def load_report(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def outputs_for(outcome: Outcome, report: Mapping[str, Any] | None, plan: Plan) -> dict[str, str]:
    counts = (report or {}).get("counts") or {}
    values = {
        "exit-code": str(outcome.code),
        "ok": "true" if outcome.code == 0 else "false",
        "passed": str(counts.get("passed", 0)),
        "failed": str(counts.get("failed", 0)),
        "errors": str(counts.get("error", 0)),
        "skipped": str(counts.get("skipped", 0)),
        "total": str(counts.get("total", 0)),
        "run-id": str((report or {}).get("runId", "")),
        "report-dir": str(plan.report_dir),
    }
    for fmt, path in plan.reports.items():
        values[f"report-{fmt}"] = str(path) if path.is_file() else ""
    return values


def write_outputs(path: str | None, values: Mapping[str, str]) -> None:
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        for name, value in values.items():
            if "\n" in value or "\r" in value:
                delimiter = f"ghadelimiter_{secrets.token_hex(8)}"
                out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
            else:
                out.write(f"{name}={value}\n")


def _size(path: str | None) -> int:
    try:
        return os.path.getsize(path) if path else 0
    except OSError:
        return 0


def fallback_summary(outcome: Outcome, release: str) -> str:
    """What the job summary says when smokegate stopped before writing its report there."""
    meaning = EXIT_MEANING.get(outcome.code, "unexpected exit")
    tail = "\n".join(outcome.stderr_tail[-30:]).replace("```", "'''")
    return (
        f"### ❌ smokegate gate `{release}`: {meaning} (exit {outcome.code})\n\n"
        f"```text\n{tail}\n```\n\n"
    )


# --- main ------------------------------------------------------------------------------------


def main(environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    inputs = read_inputs(environ)
    summary = environ.get("GITHUB_STEP_SUMMARY")
    try:
        plan = plan_from(inputs, environ)
    except InputError as e:
        print(workflow_command("error", str(e), title="smokegate action: bad input"), flush=True)
        write_outputs(environ.get("GITHUB_OUTPUT"), {"exit-code": "2", "ok": "false"})
        return 2

    print("smokegate action: " + shlex.join(plan.command), flush=True)
    before = _size(summary)
    outcome = run_smokegate(plan, environ)
    report = load_report(plan.reports["json"])

    if plan.annotations:
        for line in annotations_for(outcome, report, plan):
            print(line, flush=True)
    write_outputs(environ.get("GITHUB_OUTPUT"), outputs_for(outcome, report, plan))
    if summary and outcome.code != 0 and _size(summary) == before:
        with open(summary, "a", encoding="utf-8") as out:
            out.write(fallback_summary(outcome, inputs["release"]))
    return outcome.code


if __name__ == "__main__":
    sys.exit(main())
