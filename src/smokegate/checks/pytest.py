"""``pytest``: run a pytest suite; each test is a child result of the check.

    - name: api-functional
      timeout: 5m
      pytest:
        tests: [tests/functional]          # files, directories or node ids (relative to the suite)
        markers: "smoke and not slow"      # -m
        args: [-x, --maxfail=5]
        python: .venv/bin/python           # default: the Python running smokegate
        env: {API_TOKEN: "${secret:api/token}"}

Runs ``python -m pytest`` with ``--junitxml`` into a private directory and reads it back
(``checks._suites``): one case per test, with its assertion message, traceback and captured
output (``-o junit_logging=all``). The suite's vars and ``${release.*}`` facts reach the tests as
``SMOKEGATE_*`` environment variables (``base_url`` -> ``SMOKEGATE_BASE_URL``, ``release.revision``
-> ``SMOKEGATE_RELEASE_REVISION``), so a test reads ``os.environ["SMOKEGATE_BASE_URL"]``.

``-p no:cacheprovider``: a gate must not leave ``.pytest_cache`` in the team's test directory.
A Python without pytest is refused when the suite is loaded (lint, plan, run), with the pip
command that fixes it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from typing import Self

from pydantic import Field, model_validator

from smokegate.checks._suites import read_junit, verdict
from smokegate.checks._tool import ToolSpec, run_tool
from smokegate.checks.base import CheckContext, LocalPath, Outcome, Secret, masked

# pytest's own exit codes (pytest.ExitCode), for a run that failed without a failing test.
EXIT_WORDS = {
    2: "pytest was interrupted",
    3: "pytest internal error",
    4: "pytest usage error: check `args`",
    5: "no tests collected",
}


_HAS_PYTEST: set[str] = set()


def _has_pytest(python: str) -> str | None:
    """None when ``python`` can import pytest, else why not. Only a yes is remembered (a
    pytest installed while `serve` runs is found on its next plan)."""
    if python in _HAS_PYTEST:
        return None
    why = _probe(python)
    if why is None and len(_HAS_PYTEST) < 64:
        _HAS_PYTEST.add(python)
    return why


def _probe(python: str) -> str | None:
    if python == sys.executable:
        return None if importlib.util.find_spec("pytest") is not None else "not installed"
    try:
        proc = subprocess.run(
            [python, "-c", "import pytest"], capture_output=True, timeout=60, check=False
        )
    except FileNotFoundError:
        return "no such interpreter"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run it ({exc})"
    return None if proc.returncode == 0 else "not installed"


class PytestSpec(ToolSpec):
    """A pytest run whose tests become the check's child results."""

    tests: list[LocalPath] = Field(default_factory=list)
    """Test files, directories or node ids (`tests/test_api.py::test_login`), relative to the
    suite file; default: pytest's own discovery from `cwd`."""
    markers: str | None = None
    """Marker expression (`-m`), e.g. `smoke and not slow`."""
    python: str | None = None
    """The interpreter that runs pytest (a name on PATH, or a path relative to the suite file):
    the one with the tests' dependencies. Default: the Python running smokegate."""

    @model_validator(mode="after")
    def _installed(self) -> Self:
        python = self.interpreter()
        why = _has_pytest(python)
        if why == "no such interpreter":
            raise ValueError(f"python {python!r} not found (not a file, and not on PATH)")
        if why is not None:
            raise ValueError(
                f"pytest is not installed for {python} ({why}); install it with:  "
                f"{python} -m pip install pytest"
            )
        return self

    def interpreter(self) -> str:
        python = self.python or sys.executable
        if "/" in python and not os.path.isabs(python) and self.base_dir:
            python = os.path.join(self.base_dir, python)
        return python

    def argv(self, report: str) -> list[str | Secret]:
        argv: list[str | Secret] = [self.interpreter(), "-m", "pytest", *self.tests]
        argv += [f"--junitxml={report}", "-o", "junit_logging=all", "-o", "junit_family=xunit2"]
        argv += ["-p", "no:cacheprovider", "--color=no", "-q"]
        if self.markers:
            argv += ["-m", self.markers]
        return [*argv, *self.args]


async def run(spec: PytestSpec, ctx: CheckContext) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="smokegate-pytest-") as tmp:
        report = os.path.join(tmp, "junit.xml")
        argv = spec.argv(report)
        done = await run_tool(argv, spec.process_env(), spec.workdir(), "pytest")
        details = {"command": " ".join(masked(argv)).replace(report, "<junit.xml>")}
        # pytest writes the file even when every test fails; no file: it never got that far
        # (bad arguments, an import error in conftest.py), and the exit code says which.
        cases = read_junit(report) if os.path.exists(report) else []
        return verdict(
            cases,
            ctx,
            tool="pytest",
            code=done.code,
            output=done.stdout + done.stderr,
            details=details,
            exit_words=EXIT_WORDS,
        )


SPEC = PytestSpec
