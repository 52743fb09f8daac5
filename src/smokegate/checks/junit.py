"""``junit``: run any command that writes JUnit XML and report its test cases as child results.

    - name: storefront-e2e
      junit:
        command: [npx, playwright, test, --reporter=junit]
        results: test-results/junit.xml     # relative to the suite file
        env: {PLAYWRIGHT_JUNIT_OUTPUT_NAME: test-results/junit.xml}

Why a kind of its own rather than ``exec`` with a ``results:`` block: a test runner's exit code
is not the verdict (it exits 1 whenever a test fails, and a check that expects exit 0 would say
only "exit code 1"), while an ``exec`` check's expectations are all about that exit code and
output. Here the cases decide, the exit code only tells a crash (non-zero with no failing
case) apart from failing tests, and ``pytest``, ``newman`` and ``k6`` are this same kind with
their tool's flags filled in (``checks._tool``, ``checks._suites``).

    - name: go-unit
      junit:
        command: "go test ./... -v 2>&1 | go-junit-report > $SMOKEGATE_RESULTS_DIR/junit.xml"

The command runs like ``exec``'s (own process group, killed whole on timeout). Without
``results`` it writes ``junit.xml`` into ``$SMOKEGATE_RESULTS_DIR``, a fresh private directory
per attempt. A ``results`` file older than the attempt is reported as stale rather than read,
so a crashed tool never passes on the previous run's results.
"""

from __future__ import annotations

import os
import tempfile
import time

from pydantic import ValidationInfo, field_validator

from smokegate.checks._suites import read_junit, verdict
from smokegate.checks._tool import ToolSpec, require_tool, run_tool
from smokegate.checks.base import (
    CheckContext,
    CheckFailed,
    ErrorKind,
    LocalPath,
    Mismatch,
    Outcome,
    Secret,
    Text,
    masked,
    reveal,
)

RESULTS_DIR_VAR = "SMOKEGATE_RESULTS_DIR"


class JunitSpec(ToolSpec):
    """A command that writes JUnit XML; its test cases become the check's child results."""

    command: list[Text] | Text
    """argv list (run directly), or a string run with /bin/sh -c."""
    results: LocalPath | None = None
    """Where the command writes its JUnit XML (relative to the suite file). Default:
    `junit.xml` in `$SMOKEGATE_RESULTS_DIR`, a fresh directory per attempt that the command
    finds in its environment."""

    @field_validator("command")
    @classmethod
    def _installed(
        cls, v: list[str | Secret] | str | Secret, info: ValidationInfo
    ) -> list[str | Secret] | str | Secret:
        if isinstance(v, list):
            if not v or not reveal(v[0]):
                raise ValueError("command must not be empty")
            program = reveal(v[0])
            # `./run-tests.sh` is found from the working directory the command will start in.
            where = info.data.get("cwd") or info.data.get("base_dir")
            if "/" in program and not os.path.isabs(program) and where:
                program = os.path.join(where, program)
            require_tool(program, "install it, or give its full path in `command`")
        elif not reveal(v).strip():
            raise ValueError("command must not be empty")
        return v

    def argv(self) -> list[str | Secret]:
        if isinstance(self.command, str | Secret):
            return ["/bin/sh", "-c", self.command]
        return list(self.command)


async def run(spec: JunitSpec, ctx: CheckContext) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="smokegate-junit-") as tmp:
        env = {**spec.process_env(), RESULTS_DIR_VAR: tmp}
        started = time.time()
        done = await run_tool(spec.argv(), env, spec.workdir(), "junit")
        path = spec.results or os.path.join(tmp, "junit.xml")
        details = {"command": " ".join(masked(spec.argv())), "results": path}
        try:
            if os.path.exists(path) and os.path.getmtime(path) < started - 1:
                raise CheckFailed(
                    f"{path} is older than this attempt: the command did not write it",
                    kind=ErrorKind.EXPECTATION,
                    evidence=[Mismatch("results", "written by this attempt", "a stale file")],
                )
            cases = read_junit(path)
        except CheckFailed as exc:
            output = ctx.redactor.redact((done.stderr or done.stdout).strip())
            exc.details = {**details, "exitCode": done.code, **exc.details}
            exc.snippet = output[-1024:] or None
            raise
        return verdict(
            cases,
            ctx,
            tool="junit",
            code=done.code,
            output=done.stdout + done.stderr,
            details=details,
        )


SPEC = JunitSpec
