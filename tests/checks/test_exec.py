"""The ``exec`` check: real commands, real process groups."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from tests.helpers import load_json, run_cli, write_suite

from smokegate.checks import exec as execcheck
from smokegate.checks.base import CheckContext, CheckFailed, ErrorKind, Outcome


def spec(**fields: Any) -> execcheck.ExecSpec:
    return execcheck.ExecSpec.model_validate(fields)


async def run(ctx: CheckContext, **fields: Any) -> Outcome:
    return await execcheck.run(spec(**fields), ctx)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper that is not us counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pids: list[int], within: float = 3.0) -> list[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def read_pids(path: Path, count: int, within: float = 5.0) -> list[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists():
            pids = [int(x) for x in path.read_text().split()]
            if len(pids) >= count:
                return pids
        time.sleep(0.02)
    raise AssertionError(f"{path} never held {count} pids")


# A command that records its own pid and its background child's, then waits forever.
HANG = "sleep 300 & echo $$ $! > {pidfile}; wait"


# --- through the CLI ---------------------------------------------------------------------------


def test_cli_pass_fail_and_config_error(run_suite, tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "data.txt").write_text("from cwd\n")
    res = run_suite(
        """
        - name: argv
          exec:
            command: [echo, "hello  world", "$HOME"]
            expect: {stdout: {equals: "hello  world $HOME"}}
        - name: shell-string
          exec:
            command: "printf 'a\\nb\\n' | wc -l; cat data.txt; echo $GREETING"
            cwd: scripts
            env: {GREETING: hi-there}
            expect: {stdout: {regex: '^2$', contains: [from cwd, hi-there]}}
        - name: bad-exit
          exec:
            command: "echo progress; echo 'fatal: database locked' >&2; exit 3"
        - name: bad-output
          exec:
            command: [echo, "status: degraded"]
            expect:
              exitCode: [0, 1]
              stdout: {contains: ok, notContains: degraded, regex: '^status: (ok|fine)$'}
              stderr: {empty: false}
        - name: not-installed
          exec: {command: [definitely-not-a-command-4d1f]}
        """
    )
    assert res.code == 1, res.cli.text
    assert res.result("argv")["status"] == "passed", res.cli.text
    assert res.result("argv")["details"]["exitCode"] == 0
    assert res.result("shell-string")["status"] == "passed", res.result("shell-string")

    bad = res.result("bad-exit")
    assert bad["errorKind"] == ErrorKind.EXPECTATION
    assert bad["evidence"] == [{"subject": "exit code", "expected": "0", "actual": "3"}]
    # stderr explains a bad exit code best, so it comes first in the snippet.
    assert bad["snippet"].startswith("stderr: fatal: database locked")
    assert "stdout: progress" in bad["snippet"]

    out = res.result("bad-output")
    assert [(e["subject"], e["expected"]) for e in out["evidence"]] == [
        ("stdout", 'containing "ok"'),
        ("stdout", 'not containing "degraded"'),
        ("stdout", "matching /^status: (ok|fine)$/"),
        ("stderr", "not empty"),
    ]
    assert out["snippet"].startswith("stdout: status: degraded")

    missing = res.result("not-installed")
    assert missing["errorKind"] == ErrorKind.CONFIG
    assert "command not found: 'definitely-not-a-command-4d1f'" in missing["message"]


def test_cli_timeout_kills_the_whole_process_group(run_suite, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    res = run_suite(
        f"""
        - name: hangs
          timeout: 700ms
          exec: {{command: "{HANG.format(pidfile=pidfile)}"}}
        """
    )
    assert res.code == 1, res.cli.text
    r = res.result("hangs")
    assert r["errorKind"] == ErrorKind.TIMEOUT
    assert "timed out after 700ms" in r["message"]
    pids = read_pids(pidfile, 2)
    # The CLI has exited; its children were in their own session, so only the check's cleanup
    # can have ended them.
    assert wait_gone(pids) == [], f"left running: {pids}"


# --- run() directly ----------------------------------------------------------------------------


async def test_cancelled_attempt_kills_shell_and_children(ctx, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(1.0):
            await run(ctx, command=HANG.format(pidfile=pidfile))
    pids = read_pids(pidfile, 2)
    assert wait_gone(pids, within=1.0) == [], f"left running: {pids}"


async def test_background_child_holding_stdout_does_not_stall(ctx, tmp_path: Path) -> None:
    pidfile = tmp_path / "bg"
    t0 = time.perf_counter()
    outcome = await run(
        ctx,
        command=f"sleep 300 & echo $! > {pidfile}; echo started",
        expect={"stdout": {"equals": "started"}},
    )
    assert outcome.ok, outcome.message
    assert time.perf_counter() - t0 < 3
    assert wait_gone(read_pids(pidfile, 1), within=1.0) == []


async def test_output_is_capped_to_its_tail(ctx) -> None:
    size = 3 * 1024 * 1024
    outcome = await run(
        ctx,
        command=[
            sys.executable,
            "-c",
            f"import sys; sys.stdout.write('x' * {size}); sys.stdout.write('THE END')",
        ],
        expect={"stdout": {"contains": "THE END", "notContains": "THE END"}},
    )
    assert not outcome.ok
    assert outcome.details["stdoutBytes"] == size + len("THE END")
    assert [m.expected for m in outcome.evidence] == ['not containing "THE END"']
    assert outcome.snippet is not None
    assert outcome.snippet.endswith("THE END") and len(outcome.snippet) < 1100
    assert len(outcome.evidence[0].actual) < 250


async def test_stdin_env_and_inherit_env(ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMOKEGATE_TEST_INHERITED", "yes")
    outcome = await run(
        ctx,
        command=["sh", "-c", "tr a-z A-Z; echo ${SMOKEGATE_TEST_INHERITED:-unset} $EXTRA"],
        stdin="quiet input\n",
        env={"EXTRA": "x1"},
        expect={"stdout": {"equals": "QUIET INPUT\nyes x1"}},
    )
    assert outcome.ok, outcome.message
    outcome = await run(
        ctx,
        command=["/bin/sh", "-c", "echo ${SMOKEGATE_TEST_INHERITED:-unset}"],
        inheritEnv=False,
        expect={"stdout": {"equals": "unset"}},
    )
    assert outcome.ok, outcome.message


async def test_killed_by_signal_is_named(ctx) -> None:
    outcome = await run(ctx, command="kill -TERM $$")
    assert not outcome.ok
    assert outcome.evidence[0].actual == "killed by SIGTERM"
    assert outcome.details["exitCode"] == -15


async def test_exit_code_127_from_shell_is_explained(ctx) -> None:
    outcome = await run(ctx, command="no-such-tool-93ab --version")
    assert outcome.evidence[0].actual == "127 (command not found)"
    assert "not found" in (outcome.snippet or "")


async def test_config_errors(ctx, tmp_path: Path) -> None:
    with pytest.raises(CheckFailed) as err:
        await run(ctx, command=["true"], cwd=str(tmp_path / "nope"))
    assert err.value.kind == ErrorKind.CONFIG
    assert "does not exist" in err.value.message
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)  # no x bit at all: not even root may execute it
    with pytest.raises(CheckFailed) as err:
        await run(ctx, command=[str(script)])
    assert err.value.kind == ErrorKind.CONFIG
    assert "permission denied" in err.value.message


def test_spec_validation(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="must not be empty"):
        spec(command=[])
    with pytest.raises(ValidationError, match="must not be empty"):
        spec(command="   ")
    with pytest.raises(ValidationError, match="invalid regex"):
        spec(command=["true"], expect={"stdout": {"regex": "("}})
    assert spec(command=["env"], env={"PORT": 8080, "DEBUG": True}).env == {
        "PORT": "8080",
        "DEBUG": "true",
    }
    s = spec(command="echo hi")
    assert s.argv() == ["/bin/sh", "-c", "echo hi"]
    rel = execcheck.ExecSpec.model_validate(
        {"command": ["true"], "cwd": "sub"}, context={"base_dir": str(tmp_path)}
    )
    assert rel.cwd == str(tmp_path / "sub")


def test_cli_secret_cut_by_the_output_tail_is_not_leaked(tmp_path: Path) -> None:
    # Evidence shows the last 160 characters of the output: with 150 `x` after the secret, the
    # cut falls inside it. Redacting only the shortened text would leave its tail readable.
    secret = "Kq7-Wm2pLz9rTn4vBx8yHs3dFg6jNc5tRe1uQa"
    suite = write_suite(
        tmp_path,
        f"""
        - name: echoes-secret
          exec:
            command: [printf, "%s\\n", "${{tok}}{"x" * 150}"]
            expect: {{stdout: {{contains: not-in-the-output}}}}
        """,
        extra_spec=f"""
        vars:
          tok: {{value: "{secret}", secret: true}}
        """,
    )
    report = tmp_path / "report.json"
    cli = run_cli("run", str(suite), "--report", f"json={report}")
    assert cli.code == 1, cli.text
    text = report.read_text()
    result = load_json(report)["results"][0]
    assert result["evidence"][0]["subject"] == "stdout", result
    assert "***" in result["evidence"][0]["actual"] + result["snippet"], result
    fragments = {secret[i : i + 8] for i in range(len(secret) - 7)}
    for where, content in (("JSON report", text), ("console", cli.text)):
        leaked = sorted(f for f in fragments if f in content)
        assert not leaked, f"{where} shows part of the secret: {leaked}\n{content}"
