"""The ``pytest`` kind: the real pytest (PyPI, a dev dependency) running a real test suite against
the real demo service, through the real CLI; reports read back with junitparser."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from junitparser import JUnitXml
from tests.checks.test_exec import read_pids, wait_gone
from tests.helpers import load_json, run_cli, write_suite

from smokegate.demo import ServiceThread

# Five tests against the demo service, two of them failing on purpose.
TESTS = """
import json, os, urllib.error, urllib.request

BASE = os.environ["SMOKEGATE_BASE_URL"]


def get(path):
    try:
        with urllib.request.urlopen(BASE + path, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_healthz():
    assert get("/healthz") == (200, {"status": "ok"})


def test_items_total():
    assert get("/api/items")[1]["total"] == 3


def test_release_revision_reaches_the_tests():
    assert os.environ["SMOKEGATE_RELEASE_REVISION"] == "42"


def test_version_is_the_release():
    print("token in output:", os.environ["API_TOKEN"])
    assert get("/version")[1]["version"] == "9.9.9"


def test_missing_page():
    status, _ = get("/nope")
    assert status == 200, f"/nope answered {status}"
"""


@pytest.fixture(scope="module")
def demo() -> Iterator[ServiceThread]:
    svc = ServiceThread(ready_after=0.0)
    svc.start()
    yield svc
    svc.stop()


def write_tests(directory: Path, body: str = TESTS) -> Path:
    tests = directory / "functional"
    tests.mkdir(exist_ok=True)
    (tests / "test_shop.py").write_text(textwrap.dedent(body))
    return tests


def suite_with(tmp_path: Path, check: str, port: int = 1) -> Path:
    vars_ = f"""vars:
  base_url: http://127.0.0.1:{port}
  token: {{value: pytest-5ecret-token, secret: true}}
"""
    return write_suite(tmp_path, check, extra_spec=vars_)


CHECK = """- name: functional
  pytest:
    tests: [functional]
    env: {API_TOKEN: "${token}"}
"""


def test_five_tests_two_failing_against_the_demo_service(tmp_path: Path, demo) -> None:
    write_tests(tmp_path)
    suite = suite_with(tmp_path, CHECK, demo.service.ports["http"])
    out = tmp_path / "out"
    cli = run_cli(
        "run",
        str(suite),
        "--var",
        "release.revision=42",
        f"--report=json={out}.json",
        f"--report=junit={out}.xml",
        f"--report=markdown={out}.md",
        f"--report=html={out}.html",
    )
    assert cli.code == 1, cli.text
    (r,) = load_json(Path(f"{out}.json"))["results"]
    assert r["kind"] == "pytest" and r["status"] == "failed"
    cases = {c["name"]: c for c in r["cases"]}
    assert len(r["cases"]) == 5
    assert {n for n, c in cases.items() if c["status"] == "failed"} == {
        "test_version_is_the_release",
        "test_missing_page",
    }
    assert all(c["classname"] == "functional.test_shop" for c in r["cases"])
    version = cases["test_version_is_the_release"]
    assert version["message"].startswith("AssertionError: assert '1.4.2' == '9.9.9'")
    assert "token in output: ***" in version["output"]
    assert cases["test_healthz"]["output"] == ""  # pytest's empty "Captured" headers dropped
    assert cases["test_missing_page"]["message"].startswith("AssertionError: /nope answered 404")
    assert r["message"].startswith("2 of 5 cases failed: functional.test_shop.test_version")
    assert r["details"]["exitCode"] == 1
    # JUnit validates (junitparser reads it) and names the two failures with their assertions.
    (junit_suite,) = list(JUnitXml.fromfile(f"{out}.xml"))
    assert (junit_suite.tests, junit_suite.failures) == (6, 3)  # the check + its 5 cases
    failed = {c.name: c.result[0].message for c in junit_suite if c.result and "/" in c.name}
    assert failed == {
        "functional/functional.test_shop.test_version_is_the_release": version["message"],
        "functional/functional.test_shop.test_missing_page": cases["test_missing_page"]["message"],
    }
    for ext in ("json", "xml", "md", "html"):
        assert "pytest-5ecret-token" not in Path(f"{out}.{ext}").read_text(), ext
    assert "pytest-5ecret-token" not in cli.text
    assert "functional.test_shop.test_missing_page" in cli.out
    assert not (tmp_path / ".pytest_cache").exists()
    # -k check/case: one passing test selected, the check passes.
    cli = run_cli(
        "run", str(suite), "--var", "release.revision=42", "-k", "functional/*test_healthz"
    )
    assert cli.code == 0, cli.text


def test_timeout_kills_pytest_and_what_it_started(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    write_tests(
        tmp_path,
        f"""
        import os, subprocess, time

        def test_hangs():
            child = subprocess.Popen(["sleep", "300"])
            with open({str(pidfile)!r}, "w") as fh:
                fh.write(f"{{os.getpid()}} {{child.pid}}")
            time.sleep(300)
        """,
    )
    suite = suite_with(tmp_path, "- name: hang\n  timeout: 3s\n  pytest: {tests: [functional]}")
    report = tmp_path / "r.json"
    cli = run_cli("run", str(suite), f"--report=json={report}")
    (r,) = load_json(report)["results"]
    assert cli.code == 1 and r["errorKind"] == "timeout", cli.text
    assert wait_gone(read_pids(pidfile, 2)) == []


def test_no_tests_collected_and_bad_args(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    suite = suite_with(tmp_path, "- name: none\n  pytest: {tests: [empty]}")
    report = tmp_path / "r.json"
    run_cli("run", str(suite), f"--report=json={report}")
    (r,) = load_json(report)["results"]
    assert r["status"] == "failed"
    assert {"subject": "exit code", "expected": "0", "actual": "5 (no tests collected)"} in r[
        "evidence"
    ]
    suite = suite_with(tmp_path, "- name: bad\n  pytest: {tests: [empty], args: [--no-such-flag]}")
    run_cli("run", str(suite), f"--report=json={report}")
    (r,) = load_json(report)["results"]
    assert "4 (pytest usage error: check `args`)" in r["message"]
    assert "--no-such-flag" in r["snippet"]


def test_python_without_pytest_fails_at_load_time(tmp_path: Path) -> None:
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    suite = suite_with(tmp_path, "- name: x\n  pytest: {python: bare/bin/python}")
    cli = run_cli("lint", str(suite))
    assert cli.code == 2, cli.text
    python = tmp_path / "bare/bin/python"
    assert (
        f"pytest is not installed for {python} (not installed); install it with:  "
        f"{python} -m pip install pytest"
    ) in cli.text
    assert f"{suite}:10:15: pytest: " in cli.text and "Traceback" not in cli.text
    suite = suite_with(tmp_path, "- name: x\n  pytest: {python: no-such-python3.99}")
    cli = run_cli("lint", str(suite))
    assert "python 'no-such-python3.99' not found" in cli.text and cli.code == 2
