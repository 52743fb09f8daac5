"""``exec``: run a command and check its exit code and output.

    - name: migrations-applied
      exec:
        command: [kubectl, -n, shop, exec, deploy/api, --, ./manage.py, showmigrations, --plan]
        env: {KUBECONFIG: /etc/smokegate/kubeconfig}
        expect:
          exitCode: 0
          stdout: {contains: "[X] 0042_orders", notContains: "[ ]"}

    - name: queue-drained
      exec:
        command: "redis-cli -h redis llen jobs | tr -d ' '"   # a string runs via /bin/sh -c
        expect: {stdout: {regex: '^0$'}}

A list ``command`` is executed directly (no shell: arguments need no quoting); a string is run
with ``/bin/sh -c``, so pipes, globs and ``$VARS`` work. The command inherits smokegate's
environment plus ``env`` (unless ``inheritEnv: false``), starts in ``cwd`` (relative to the
suite file) and gets ``stdin`` or an empty input.

It runs in its own process group, and the whole group is killed when the command ends, when
the attempt times out and when the run is interrupted: nothing it started is left running.
The last 1 MiB of each stream is kept for the expectations and the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import shlex
import signal
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field, field_validator

from smokegate.checks.base import (
    CheckContext,
    CheckFailed,
    ErrorKind,
    LocalPath,
    Mismatch,
    Outcome,
    Secret,
    Spec,
    Text,
    failed,
    masked,
    passed,
    reveal,
)
from smokegate.checks.expect import render

OUTPUT_CAP = 1024 * 1024
SNIPPET_CHARS = 1024
# After the command exits, how long its output pipes may stay open (held by something it
# started in the background) before we stop waiting and kill the group.
DRAIN_GRACE = 0.5


class OutputExpect(Spec):
    """Expectations on one output stream (the last 1 MiB of it)."""

    contains: str | list[str] | None = None
    """Text(s) the output must contain."""
    not_contains: str | list[str] | None = None
    """Text(s) the output must not contain."""
    regex: str | None = None
    """Regex (Python syntax, multiline: ^ and $ match at each line) the output must match."""
    equals: str | None = None
    """The whole output, compared after stripping surrounding whitespace."""
    empty: bool | None = None
    """The output must be empty (true) or not (false), ignoring whitespace."""

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                _regex(v)
            except (re.error, OverflowError) as exc:  # a{99999999999}: OverflowError
                raise ValueError(f"invalid regex {v!r}: {exc}") from None
        return v


class ExecExpect(Spec):
    """Exit code and output expectations; all are checked."""

    exit_code: int | list[int] = 0
    """Accepted exit code(s)."""
    stdout: OutputExpect | None = None
    stderr: OutputExpect | None = None


class ExecSpec(Spec):
    """A command to run and what its exit code and output must be."""

    command: list[Text] | Text
    """argv list (run directly), or a string run with /bin/sh -c."""
    env: dict[str, Text] = Field(default_factory=dict)
    """Extra environment variables for the command."""
    inherit_env: bool = True
    """Start from smokegate's own environment (false: only `env`)."""
    cwd: LocalPath | None = None
    """Working directory (relative to the suite file); default: smokegate's."""
    stdin: Text | None = None
    """Text written to the command's standard input."""
    expect: ExecExpect = Field(default_factory=ExecExpect)

    @field_validator("env", mode="before")
    @classmethod
    def _scalars_as_text(cls, v: Any) -> Any:
        # `PORT: 8080` and `DEBUG: true` are how people write env in YAML (as in Compose).
        if isinstance(v, dict):
            return {
                k: (str(x).lower() if isinstance(x, bool) else str(x))
                if isinstance(x, int | float)
                else x
                for k, x in v.items()
            }
        return v

    @field_validator("command")
    @classmethod
    def _not_empty(cls, v: list[str | Secret] | str | Secret) -> list[str | Secret] | str | Secret:
        if not (reveal(v).strip() if isinstance(v, str | Secret) else v and reveal(v[0])):
            raise ValueError("command must not be empty")
        return v

    def argv(self) -> list[str | Secret]:
        """The argv as written (Secrets kept: ``reveal`` it for the exec, ``masked`` to show)."""
        if isinstance(self.command, str | Secret):
            return ["/bin/sh", "-c", self.command]
        return list(self.command)


class _Capture:
    """Keeps the last OUTPUT_CAP bytes of a stream and counts the rest."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.total = 0

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self.total += len(chunk)
            self.buf += chunk
            if len(self.buf) > OUTPUT_CAP:
                del self.buf[: len(self.buf) - OUTPUT_CAP]

    @property
    def text(self) -> str:
        return self.buf.decode("utf-8", "replace")


def _kill_group(pid: int) -> None:
    # Already gone is fine (PermissionError: macOS reports a reaped group this way).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def run(spec: ExecSpec, ctx: CheckContext) -> Outcome:
    argv = masked(spec.argv())  # what messages and details show
    own_env = reveal(spec.env)
    env = {**os.environ, **own_env} if spec.inherit_env else own_env
    try:
        proc = await asyncio.create_subprocess_exec(
            *reveal(spec.argv()),
            stdin=asyncio.subprocess.PIPE if spec.stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=spec.cwd,
            start_new_session=True,  # own process group, so one killpg reaches its children
        )
    except FileNotFoundError as exc:
        if spec.cwd and exc.filename == spec.cwd:
            raise CheckFailed(
                f"exec: working directory {spec.cwd} does not exist", kind=ErrorKind.CONFIG
            ) from None
        raise CheckFailed(
            f"exec: command not found: {argv[0]!r} (not a file, and not on PATH)",
            kind=ErrorKind.CONFIG,
        ) from None
    except PermissionError as exc:
        raise CheckFailed(
            f"exec: cannot execute {exc.filename or argv[0]!r}: permission denied",
            kind=ErrorKind.CONFIG,
        ) from None
    except NotADirectoryError:
        raise CheckFailed(
            f"exec: working directory {spec.cwd} is not a directory", kind=ErrorKind.CONFIG
        ) from None
    out, err = _Capture(), _Capture()
    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        asyncio.ensure_future(out.drain(proc.stdout)),
        asyncio.ensure_future(err.drain(proc.stderr)),
    ]
    try:
        if spec.stdin is not None and proc.stdin is not None:
            await _feed(proc.stdin, reveal(spec.stdin).encode())
        code = await _wait_exit(proc, readers)
    finally:
        # Always, including timeout and cancellation: the command and anything it started go.
        _kill_group(proc.pid)
        for task in readers:
            task.cancel()
        if proc.returncode is None:
            # Let the loop reap it so no zombie is left; SIGKILL makes this quick.
            await asyncio.shield(_exited(proc, 5.0))
    return _evaluate(spec, argv, code, out, err, ctx.redactor.redact)


async def _wait_exit(
    proc: asyncio.subprocess.Process, readers: Sequence[asyncio.Future[None]]
) -> int:
    """The exit code, once the command has exited and its output is read.

    ``Process.wait()`` (3.11) also waits for the output pipes to close, so a background child
    still holding them would stall the check until its timeout; the exit status is watched
    directly instead, and the pipes get DRAIN_GRACE to finish after it.
    """
    while proc.returncode is None:
        await asyncio.wait(readers, timeout=0.05)
        if all(task.done() for task in readers):
            return await proc.wait()  # pipes closed: wait() returns as soon as it exits
    await asyncio.wait(readers, timeout=DRAIN_GRACE)
    return proc.returncode


async def _exited(proc: asyncio.subprocess.Process, limit: float) -> None:
    # Polls for the same reason as _wait_exit: wait() may block on pipes a stray child holds.
    for _ in range(int(limit / 0.01)):
        if proc.returncode is not None:
            return
        await asyncio.sleep(0.01)


async def _feed(stdin: asyncio.StreamWriter, data: bytes) -> None:
    try:
        stdin.write(data)
        await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the command did not read all of it; its exit code and output say the rest
    finally:
        stdin.close()


def _evaluate(
    spec: ExecSpec,
    argv: list[str],
    code: int,
    out: _Capture,
    err: _Capture,
    redact: Callable[[str], str],
) -> Outcome:
    """The outcome. Output is shown redacted, and redacted before it is shortened: the report's
    own redaction comes too late for a secret already cut in half."""
    expect = spec.expect
    accepted = expect.exit_code if isinstance(expect.exit_code, list) else [expect.exit_code]
    misses: list[Mismatch] = []
    if code not in accepted:
        misses.append(Mismatch("exit code", " or ".join(map(str, accepted)), _describe_exit(code)))
    for name, rule, capture in (("stdout", expect.stdout, out), ("stderr", expect.stderr, err)):
        if rule is not None:
            misses.extend(_check_output(name, rule, capture.text, redact))
    command = spec.command
    details: dict[str, Any] = {
        "command": masked(command) if isinstance(command, str | Secret) else shlex.join(argv),
        "exitCode": code,
        "stdoutBytes": out.total,
        "stderrBytes": err.total,
    }
    if not misses:
        return passed(details=details)
    # The stream that explains the failure first: stderr for a bad exit code.
    streams = [("stderr", err), ("stdout", out)]
    if code in accepted and any(m.subject == "stdout" for m in misses):
        streams.reverse()
    return failed(misses, snippet=_snippet(streams, redact), details=details)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    if code == 127:
        return "127 (command not found)"
    return str(code)


def _as_list(v: str | list[str] | None) -> list[str]:
    return [] if v is None else [v] if isinstance(v, str) else v


def _check_output(
    name: str, rule: OutputExpect, text: str, redact: Callable[[str], str]
) -> list[Mismatch]:
    """Unmet expectations on one stream; ``text`` is matched as is, and shown redacted."""
    out = []
    shown = render(_tail(redact(text), 160)) if text.strip() else "empty"

    def want(value: str) -> str:
        return render(redact(value))

    for needle in _as_list(rule.contains):
        if needle not in text:
            out.append(Mismatch(name, f"containing {want(needle)}", shown))
    for needle in _as_list(rule.not_contains):
        if needle in text:
            out.append(Mismatch(name, f"not containing {want(needle)}", shown))
    if rule.regex is not None and not _regex(rule.regex).search(text):
        out.append(Mismatch(name, f"matching /{rule.regex}/", shown))
    if rule.equals is not None and text.strip() != rule.equals.strip():
        out.append(Mismatch(name, want(rule.equals.strip()), shown))
    if rule.empty is not None and rule.empty == bool(text.strip()):
        out.append(Mismatch(name, "empty" if rule.empty else "not empty", shown))
    return out


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    # Command output is line-oriented: `^0$` should mean "a line that is 0", as grep reads it.
    return re.compile(pattern, re.MULTILINE)


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


def _snippet(streams: list[tuple[str, _Capture]], redact: Callable[[str], str]) -> str | None:
    parts = [
        f"{name}: {_tail(redact(cap.text).rstrip(), SNIPPET_CHARS)}"
        for name, cap in streams
        if cap.text.strip()
    ]
    return "\n".join(parts) or None


SPEC = ExecSpec
