"""``smokegate run --workers N``: one run across processes, one merged report.

Every test runs the real CLI against a real nginx (tests/servers/nginx.py) and compares the
sharded run with the single-process run of the same suite: same results in the same order, the
same exit code. The crash test kills a real worker process (``kill -9`` of the exec check's
parent, which is the worker running it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smokegate.api import RunSettings, plan_run
from smokegate.app.shard import execute_sharded
from smokegate.core.loop import run_async
from smokegate.engine.shard import components, partition, split_concurrency
from tests.helpers import run_cli, write_suite
from tests.servers.nginx import NginxServer


@pytest.fixture(scope="module")
def nginx() -> Iterator[NginxServer]:
    with NginxServer() as server:
        yield server


def _report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _outcome(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """What must not depend on the number of processes: each result's id, status, message."""
    return [(r["id"], r["status"], r["message"]) for r in data["results"]]


def _both(
    suite: Path, tmp_path: Path, *extra: str
) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    r1 = run_cli("run", str(suite), "-j", "1", "--report", f"json={one}", *extra)
    r2 = run_cli(
        "run", str(suite), "-j", "2", "--report", f"json={two}", "--report",
        f"junit={tmp_path / 'two.xml'}", *extra,
    )  # fmt: skip
    return r1, r2, _report(one), _report(two)


MIXED = """
- name: api
  matrix: {{i: {{range: [0, 40]}}}}
  http:
    url: "{url}/json?i=${{i}}"
    expect: {{status: 200, json: {{"$.status": ok}}}}
- name: login
  http: {{url: "{url}/status/200"}}
- name: after-login
  needs: [login]
  http: {{url: "{url}/json"}}
- name: last
  needs: [after-login]
  http: {{url: "{url}/json", expect: {{json: {{"$.version": "1.2.3"}}}}}}
"""


def test_a_passing_suite_gives_the_same_report_with_two_workers(
    nginx: NginxServer, tmp_path: Path
) -> None:
    suite = write_suite(tmp_path, MIXED.format(url=nginx.url))
    r1, r2, one, two = _both(suite, tmp_path)
    assert r1.code == r2.code == 0, r1.text + r2.text
    assert _outcome(one) == _outcome(two)
    assert len(two["results"]) == 43 and two["counts"]["passed"] == 43
    assert "in one process" not in r2.err
    # One JUnit report for the merged run, every check in it once.
    junit = (tmp_path / "two.xml").read_text()
    assert junit.count("<testcase ") == 43
    assert "PASSED 43 passed" in r2.out


def test_a_failing_suite_fails_the_same_way_with_two_workers(
    nginx: NginxServer, tmp_path: Path
) -> None:
    """Failures, and the skips of the checks that need a failed one, are decided in one shard:
    the same messages and exit code as in one process."""
    suite = write_suite(
        tmp_path,
        MIXED.format(url=nginx.url).replace("/status/200", "/status/503")
        + f"""
- name: broken
  matrix: {{i: {{range: [0, 6]}}}}
  http: {{url: "{nginx.url}/status/500?i=${{i}}"}}
""",
    )
    r1, r2, one, two = _both(suite, tmp_path)
    assert r1.code == r2.code == 1, r1.text + r2.text
    assert _outcome(one) == _outcome(two)
    by_name = {r["name"]: r for r in two["results"]}
    assert by_name["login"]["status"] == "failed"
    assert by_name["after-login"]["status"] == "skipped"
    assert by_name["after-login"]["message"] == "needs 'login', which failed"
    assert by_name["last"]["message"] == "needs 'after-login', which was skipped"
    assert two["counts"] == one["counts"]
    assert two["counts"]["failed"] == 7 and two["counts"]["passed"] == 40
    assert "FAILED 40 passed, 7 failed, 2 skipped" in r2.out


def test_secrets_stay_redacted_with_two_workers(nginx: NginxServer, tmp_path: Path) -> None:
    """nginx echoes the secret header back in a failing body: the workers scrub results
    before they cross the pipe, and no output or report shows the value."""
    token = "tok-s3cr3t-value-" + str(os.getpid())
    suite = write_suite(
        tmp_path,
        f"""
        - name: echo
          matrix: {{i: {{range: [0, 4]}}}}
          http:
            url: "{nginx.url}/headers?i=${{i}}"
            headers: {{X-Custom: "${{token}}"}}
            expect: {{json: {{"$.x_custom": "something else"}}}}
        """,
        extra_spec='vars:\n  token: {value: "${env:SG_TEST_TOKEN}", secret: true}',
    )
    env = {"SG_TEST_TOKEN": token}
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    r1 = run_cli("run", str(suite), "-j", "1", "-v", "--report", f"json={one}", env=env)
    r2 = run_cli(
        "run", str(suite), "-j", "2", "-v", "--report", f"json={two}",
        "--report", f"junit={tmp_path / 'two.xml'}", env=env,
    )  # fmt: skip
    assert r1.code == r2.code == 1, r1.text + r2.text
    assert _outcome(_report(one)) == _outcome(_report(two))
    for text in (r2.out, r2.err, two.read_text(), (tmp_path / "two.xml").read_text()):
        assert token not in text
    # The echoed value reached the evidence, masked.
    assert _report(two)["results"][0]["evidence"][0]["actual"] == '"***"'


def test_checks_linked_by_needs_share_a_shard(nginx: NginxServer, tmp_path: Path) -> None:
    suite = write_suite(tmp_path, MIXED.format(url=nginx.url))
    plan = plan_run([str(suite)])
    ids = [c.id for c in plan.checks]
    linked = {ids.index("t/login"), ids.index("t/after-login"), ids.index("t/last")}
    assert linked in [set(g) for g in components(plan.checks)]
    shards = partition(plan.checks, 2)
    assert len(shards) == 2
    assert sum(1 for s in shards if linked <= set(s)) == 1  # all three in one shard
    assert sorted(i for s in shards for i in s) == list(range(len(ids)))  # each check once
    assert abs(len(shards[0]) - len(shards[1])) <= 3
    assert split_concurrency(5, 2) == [3, 2]
    # The library path: two processes really ran, and the merged run is in plan order.
    sharded = run_async(execute_sharded(plan, RunSettings(concurrency=8), 2))
    assert sharded.workers == 2 and not sharded.crashes
    assert [r.id for r in sharded.run.results] == ids


def test_a_suite_linked_end_to_end_runs_in_one_process_and_says_why(
    nginx: NginxServer, tmp_path: Path
) -> None:
    suite = write_suite(
        tmp_path,
        f"""
        - {{name: a, http: {{url: "{nginx.url}/json"}}}}
        - {{name: b, needs: [a], http: {{url: "{nginx.url}/json"}}}}
        - {{name: c, needs: [a], http: {{url: "{nginx.url}/json"}}}}
        """,
    )
    res = run_cli("run", str(suite), "-j", "2")
    assert res.code == 0, res.text
    assert (
        "--workers 2: running in one process: every check is linked to the others by needs"
        in res.err
    )


def test_a_worker_that_dies_is_an_error_not_a_hang(nginx: NginxServer, tmp_path: Path) -> None:
    """The second check runs in worker 2 (checks are dealt round-robin) and SIGKILLs it: the
    run ends at once with exit 4, worker 1's checks passed, worker 2's unfinished ones are
    errors saying why, and the report has every check in plan order."""
    suite = write_suite(
        tmp_path,
        f"""
        - {{name: first, http: {{url: "{nginx.url}/json"}}}}
        - {{name: killer, exec: {{command: "kill -9 $PPID; sleep 5"}}}}
        - name: rest
          matrix: {{i: {{range: [0, 10]}}}}
          exec: {{command: "sleep 1"}}
        """,
    )
    report = tmp_path / "r.json"
    t0 = time.monotonic()
    res = run_cli("run", str(suite), "-j", "2", "--report", f"json={report}", timeout=60)
    assert time.monotonic() - t0 < 30
    assert res.code == 4, res.text
    assert "worker 2 of 2 died (killed by SIGKILL)" in res.err
    data = _report(report)
    results = {r["name"]: r for r in data["results"]}
    assert [r["name"] for r in data["results"]] == ["first", "killer"] + [
        f"rest[i={i}]" for i in range(10)
    ]
    assert results["first"]["status"] == "passed"
    assert results["killer"]["status"] == "error"
    assert "worker 2 of 2 died (killed by SIGKILL)" in results["killer"]["message"]
    # Worker 1 ran the odd-indexed rest checks (plan indices 2, 4, ...) to the end.
    assert all(results[f"rest[i={i}]"]["status"] == "passed" for i in range(0, 10, 2))


def test_fail_fast_stops_the_other_shards_too(nginx: NginxServer, tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        f"""
        - {{name: bad, http: {{url: "{nginx.url}/status/500"}}}}
        - {{name: slow, timeout: 60s, exec: {{command: "sleep 30"}}}}
        """,
    )
    report = tmp_path / "r.json"
    t0 = time.monotonic()
    res = run_cli("run", str(suite), "-j", "2", "-x", "--report", f"json={report}")
    assert time.monotonic() - t0 < 20, res.text
    assert res.code == 1, res.text
    results = {r["name"]: r for r in _report(report)["results"]}
    assert results["bad"]["status"] == "failed"
    assert results["slow"]["status"] == "skipped"
    assert results["slow"]["message"] == "cancelled: --fail-fast"


def test_ctrl_c_stops_every_worker_and_still_reports(nginx: NginxServer, tmp_path: Path) -> None:
    marker = f"{os.getpid() % 1000 + 3}.{time.time_ns() % 1000:03d}"
    suite = write_suite(
        tmp_path,
        f"""
        - {{name: quick, http: {{url: "{nginx.url}/json"}}}}
        - {{name: slow, timeout: 60s, exec: {{command: "sleep {marker}"}}}}
        - {{name: slow2, timeout: 60s, exec: {{command: "sleep {marker}"}}}}
        """,
    )
    report = tmp_path / "r.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "smokegate", "run", str(suite), "-j", "2", "-v",
         "--report", f"json={report}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    deadline = time.time() + 30
    out = ""
    while time.time() < deadline and "quick" not in out:
        out += proc.stdout.readline()
    for _ in range(100):  # both sleeps started
        found = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True)
        if len(found.stdout.split()) >= 2:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + rest + err
    data = _report(report)
    assert data["interrupted"] is True
    assert {r["name"]: r["status"] for r in data["results"]} == {
        "quick": "passed",
        "slow": "skipped",
        "slow2": "skipped",
    }
    left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True)
    assert left.stdout == "", "a check's process outlived the run"
    # The forked workers have the parent's command line: none of them is left either.
    workers = subprocess.run(["pgrep", "-f", str(suite)], capture_output=True, text=True)
    assert workers.stdout == "", "a worker process outlived the run"


def test_workers_stop_when_the_parent_is_killed(tmp_path: Path) -> None:
    """A CI timeout may SIGKILL smokegate: its workers see their control pipe close, stop
    their checks (killing the checks' processes) and exit; nothing is left running."""
    marker = f"{os.getpid() % 1000 + 7}.{time.time_ns() % 1000:03d}"
    suite = write_suite(
        tmp_path,
        f"""
        - {{name: a, timeout: 60s, exec: {{command: "sleep {marker}"}}}}
        - {{name: b, timeout: 60s, exec: {{command: "sleep {marker}"}}}}
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "smokegate", "run", str(suite), "-j", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def running(pattern: str) -> list[str]:
        found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
        return found.stdout.split()

    for _ in range(150):
        if len(running(f"sleep {marker}")) >= 2:
            break
        time.sleep(0.1)
    assert len(running(f"sleep {marker}")) >= 2
    assert len(running(str(suite))) == 3  # the parent and its two workers
    proc.kill()
    proc.wait(10)
    for _ in range(100):
        if not running(str(suite)) and not running(f"sleep {marker}"):
            break
        time.sleep(0.1)
    assert running(str(suite)) == [], "a worker outlived its parent"
    assert running(f"sleep {marker}") == [], "a check's process outlived the run"


def test_workers_flag_values(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, '- {name: a, exec: {command: ["true"]}}')
    bad = run_cli("run", str(suite), "-j", "0")
    assert bad.code == 2 and "at least 1" in bad.err
    bad = run_cli("run", str(suite), "-j", "many")
    assert bad.code == 2 and "use a number or 'auto'" in bad.err
    ok = run_cli("run", str(suite), "-j", "auto")
    assert ok.code == 0, ok.text
    help_text = run_cli("run", "--help").out
    assert "--workers N|auto" in help_text and "one per\n" in help_text
