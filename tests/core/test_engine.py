"""Engine semantics: retries, `within`, needs, fail-fast, concurrency, interruption."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smokegate.api import plan_run
from smokegate.checks import KINDS, Kind
from smokegate.checks.base import CheckContext
from smokegate.core.results import RunResult, Status
from smokegate.engine.runner import RunOptions, execute
from smokegate.suite import model
from tests.core import probe_kind
from tests.helpers import run_cli, write_suite


@pytest.fixture
def probe() -> Iterator[None]:
    """Register the engine-test kind `probe` (tests/core/probe_kind.py) for one test."""
    KINDS["probe"] = Kind("probe", "tests.core.probe_kind")
    model.kind_names.cache_clear()
    model.kind_model.cache_clear()
    model.check_adapter.cache_clear()
    probe_kind.calls.clear()
    probe_kind.time_left.clear()
    probe_kind.peak = 0
    yield
    del KINDS["probe"]
    model.kind_names.cache_clear()
    model.kind_model.cache_clear()
    model.check_adapter.cache_clear()


def _run(path: Path, **opts: object) -> RunResult:
    plan = plan_run([str(path)])
    return asyncio.run(
        execute(plan.suites, plan.checks, CheckContext(redactor=plan.redactor), RunOptions(**opts))
    )  # type: ignore[arg-type]


def _status(run: RunResult) -> dict[str, str]:
    return {r.name: r.status.value for r in run.results}


def test_attempts_backoff_and_recovered(probe: None, tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        """
        - name: flaky
          retry: {attempts: 5, interval: 50ms, backoff: 2}
          probe: {key: f, passFromAttempt: 3}
        - name: broken
          retry: {attempts: 2, interval: 10ms}
          probe: {key: b, fail: true}
    """,
    )
    run = _run(suite)
    flaky, broken = run.results
    assert flaky.status is Status.PASSED and flaky.recovered and len(flaky.attempts) == 3
    gaps = [
        b.started_at - (a.started_at + a.duration)
        for a, b in zip(flaky.attempts, flaky.attempts[1:], strict=False)
    ]
    assert 0.045 <= gaps[0] < 0.09 and 0.095 <= gaps[1] < 0.16  # 50ms then 100ms
    assert broken.status is Status.FAILED and not broken.recovered
    assert len(broken.attempts) == 2 and "after 2 attempts" in broken.message
    assert [a.ok for a in flaky.attempts] == [False, False, True]


def test_within_deadline_bounds_retries(probe: None, tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        """
        - name: never
          retry: {within: 600ms, interval: 100ms}
          probe: {key: n, fail: true, sleep: 0.01}
    """,
    )
    start = time.perf_counter()
    run = _run(suite)
    elapsed = time.perf_counter() - start
    (r,) = run.results
    assert r.status is Status.FAILED
    assert 4 <= len(r.attempts) <= 7
    assert 0.55 <= elapsed < 1.2


def test_attempt_timeout_is_a_failure_with_kind(probe: None, tmp_path: Path) -> None:
    suite = write_suite(tmp_path, "- {name: slow, timeout: 100ms, probe: {key: s, sleep: 5}}")
    (r,) = _run(suite).results
    assert r.status is Status.FAILED and r.error_kind == "timeout"
    assert "timed out after 100ms" in r.message and r.duration < 1


def test_needs_orders_and_skips_dependents(probe: None, tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        """
        - {name: db, probe: {key: db, fail: true}}
        - {name: api, needs: [db], probe: {key: api}}
        - {name: ui, needs: [api], probe: {key: ui}}
        - {name: cache, probe: {key: cache, sleep: 0.05}}
        - {name: after-cache, needs: [cache], probe: {key: ac}}
    """,
    )
    run = _run(suite)
    assert _status(run) == {
        "db": "failed",
        "api": "skipped",
        "ui": "skipped",
        "cache": "passed",
        "after-cache": "passed",
    }
    by = {r.name: r for r in run.results}
    assert by["api"].message == "needs 'db', which failed"
    assert by["ui"].message == "needs 'api', which was skipped"
    assert by["after-cache"].started_at >= by["cache"].started_at + by["cache"].duration - 0.001
    assert probe_kind.calls["api"] == 0


def test_fail_fast_cancels_and_skips_the_rest(probe: None, tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        """
        - {name: boom, probe: {key: boom, fail: true}}
        - {name: long, probe: {key: long, sleep: 5}}
        - {name: later, needs: [long], probe: {key: later}}
    """,
    )
    start = time.perf_counter()
    run = _run(suite, fail_fast=True)
    assert time.perf_counter() - start < 2
    assert _status(run) == {"boom": "failed", "long": "skipped", "later": "skipped"}
    assert not run.ok


def test_concurrency_limit_is_respected(probe: None, tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        """
        - name: c
          matrix: {i: {range: [0, 20]}}
          probe: {key: "c${i}", sleep: 0.02}
    """,
    )
    run = _run(suite, concurrency=4)
    assert run.counts()["passed"] == 20
    assert probe_kind.peak == 4


def test_unexpected_exception_is_an_error_not_a_crash(probe: None, tmp_path: Path) -> None:
    suite = write_suite(tmp_path, "- {name: bug, probe: {key: x, crash: true}}")
    (r,) = _run(suite).results
    assert r.status is Status.ERROR and r.error_kind == "internal"
    assert r.message == "ZeroDivisionError: boom"


def test_skip_in_suite(probe: None, tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        """
        - {name: a, skip: "waiting for INFRA-12", probe: {key: a}}
        - {name: b, needs: [a], probe: {key: b}}
    """,
    )
    run = _run(suite)
    assert _status(run) == {"a": "skipped", "b": "skipped"}
    assert run.results[0].message == "waiting for INFRA-12" and run.ok


def test_eventually_ready_endpoint_recovers_within_10s(slow_start_service, tmp_path: Path) -> None:
    """Acceptance: 503 for the first 3 s, then 200 — passes under within: 10s, recovered."""
    port = slow_start_service.service.ports["http"]
    suite = write_suite(
        tmp_path,
        f"""
        - name: ready
          retry: {{within: 10s, interval: 500ms}}
          http: {{url: "http://127.0.0.1:{port}/ready", expect: {{status: 200}}}}
    """,
    )
    report = tmp_path / "r.json"
    res = run_cli("run", str(suite), "--report", f"json={report}")
    assert res.code == 0, res.text
    (r,) = json.loads(report.read_text())["results"]
    assert r["status"] == "passed" and r["recovered"] is True
    assert len(r["attempts"]) > 1 and r["attempts"][0]["ok"] is False
    assert "recovered after" in res.out


def test_eventually_ready_endpoint_fails_within_2s(slow_start_service, tmp_path: Path) -> None:
    port = slow_start_service.service.ports["http"]
    suite = write_suite(
        tmp_path,
        f"""
        - name: ready
          retry: {{within: 2s, interval: 500ms}}
          http: {{url: "http://127.0.0.1:{port}/ready", expect: {{status: 200}}}}
    """,
    )
    report = tmp_path / "r.json"
    res = run_cli("run", str(suite), "--report", f"json={report}")
    assert res.code == 1, res.text
    (r,) = json.loads(report.read_text())["results"]
    assert r["status"] == "failed" and r["recovered"] is False
    assert r["evidence"] == [{"subject": "status", "expected": "200", "actual": "503"}]
    assert 3 <= len(r["attempts"]) <= 6


def test_ctrl_c_stops_cleanly_and_writes_reports(probe: None, tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        """
        - {name: quick, probe: {key: q}}
        - {name: slow, probe: {key: s, sleep: 30}}
    """,
    )
    report = tmp_path / "r.json"
    code = (
        "import sys; from smokegate.checks import KINDS, Kind; "
        "KINDS['probe'] = Kind('probe', 'tests.core.probe_kind'); "
        "from smokegate.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "run", str(suite), "--report", f"json={report}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        cwd=Path(__file__).parents[2],
    )
    deadline = time.time() + 15
    out = ""
    assert proc.stdout is not None
    while time.time() < deadline:  # wait until the quick check has been reported
        line = proc.stdout.readline()
        out += line
        if "quick" in line:
            break
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=15)
    assert proc.returncode == 130, out + rest + err
    data = json.loads(report.read_text())
    assert data["interrupted"] is True
    assert {r["name"]: r["status"] for r in data["results"]} == {
        "quick": "passed",
        "slow": "skipped",
    }
    assert "INTERRUPTED" in out + rest


def test_a_check_knows_how_long_its_attempt_has_left(probe: None, tmp_path: Path) -> None:
    """``ctx.time_left()``: the attempt's timeout, or the ``within`` deadline when that comes
    first; every attempt starts its own clock; None outside an attempt."""
    suite = write_suite(
        tmp_path,
        """
        - name: own-timeout
          timeout: 2s
          probe: {key: t}
        - name: within
          timeout: 5s
          retry: {within: 1s, interval: 10ms}
          probe: {key: w, sleep: 0.2, passFromAttempt: 3}
        """,
    )
    run = _run(suite, concurrency=1)
    assert _status(run) == {"own-timeout": "passed", "within": "passed"}
    (own,) = probe_kind.time_left["t"]
    assert own is not None and 1.8 < own <= 2.0
    first, second, third = probe_kind.time_left["w"]
    assert first is not None and second is not None and third is not None
    assert 0.9 < first <= 1.0  # the `within` deadline, not the 5s timeout
    assert second < first - 0.15 and third < second - 0.15  # the same deadline, nearer each time
    assert CheckContext().time_left() is None
