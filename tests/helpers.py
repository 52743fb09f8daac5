"""Small helpers shared by the test modules (not fixtures, so any test can import them)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 120,
    stdin: str | None = None,
) -> CliResult:
    """Run the real ``smokegate`` entry point in a subprocess (as a user would)."""
    import os

    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    full_env.pop("GITHUB_STEP_SUMMARY", None)
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "smokegate", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        input=stdin,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def write_suite(
    directory: Path,
    checks_yaml: str,
    *,
    name: str = "t",
    extra_spec: str = "",
    filename: str = "suite.yaml",
) -> Path:
    """Write a suite file whose ``spec.checks`` is ``checks_yaml`` (indented for you)."""
    body = textwrap.indent(textwrap.dedent(checks_yaml).strip("\n"), "    ")
    spec_extra = textwrap.indent(textwrap.dedent(extra_spec).strip("\n"), "  ")
    text = (
        "apiVersion: smokegate.io/v1\nkind: Suite\n"
        f"metadata: {{name: {name}}}\nspec:\n"
        + (spec_extra + "\n" if spec_extra else "")
        + "  checks:\n"
        + body
        + "\n"
    )
    path = directory / filename
    path.write_text(text)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())
