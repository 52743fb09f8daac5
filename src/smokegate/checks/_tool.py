"""Running a third-party test tool (pytest, newman, k6, any JUnit producer) for the kinds that
drive whole test suites. Not a check kind: the registry never names this module.

What those kinds share:

- ``ToolSpec``: the fields every one of them takes (extra args, env, working directory) and
  the suite's vars handed to the tool as ``SMOKEGATE_*`` environment variables;
- ``require_tool``: a tool that is not installed is a *load-time* error (lint, plan, run)
  with the exact command that installs it, not a failure in the middle of a gate;
- ``run_tool``: the process runs in its own process group, like ``exec``, and the whole group
  is killed when it ends, when the attempt times out and when the run is interrupted (a
  pytest that started a server, a newman stuck on a socket: nothing is left running).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from smokegate.checks.base import (
    CheckFailed,
    ErrorKind,
    LocalPath,
    Secret,
    Spec,
    Text,
    reveal,
)

# The process machinery is exec's: one implementation of "own group, kill it all, reap it".
from smokegate.checks.exec import _Capture, _exited, _kill_group, _wait_exit

ENV_PREFIX = "SMOKEGATE_"


def env_name(var: str) -> str:
    """``base_url`` -> ``SMOKEGATE_BASE_URL``; ``release.appVersion`` ->
    ``SMOKEGATE_RELEASE_APP_VERSION`` (camelCase split, anything else non-alphanumeric -> _).
    The prefix keeps a var named ``path`` or ``home`` from replacing the tool's PATH/HOME."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", var)
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]+", "_", snake).strip("_").upper()


def _as_text(value: Any) -> str | Secret | None:
    if isinstance(value, Secret | str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return None  # lists, mappings: not an environment value


class ToolSpec(Spec):
    """Fields shared by the kinds that run a test tool."""

    args: list[Text] = Field(default_factory=list)
    """Extra command-line arguments for the tool, appended after smokegate's own."""
    env: dict[str, Text] = Field(default_factory=dict)
    """Extra environment variables for the tool (on top of smokegate's environment)."""
    cwd: LocalPath | None = None
    """Working directory (relative to the suite file); default: the suite file's directory."""
    pass_vars: bool = True
    """Hand the suite's vars and `${release.*}` facts to the tool as `SMOKEGATE_<NAME>`
    environment variables (`base_url` -> `SMOKEGATE_BASE_URL`, `release.revision` ->
    `SMOKEGATE_RELEASE_REVISION`)."""
    suite_vars: SkipJsonSchema[dict[str, Text]] = Field(default_factory=dict)
    # Filled by the validator below from the loader's validation context, never written by hand.
    base_dir: SkipJsonSchema[str | None] = None

    @model_validator(mode="before")
    @classmethod
    def _from_suite(cls, data: Any, info: ValidationInfo) -> Any:
        # The loader validates every check with a context holding the suite's directory and
        # its resolved vars (Secrets stay Secrets: revealed only into the tool's environment).
        if not isinstance(data, dict):
            return data
        context = info.context or {}
        data = {k: v for k, v in data.items() if k not in ("suiteVars", "baseDir")}
        variables: Mapping[str, Any] = context.get("vars") or {}
        data["suiteVars"] = {k: t for k, v in variables.items() if (t := _as_text(v)) is not None}
        data["baseDir"] = context.get("base_dir")
        return data

    @field_validator("env", mode="before")
    @classmethod
    def _scalars_as_text(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: t if (t := _as_text(x)) is not None else x for k, x in v.items()}
        return v

    def process_env(self) -> dict[str, str]:
        """The tool's environment: smokegate's, then the suite's vars, then ``env``."""
        suite = {env_name(k): v for k, v in self.suite_vars.items()} if self.pass_vars else {}
        own = {**suite, **self.env}
        return {**os.environ, **reveal(own)}

    def workdir(self) -> str | None:
        return self.cwd or self.base_dir


# ---------------------------------------------------------------------------------------------
# Installed?


_FOUND: dict[str, str] = {}


def _which(program: str) -> str | None:
    # Only hits are remembered (a 10,000-way matrix looks a tool up once): a tool installed
    # while `serve` runs is found on its next plan.
    found = _FOUND.get(program) or shutil.which(program)
    if found is not None and len(_FOUND) < 256:
        _FOUND[program] = found
    return found


def require_tool(program: str, hint: str) -> str:
    """``program`` (a name on PATH or a path) if it can be run; else a ValueError, raised from a
    validator so the loader reports it at the check's line: ``newman is not installed: …``."""
    found = _which(program)
    if found is None:
        raise ValueError(f"{program} is not installed (not on PATH); {hint}")
    return found


# ---------------------------------------------------------------------------------------------
# Running


@dataclass(slots=True)
class ToolRun:
    code: int
    stdout: str
    stderr: str


async def run_tool(
    argv: list[str | Secret], env: dict[str, str], cwd: str | None, tool: str
) -> ToolRun:
    """Run ``argv`` to completion in its own process group; the group is killed on the way out
    whatever happens (exit, attempt timeout, interruption)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *reveal(argv),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        if cwd and exc.filename == cwd:
            raise CheckFailed(
                f"{tool}: working directory {cwd} does not exist", kind=ErrorKind.CONFIG
            ) from None
        raise CheckFailed(
            f"{tool}: cannot run {reveal(argv[0])!r}: not found", kind=ErrorKind.CONFIG
        ) from None
    except (PermissionError, NotADirectoryError) as exc:
        raise CheckFailed(f"{tool}: cannot run: {exc}", kind=ErrorKind.CONFIG) from None
    out, err = _Capture(), _Capture()
    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        asyncio.ensure_future(out.drain(proc.stdout)),
        asyncio.ensure_future(err.drain(proc.stderr)),
    ]
    try:
        code = await _wait_exit(proc, readers)
    finally:
        _kill_group(proc.pid)
        for task in readers:
            task.cancel()
        if proc.returncode is None:
            await asyncio.shield(_exited(proc, 5.0))
    return ToolRun(code, out.text, err.text)
