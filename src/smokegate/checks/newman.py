"""``newman``: run a Postman collection with newman; each assertion is a child result.

    - name: api-contract
      timeout: 2m
      newman:
        collection: postman/shop.postman_collection.json
        environment: postman/staging.postman_environment.json
        variables: {baseUrl: "http://${host}", token: "${secret:api/token}"}
        folder: [orders]                   # --folder, repeatable
        bin: node_modules/.bin/newman      # default: newman on PATH

newman runs with its ``junit`` reporter into a private directory (plus ``cli``, kept as the
check's log). Each assertion (``pm.test``) is one case, grouped (``classname``) by its request:
newman's message (``expected '1.2.3' to deeply equal '2.0.0'``) is the case's message, and a
request that could not be sent (``ECONNREFUSED``) is in the output of its failed assertions.

Variables reach the collection as Postman environment variables, from lowest to highest
precedence: the suite's vars and ``${release.*}`` facts under their own names
(``{{base_url}}``, ``{{release.revision}}``; ``passVars: false`` leaves them out), the
``environment`` file, then ``variables``. They are written to a private (0600) environment file
rather than ``--env-var`` arguments, so a secret never shows in the process list. A newman
that is not installed is refused when the suite is loaded, with the npm command that installs it.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Self

from pydantic import Field, model_validator

from smokegate.checks._suites import read_junit, verdict
from smokegate.checks._tool import ToolSpec, require_tool, run_tool
from smokegate.checks.base import (
    CheckContext,
    CheckFailed,
    ErrorKind,
    LocalPath,
    Outcome,
    Secret,
    Text,
    masked,
    reveal,
)

INSTALL = "npm install -g newman@6   (or give its path in `bin`)"


class NewmanSpec(ToolSpec):
    """A Postman collection run by newman; its assertions become the check's child results."""

    collection: LocalPath
    """The collection file (Postman v2.x JSON), relative to the suite file."""
    environment: LocalPath | None = None
    """A Postman environment file."""
    globals: LocalPath | None = None
    """A Postman globals file (`-g`)."""
    variables: dict[str, Text] = Field(default_factory=dict)
    """Environment variables set on top of `environment` (`{{name}}` in the collection)."""
    folder: list[str] = Field(default_factory=list)
    """Run only these folders or requests of the collection (`--folder`, repeatable)."""
    iterations: int | None = Field(default=None, ge=1)
    """Run the collection this many times (`-n`)."""
    insecure: bool = False
    """Accept any TLS certificate (`--insecure`): for self-signed staging targets."""
    bin: str = "newman"
    """The newman executable: a name on PATH or a path relative to the suite file."""

    @model_validator(mode="after")
    def _installed(self) -> Self:
        require_tool(self.executable(), f"install it with:  {INSTALL}")
        return self

    def executable(self) -> str:
        if "/" in self.bin and not os.path.isabs(self.bin) and self.base_dir:
            return os.path.join(self.base_dir, self.bin)
        return self.bin

    def argv(self, env_file: str, report: str) -> list[str | Secret]:
        argv: list[str | Secret] = [self.executable(), "run", self.collection, "-e", env_file]
        argv += ["-r", "cli,junit", "--reporter-junit-export", report]
        argv += ["--color", "off", "--disable-unicode"]
        if self.globals:
            argv += ["-g", self.globals]
        for name in self.folder:
            argv += ["--folder", name]
        if self.iterations:
            argv += ["-n", str(self.iterations)]
        if self.insecure:
            argv.append("--insecure")
        return [*argv, *self.args]


def _load_environment(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise CheckFailed(
            f"newman: environment {path} does not exist", kind=ErrorKind.CONFIG
        ) from None
    except (OSError, ValueError) as exc:
        raise CheckFailed(
            f"newman: environment {path} is not a Postman environment file: {exc}",
            kind=ErrorKind.CONFIG,
        ) from None
    values = data.get("values") if isinstance(data, dict) else None
    if not isinstance(values, list):
        raise CheckFailed(f"newman: environment {path} has no `values` list", kind=ErrorKind.CONFIG)
    return [v for v in values if isinstance(v, dict) and "key" in v]


def environment_file(spec: NewmanSpec, directory: str) -> str:
    """The merged environment, written where only this user can read it."""
    merged: dict[str, dict[str, Any]] = {}
    if spec.pass_vars:
        for key, value in spec.suite_vars.items():
            merged[key] = {"key": key, "value": reveal(value), "enabled": True}
    if spec.environment:
        for item in _load_environment(spec.environment):
            merged[str(item["key"])] = item
    for key, value in spec.variables.items():
        merged[key] = {"key": key, "value": reveal(value), "enabled": True}
    path = os.path.join(directory, "environment.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"name": "smokegate", "values": list(merged.values())}, fh)
    return path


async def run(spec: NewmanSpec, ctx: CheckContext) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="smokegate-newman-") as tmp:
        report = os.path.join(tmp, "junit.xml")
        argv = spec.argv(environment_file(spec, tmp), report)
        done = await run_tool(argv, spec.process_env(), spec.workdir(), "newman")
        cases = read_junit(report, classname_from_suite=True) if os.path.exists(report) else []
        shown = " ".join(masked(argv)).replace(tmp, "<tmp>")
        return verdict(
            cases,
            ctx,
            tool="newman",
            code=done.code,
            output=done.stdout + done.stderr,
            details={"command": shown},
        )


SPEC = NewmanSpec
