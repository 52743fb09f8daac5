"""The ``junit`` kind and child results: real commands writing real JUnit XML, run through the
real CLI; reports read back with junitparser and the JSON schema."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
from junitparser import JUnitXml
from tests.checks.test_exec import read_pids, wait_gone
from tests.helpers import load_json, run_cli, write_suite

from smokegate.core.cases import Case
from smokegate.report import jsonreport
from smokegate.store.base import run_from_report

XML = """<testsuites><testsuite name="unit">
<testcase classname="shop.cart" name="test_add" time="0.25"/>
<testcase classname="shop.cart" name="test_total" time="0.5"><failure message="assert 3 == 4"
 type="AssertionError">Traceback: line 9 token=$SMOKEGATE_TOKEN</failure>
<system-out>base=$SMOKEGATE_BASE_URL rev=$SMOKEGATE_RELEASE_REVISION</system-out></testcase>
<testcase classname="shop.pay" name="test_refund"><error message="ConnectionError"/></testcase>
<testcase classname="shop.pay" name="test_later"><skipped message="not yet"/></testcase>
</testsuite></testsuites>"""


def junit_check(xml: str = XML, exit_code: int = 1, extra: str = "") -> str:
    body = textwrap.indent(
        f"cat > $SMOKEGATE_RESULTS_DIR/junit.xml <<EOF\n{xml}\nEOF\nexit {exit_code}\n",
        "      ",
    )
    return f"- name: unit\n  junit:\n    command: |\n{body}{extra}"


VARS = """vars:
  base_url: http://shop.local
  token: {value: tok-5ecr3t-value, secret: true}
"""


def run(tmp_path: Path, checks: str, *args: str, extra_spec: str = VARS):
    suite = write_suite(tmp_path, checks, extra_spec=extra_spec)
    out = tmp_path / "out"
    cli = run_cli(
        "run",
        str(suite),
        "--var",
        "release.revision=7",
        *[f"--report={f}={out}.{f}" for f in ("json", "junit", "markdown", "html")],
        *args,
    )
    return cli, load_json(Path(f"{out}.json")), out


def test_cases_become_child_results_in_every_report(tmp_path: Path) -> None:
    cli, report, out = run(tmp_path, junit_check())
    assert cli.code == 1, cli.text
    (r,) = report["results"]
    assert r["status"] == "failed" and r["kind"] == "junit"
    assert [(c["classname"], c["name"], c["status"]) for c in r["cases"]] == [
        ("shop.cart", "test_add", "passed"),
        ("shop.cart", "test_total", "failed"),
        ("shop.pay", "test_refund", "error"),
        ("shop.pay", "test_later", "skipped"),
    ]
    total = r["cases"][1]
    assert total["message"] == "assert 3 == 4" and total["failureType"] == "AssertionError"
    assert total["time"] == 0.5
    # Suite vars and --var release facts reached the tool as SMOKEGATE_* variables.
    assert total["output"] == "base=http://shop.local rev=7"
    assert r["message"].startswith("2 of 4 cases failed: shop.cart.test_total: assert 3 == 4")
    assert r["details"]["cases"] == {
        "passed": 1,
        "failed": 1,
        "error": 1,
        "skipped": 1,
        "total": 4,
    }
    # The secret var reached the tool, and is masked in every report.
    assert "Traceback: line 9 token=***" in total["text"]
    for fmt in ("json", "junit", "markdown", "html"):
        text = Path(f"{out}.{fmt}").read_text()
        assert "tok-5ecr3t-value" not in text, fmt
    assert "tok-5ecr3t-value" not in cli.text
    # JSON: the documented schema, strictly (no undocumented field).
    from tests.report.test_reports import strict

    schema = jsonreport.load_schema()
    jsonschema.validate(report, strict(schema), cls=jsonschema.Draft202012Validator)
    # JUnit: the check, then one testcase per case named CHECK/CASE, counts include cases.
    xml = JUnitXml.fromfile(f"{out}.junit")
    (suite,) = list(xml)
    names = [(c.classname, c.name) for c in suite]
    assert names == [
        ("t", "unit"),
        ("t", "unit/shop.cart.test_add"),
        ("t", "unit/shop.cart.test_total"),
        ("t", "unit/shop.pay.test_refund"),
        ("t", "unit/shop.pay.test_later"),
    ]
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (5, 2, 1, 1)
    failing = list(suite)[2]
    assert failing.result[0].message == "assert 3 == 4"
    assert failing.result[0].type == "AssertionError"
    md = Path(f"{out}.markdown").read_text()
    assert "**Test cases** (4 cases: 1 passed, 1 failed, 1 error, 1 skipped)" in md
    assert "| ❌ | <code>shop.cart.test&#95;total</code> | 500ms | assert 3 == 4 |" in md
    html = Path(f"{out}.html").read_text()
    assert "test cases · 4 cases" in html and "shop.pay.test_refund" in html
    assert "shop.cart.test_total" in cli.out and "assert 3 == 4" in cli.out
    # Read back (in-cluster reports, serve history): the cases survive.
    for loaded in (jsonreport.load_run(report), run_from_report(report)):
        cases = loaded.results[0].cases
        assert [c.name for c in cases] == ["test_add", "test_total", "test_refund", "test_later"]
        assert cases[1] == Case.from_dict(total)


def test_k_selects_cases_of_a_check(tmp_path: Path) -> None:
    # Only the passing and skipped cases: the tool's exit 1 (caused by the others) is ignored.
    cli, report, _ = run(tmp_path, junit_check(), "-k", "unit/shop.cart.test_add")
    (r,) = report["results"]
    assert cli.code == 0, cli.text
    assert [c["name"] for c in r["cases"]] == ["test_add"] and r["status"] == "passed"
    cli, report, _ = run(tmp_path, junit_check(), "-k", "t/unit/shop.pay.*")
    assert [c["name"] for c in report["results"][0]["cases"]] == ["test_refund", "test_later"]
    assert cli.code == 1
    cli, report, _ = run(tmp_path, junit_check(), "-k", "unit/nothing*")
    assert cli.code == 1 and report["results"][0]["evidence"][0] == {
        "subject": "cases",
        "expected": "a case matching nothing*",
        "actual": "none of 4",
    }
    # `!check/case`: everything but the failing and erroring cases.
    cli, report, _ = run(tmp_path, junit_check(), "-k", "!unit/shop.cart.test_total", "-k",
                         "!unit/*refund")  # fmt: skip
    assert [c["name"] for c in report["results"][0]["cases"]] == ["test_add", "test_later"]
    assert cli.code == 0, cli.text
    cli, report, _ = run(tmp_path, junit_check(), "-k", "unit/shop.pay.*", "-k", "!unit/*.test_*")
    assert report["results"][0]["evidence"][0]["expected"] == (
        "a case matching shop.pay.* but not *.test_*"
    )
    # The whole check by id still works, and a plain pattern selects no case.
    cli, report, _ = run(tmp_path, junit_check(), "-k", "t/unit")
    assert len(report["results"][0]["cases"]) == 4


def test_crash_missing_and_invalid_results(tmp_path: Path) -> None:
    passing = '<testsuite><testcase name="a"/></testsuite>'
    cli, report, _ = run(tmp_path, junit_check(passing, exit_code=0))
    assert cli.code == 0 and report["results"][0]["message"] == "1 case: 1 passed"
    # Exit 2 with every case passing: the tool failed in a way no case explains.
    cli, report, _ = run(tmp_path, junit_check(passing, exit_code=2))
    r = report["results"][0]
    assert cli.code == 1 and r["evidence"] == [
        {"subject": "exit code", "expected": "0", "actual": "2 with no failing test case"}
    ]
    cli, report, _ = run(tmp_path, junit_check("<html>not junit</html>", exit_code=0))
    assert "is not JUnit XML (root element <html>)" in report["results"][0]["message"]
    cli, report, _ = run(tmp_path, junit_check("<testsuite><testcase", exit_code=0))
    assert "is not valid XML" in report["results"][0]["message"]
    cli, report, _ = run(tmp_path, "- name: none\n  junit: {command: 'echo collected nothing >&2'}")
    r = report["results"][0]
    assert "no results file at" in r["message"] and r["snippet"] == "collected nothing"
    cli, report, _ = run(tmp_path, junit_check("<testsuites/>", exit_code=0))
    assert report["results"][0]["evidence"][0]["actual"] == "none reported"


def test_stale_results_file_is_not_read(tmp_path: Path) -> None:
    old = tmp_path / "old.xml"
    old.write_text('<testsuite><testcase name="a"/></testsuite>')
    import os

    os.utime(old, (1_000_000, 1_000_000))
    cli, report, _ = run(tmp_path, "- name: old\n  junit: {command: ['true'], results: old.xml}")
    assert cli.code == 1
    assert "is older than this attempt" in report["results"][0]["message"]


def test_retry_reruns_the_whole_tool(tmp_path: Path) -> None:
    # The tool fails its first run and passes the second: two runs of the tool, one result.
    counter = tmp_path / "runs"
    xml = (
        '<testsuite><testcase name="flaky">'
        "$( [ $(wc -l < {c}) -lt 2 ] && echo '<failure message=\"first\"/>' )"
        "</testcase></testsuite>"
    ).replace("{c}", str(counter))
    check = f"""- name: flaky
  retry: {{attempts: 3, interval: 10ms}}
  junit:
    command: |
      echo run >> {counter}
      cat > $SMOKEGATE_RESULTS_DIR/junit.xml <<EOF
      {xml}
      EOF
"""
    cli, report, _ = run(tmp_path, check)
    r = report["results"][0]
    assert cli.code == 0, cli.text
    assert counter.read_text().count("run") == 2
    assert [a["ok"] for a in r["attempts"]] == [False, True] and r["recovered"] is True
    assert r["cases"] == [dict(r["cases"][0], name="flaky", status="passed")]


def test_timeout_kills_the_tools_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    check = f"""- name: hang
  timeout: 500ms
  junit:
    command: "sleep 300 & echo $$ $! > {pidfile}; wait"
"""
    cli, report, _ = run(tmp_path, check)
    r = report["results"][0]
    assert r["errorKind"] == "timeout" and cli.code == 1
    assert wait_gone(read_pids(pidfile, 2)) == []


def test_missing_tool_fails_at_load_time(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, "- name: x\n  junit: {command: [no-such-runner-xyz, --ci]}")
    cli = run_cli("lint", str(suite))
    assert cli.code == 2, cli.text
    assert f"{suite}:7:24: junit.command" in cli.text
    assert (
        "no-such-runner-xyz is not installed (not on PATH); install it, or give its full path"
        in cli.text
    )
    assert "Traceback" not in cli.text


def test_relative_command_is_found_from_the_suite_directory(tmp_path: Path) -> None:
    """`./bin/x.sh` is looked up (at load time) and run from the suite's directory, whatever
    the directory smokegate was started in."""
    (tmp_path / "bin").mkdir()
    script = tmp_path / "bin" / "tests.sh"
    script.write_text(
        "#!/bin/sh\necho '<testsuite><testcase name=\"ok\"/></testsuite>'"
        " > $SMOKEGATE_RESULTS_DIR/junit.xml\n"
    )
    script.chmod(0o755)
    suite = write_suite(tmp_path, "- name: rel\n  junit: {command: [./bin/tests.sh]}")
    report = tmp_path / "r.json"
    cli = run_cli("run", str(suite), f"--report=json={report}", cwd="/")
    assert cli.code == 0, cli.text
    assert load_json(report)["results"][0]["cases"][0]["name"] == "ok"


def test_case_round_trip_is_lenient() -> None:
    assert Case.from_dict({"name": "a", "status": "weird"}).status == "error"
    c = Case("n", "k", "failed", 1.5, "m", "T", "body", "out")
    assert Case.from_dict(json.loads(json.dumps(c.to_dict()))) == c
