"""File reporters (JUnit, JSON, markdown, HTML): content, escaping, size limits, redaction, and the
CLI writing all four (plus ``$GITHUB_STEP_SUMMARY``) for a real failing run."""

from __future__ import annotations

import copy
import html as htmllib
import json
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from junitparser import Error, Failure, JUnitXml, Properties, Skipped
from tests.helpers import free_port, run_cli, write_suite

from smokegate.checks.base import ErrorKind, Mismatch
from smokegate.core.results import (
    REPORT_SCHEMA,
    Attempt,
    CheckResult,
    RunResult,
    Status,
    SuiteInfo,
)
from smokegate.core.secrets import Redactor
from smokegate.report import (
    FORMATS,
    ReportTarget,
    html,
    jsonreport,
    junit,
    markdown,
    write_reports,
)
from smokegate.report import render as render_report

REPO = Path(__file__).resolve().parents[2]

# --- hand-built runs: every status, evidence, retries, a log, hostile text -------------------

T0 = 1_700_000_000.0
SECRET = "hunter2-Sup3rS3cret-token"
NASTY_NAME = "<script>alert(1)</script>"


def check(
    suite: str,
    name: str,
    status: Status,
    *,
    kind: str = "http",
    start: float = T0,
    attempts: list[tuple[float, float, bool, str, str | None]] | None = None,
    **fields,
) -> CheckResult:
    """A result whose attempts are (offset, duration, ok, message, errorKind) tuples."""
    atts = [
        Attempt(i + 1, start + off, dur, ok, msg, kind_)
        for i, (off, dur, ok, msg, kind_) in enumerate(attempts or [])
    ]
    duration = (atts[-1].started_at + atts[-1].duration - start) if atts else 0.0
    return CheckResult(
        id=f"{suite}/{name}",
        name=name,
        suite=suite,
        kind=kind,
        status=status,
        source=fields.pop("source", f"suites/{suite}.yaml:7"),
        attempts=atts,
        started_at=start,
        duration=duration,
        **fields,
    )


def sample_results() -> list[CheckResult]:
    return [
        check(
            "web",
            "home",
            Status.PASSED,
            attempts=[(0, 0.012, True, "", None)],
            tags=("smoke",),
            details={"status": 200, "latency": 0.012},
        ),
        check(
            "web",
            "version",
            Status.FAILED,
            start=T0 + 0.1,
            attempts=[
                (0, 0.02, False, "status: expected 2xx, got 503", ErrorKind.EXPECTATION),
                (1.0, 0.03, False, "status: expected 2xx, got 503", ErrorKind.EXPECTATION),
            ],
            message="status: expected 2xx, got 503; $.version: expected 1.2.3, got 1.2.2 "
            "(after 2 attempts in 1.03s)",
            error_kind=ErrorKind.EXPECTATION,
            evidence=[
                Mismatch("status", "2xx", "503"),
                Mismatch("$.version", '"1.2.3"', '"1.2.2 | `beta`"'),
            ],
            snippet='{"error": "upstream | ```down```", "hint": "<b>retry</b>"}',
            details={"status": 503, "url": "http://web.apps/version"},
            tags=("smoke", "api"),
        ),
        check(
            "api",
            "db",
            Status.ERROR,
            kind="sql",
            attempts=[(0, 0.001, False, "KeyError: 'rows'", ErrorKind.INTERNAL)],
            message="KeyError: 'rows'",
            error_kind=ErrorKind.INTERNAL,
        ),
        check(
            "api",
            "cache",
            Status.SKIPPED,
            message="needs 'db', which failed",
        ),
        check(
            "api",
            "flaky",
            Status.PASSED,
            attempts=[
                (0, 0.001, False, "cannot connect: Connection refused", "connection_refused"),
                (0.5, 0.001, False, "cannot connect: Connection refused", "connection_refused"),
                (1.5, 0.01, True, "", None),
            ],
        ),
        check(
            "api",
            "helm-test",
            Status.PASSED,
            kind="helmTest",
            attempts=[(0, 2.0, True, "", None)],
            log="pod started\nrunning tests\n3 passed\n",
            description="Helm test hooks of the release",
        ),
        check(
            "web",
            NASTY_NAME,
            Status.FAILED,
            attempts=[(0, 0.01, False, "bad \x00\x07\x1b[31m bytes", ErrorKind.PROTOCOL)],
            message="bad \x00\x07\x1b[31m bytes & <tags>",
            error_kind=ErrorKind.PROTOCOL,
        ),
    ]


def make_run(results: list[CheckResult] | None = None, **kw) -> RunResult:
    run = RunResult(
        run_id="abc123def456",
        started_at=T0 - 0.5,
        finished_at=T0 + 3.0,
        suites=[
            SuiteInfo("web", "suites/web.yaml", {"helmRelease": "podinfo", "namespace": "apps"}),
            SuiteInfo("api", "suites/api.yaml"),
        ],
        results=sample_results() if results is None else results,
        context=kw.pop(
            "context",
            {"release": {"name": "podinfo", "namespace": "apps", "revision": 7}, "trigger": "ci"},
        ),
    )
    for k, v in kw.items():
        setattr(run, k, v)
    return run


def secret_run() -> RunResult:
    """A run whose every free-text field carries SECRET (as if it slipped past the engine)."""
    results = sample_results()
    bad = check(
        "web",
        "login",
        Status.FAILED,
        attempts=[
            (0, 0.01, False, f"401 for token {SECRET}", ErrorKind.AUTH),
            (0.2, 0.01, False, f"401 for token {SECRET}", ErrorKind.AUTH),
        ],
        message=f"401 with Authorization: Bearer {SECRET}",
        error_kind=ErrorKind.AUTH,
        evidence=[Mismatch("header authorization", "Bearer ***", f"Bearer {SECRET}")],
        snippet=f'{{"token": "{SECRET}"}}',
        details={"url": f"https://api/login?token={SECRET}"},
        log=f"login as admin with {SECRET}\n",
    )
    return make_run([*results, bad], context={"token": SECRET})


@pytest.fixture
def run() -> RunResult:
    return make_run()


def many_passing(n: int, failing: int = 1) -> RunResult:
    results = [
        check(
            f"s{i % 20}",
            f"c{i}",
            Status.PASSED,
            start=T0 + i / 1000,
            attempts=[(0, 0.002, True, "", None)],
            tags=("bulk",),
        )
        for i in range(n)
    ]
    results += [
        check(
            "s0",
            f"broken{i}",
            Status.FAILED,
            attempts=[(0, 0.01, False, "boom", "timeout")],
            message="boom",
            error_kind="timeout",
        )
        for i in range(failing)
    ]
    suites = [SuiteInfo(f"s{i}", f"suites/s{i}.yaml") for i in range(20)]
    return make_run(results, suites=suites)


# --- JUnit ----------------------------------------------------------------------------------


def junit_cases(text: str):
    xml = JUnitXml.fromstring(text)
    return xml, {(s.name, c.name): c for s in xml for c in s}


def case_props(case) -> dict[str, str]:
    props = case.child(Properties)
    assert props is not None
    return {p.name: p.value for p in props}


def test_junit_one_testcase_per_check_with_the_right_results(run):
    text = junit.render(run)
    ET.fromstring(text.encode())  # well-formed for a strict parser too
    xml, cases = junit_cases(text)
    assert len(cases) == len(run.results)
    assert sum(1 for s in xml for _ in s) == len(run.results)
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (7, 2, 1, 1)

    # Suites in run.suites order, with their file, even though results interleave.
    suites = list(xml)
    assert [s.name for s in suites] == ["web", "api"]
    assert suites[0]._elem.get("file") == "suites/web.yaml"
    assert (suites[0].tests, suites[0].failures, suites[0].errors) == (3, 2, 0)
    assert (suites[1].tests, suites[1].errors, suites[1].skipped) == (4, 1, 1)
    assert suites[0].timestamp and suites[0].time >= 0

    home = cases[("web", "home")]
    assert home.is_passed and home.classname == "web"
    assert home.time == pytest.approx(0.012, abs=1e-3)
    assert home._elem.get("file") == "suites/web.yaml" and home._elem.get("line") == "7"

    version = cases[("web", "version")]
    [failure] = version.result
    assert isinstance(failure, Failure)
    assert failure.type == "expectation"
    assert failure.message.startswith("status: expected 2xx, got 503")
    body = failure.text
    assert "status: expected 2xx, got 503" in body
    assert '$.version: expected "1.2.3", got "1.2.2 | `beta`"' in body
    assert "attempt 2 of 2" in body and "response:" in body and "```down```" in body

    [error] = cases[("api", "db")].result
    assert isinstance(error, Error) and error.type == "internal"
    assert error.message == "KeyError: 'rows'"

    [skipped] = cases[("api", "cache")].result
    assert isinstance(skipped, Skipped) and skipped.message == "needs 'db', which failed"


def test_junit_properties_describe_attempts(run):
    _, cases = junit_cases(junit.render(run))
    flaky = case_props(cases[("api", "flaky")])
    assert flaky["attempts"] == "3" and flaky["recovered"] == "true"
    assert flaky["kind"] == "http" and flaky["id"] == "api/flaky"
    assert flaky["attempt.1.outcome"] == "failed: connection_refused"
    assert flaky["attempt.3.outcome"] == "passed"
    assert flaky["attempt.2.startedAt"] == "2023-11-14T22:13:20.500+00:00"
    assert flaky["attempt.3.duration"] == "0.010"
    assert "errorKind" in flaky and "tags" in flaky

    version = case_props(cases[("web", "version")])
    assert version["tags"] == "smoke,api" and version["errorKind"] == "expectation"
    assert version["recovered"] == "false"


def test_junit_log_goes_to_system_out_capped(run):
    _, cases = junit_cases(junit.render(run))
    assert cases[("api", "helm-test")].system_out == "pod started\nrunning tests\n3 passed\n"
    assert cases[("web", "home")].system_out is None

    big = "".join(f"line {i:06d} {'x' * 90}\n" for i in range(2000))  # ~200 KiB
    run.results[5].log = big
    _, cases = junit_cases(junit.render(run))
    out = cases[("api", "helm-test")].system_out
    assert out.startswith("[truncated ") and out.endswith("line 001999 " + "x" * 90 + "\n")
    assert len(out.encode()) <= junit.LOG_LIMIT + 64
    dropped = int(re.match(r"\[truncated (\d+) bytes\]", out).group(1))
    assert dropped + len(out.split("\n", 1)[1].encode()) == len(big.encode())


def test_junit_strips_xml_illegal_characters(run):
    text = junit.render(run)
    assert "\x00" not in text and "\x07" not in text and "\x1b" not in text
    _, cases = junit_cases(text)
    [failure] = cases[("web", NASTY_NAME)].result
    assert failure.message == "bad [31m bytes & <tags>"
    assert failure.type == "protocol"


def test_junit_results_outside_known_suites_and_empty_suites():
    extra = check(
        "gate",
        "flux-ready",
        Status.PASSED,
        source="gate.yaml:3",
        attempts=[(0, 0.1, True, "", None)],
    )
    run = make_run([extra], suites=[SuiteInfo("unused", "u.yaml")])
    xml, cases = junit_cases(junit.render(run))
    assert [s.name for s in xml] == ["gate"]  # suites without results are left out
    assert cases[("gate", "flux-ready")]._elem.get("file") == "gate.yaml"


# --- JSON -----------------------------------------------------------------------------------


def strict(schema):
    """The schema with additionalProperties: false on every documented object, so a field added
    to ``to_dict`` without documenting it fails the test (free-form objects stay open)."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return schema


def test_json_report_validates_against_the_schema(run):
    schema = jsonreport.load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for r in (run, secret_run(), make_run([]), many_passing(30)):
        data = json.loads(jsonreport.render(r))
        jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)
        jsonschema.validate(data, strict(schema), cls=jsonschema.Draft202012Validator)


def test_json_schema_rejects_wrong_reports(run):
    schema = jsonreport.load_schema()
    data = json.loads(jsonreport.render(run))
    data["results"][0]["status"] = "green"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)


def test_json_round_trips_key_fields(run):
    text = jsonreport.render(run)
    assert text.startswith("{\n  ") and text.endswith("}\n")
    data = json.loads(text)
    assert data["schema"] == REPORT_SCHEMA == "smokegate.io/report/v1"
    assert data["runId"] == run.run_id and data["ok"] is False
    assert data["counts"] == {
        "passed": 3,
        "failed": 2,
        "error": 1,
        "skipped": 1,
        "recovered": 1,
        "total": 7,
    }
    by_id = {r["id"]: r for r in data["results"]}
    assert [r["id"] for r in data["results"]] == [r.id for r in run.results]
    assert by_id["web/version"]["evidence"][1] == {
        "subject": "$.version",
        "expected": '"1.2.3"',
        "actual": '"1.2.2 | `beta`"',
    }
    assert by_id["api/flaky"]["recovered"] is True
    assert [a["ok"] for a in by_id["api/flaky"]["attempts"]] == [False, False, True]
    assert by_id["api/cache"]["message"] == "needs 'db', which failed"
    assert by_id["api/helm-test"]["log"] == run.results[5].log
    assert data["suites"][0]["release"] == {"helmRelease": "podinfo", "namespace": "apps"}
    assert data["context"]["release"]["revision"] == 7


def test_json_caps_large_logs(run):
    run.results[5].log = "y" * (600 * 1024)
    data = json.loads(jsonreport.render(run))
    log = data["results"][5]["log"]
    assert log.startswith(f"[truncated {600 * 1024 - jsonreport.LOG_LIMIT} bytes]\n")
    assert len(log) <= jsonreport.LOG_LIMIT + 40
    assert run.results[5].log == "y" * (600 * 1024)  # the run itself is untouched


def test_json_survives_odd_details(run):
    run.results[0].details = {"set": {2, 1}, "bytes": b"\xff", "obj": object(), 3: "int key"}
    data = json.loads(jsonreport.render(run))
    assert data["results"][0]["details"]["set"] == [1, 2]
    assert data["results"][0]["details"]["3"] == "int key"
    run.results[0].message = "lone \udcff surrogate"
    data = json.loads(jsonreport.render(run))
    assert data["results"][0]["message"].startswith("lone ")


def test_docs_describe_every_field():
    doc = (REPO / "docs" / "report-format.md").read_text()
    assert "smokegate.io/report/v1" in doc
    names = set()

    def walk(node):
        if isinstance(node, dict):
            names.update(node.get("properties", {}))
            for v in node.values():
                walk(v)

    walk(jsonreport.load_schema())
    missing = sorted(n for n in names if f"`{n}`" not in doc)
    assert not missing, f"fields not documented in docs/report-format.md: {missing}"


# --- markdown -------------------------------------------------------------------------------


def test_markdown_heading_table_and_failure_details(run):
    md = markdown.render(run)
    heading = md.splitlines()[0]
    assert heading.startswith("### ❌ smokegate failed")
    for part in ("3 passed", "2 failed", "1 error,", "1 skipped", "1 recovered", "7 checks"):
        assert part in heading
    assert "| ❌ <code>web</code> <sub>suites/web.yaml</sub> | 1 | 2 | 0 | 0 | 0 |" in md
    assert "release <code>apps/podinfo</code> · revision <code>7</code>" in md

    # One <details> per failure (2 failed + 1 error), plus the all-checks list of a small run.
    assert md.count("<summary>") == 4
    assert "<summary>❌ <code>web/version</code> · <code>expectation</code>" in md
    assert "<summary>⚠️ <code>api/db</code>" in md
    assert "| <code>status</code> | <code>2xx</code> | <code>503</code> |" in md
    assert "1. ❌ 22:13:20.100 UTC (+0ms), took 20ms <code>expectation</code>" in md
    assert "#### 🔁 Recovered after retries (1)" in md
    assert "- <code>api/flaky</code> passed on attempt 3" in md
    assert md.endswith("\n\n")


def test_markdown_escapes_pipes_backticks_and_html(run):
    md = markdown.render(run)
    # Evidence cell with a pipe and backticks: still a 3-column row.
    row = next(line for line in md.splitlines() if line.startswith("| <code>&#36;.version"))
    assert row.count("|") == 4
    assert "&#124;" in row and "&#96;beta&#96;" in row
    # The snippet holds ``` so its fence is longer.
    assert "````text\n" + run.results[1].snippet + "\n````" in md
    # Nothing a check says can open a tag.
    assert NASTY_NAME not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "<tags>" not in md
    assert not re.search("[\x00\x07\x1b]", md)  # control characters dropped
    assert markdown.code("a|b`c") == "<code>a&#124;b&#96;c</code>"
    assert markdown.fence("x ````` y").startswith("``````text\n")


def test_markdown_stays_compact_for_big_runs():
    big = many_passing(10_000, failing=3)
    t = time.perf_counter()
    md = markdown.render(big)
    assert time.perf_counter() - t < 2
    assert "10,000 passed" in md and "3 failed" in md
    assert "c1234" not in md  # passing checks are summarized, not listed
    assert "10,000 passing checks are not listed" in md
    assert md.count("<details>") == 3
    assert len(md) < 20_000


def test_markdown_caps_failure_sections():
    md = markdown.render(many_passing(100, failing=300))
    assert md.count("<details>") == markdown.DETAIL_LIMIT
    assert "and 70 more failures" in md
    assert len(md) < 65_536  # fits a PR comment


def test_markdown_passing_run():
    md = markdown.render(
        make_run([check("web", "home", Status.PASSED, attempts=[(0, 0.01, True, "", None)])])
    )
    assert md.startswith("### ✅ smokegate passed: 1 passed (1 check in ")
    assert "Failures" not in md


# --- HTML -----------------------------------------------------------------------------------


def test_html_escapes_and_lists_every_check(run):
    page = html.render(run)
    assert page.startswith("<!DOCTYPE html>")
    assert NASTY_NAME not in page
    assert htmllib.escape(NASTY_NAME) in page
    assert not re.search("[\x00\x07\x1b]", page)
    assert "&lt;tags&gt;" in page and "&lt;b&gt;retry&lt;/b&gt;" in page
    for r in run.results:
        assert htmllib.escape(r.id) in page, r.id
    # Only our own script tag, no external assets.
    assert page.count("<script>") == 1
    assert not re.search(r"""(src|href)\s*=""", page)
    assert "<link" not in page and "@import" not in page


def test_html_header_filters_and_details(run):
    page = html.render(run)
    assert '<span class="verdict">FAILED</span>' in page
    assert 'run <b class="mono">abc123def456</b>' in page
    assert "release <b>apps/podinfo</b>" in page and "revision <b>7</b>" in page
    assert "trigger <b>ci</b>" in page
    for f in ("all", "failed", "recovered", "skipped"):
        assert f'data-f="{f}"' in page
    assert 'id="q" type="search"' in page
    assert "prefers-color-scheme:dark" in page
    assert page.count('<section class="suite">') == 2
    assert 'class="c s-passed rec"' in page  # recovered filter target
    assert 'class="c s-failed open"' in page  # failures start expanded
    assert "<h4>evidence</h4>" in page and "<td class='mono act'>503</td>" in page
    assert "<h4>log</h4><pre>pod started\nrunning tests" in page
    assert 'class="tl"' in page  # timeline for retried checks
    assert "22:13:20.500Z" in page  # second attempt of api/flaky


def test_html_is_fast_for_big_runs():
    big = many_passing(10_000)
    t = time.perf_counter()
    page = html.render(big)
    assert time.perf_counter() - t < 2
    assert page.count('<tbody class="c ') == 10_001
    assert len(page) < 15 * 1024 * 1024


# --- writing and redaction ------------------------------------------------------------------


def test_write_reports_never_writes_the_secret(tmp_path):
    targets = [ReportTarget(fmt, str(tmp_path / "out" / f"report.{fmt}")) for fmt in FORMATS]
    assert write_reports(secret_run(), targets, Redactor([SECRET])) == []
    for t in targets:
        text = Path(t.path).read_text(encoding="utf-8")
        assert SECRET not in text, t.format
        assert "***" in text, t.format
    # Sanity: without the redactor every report would have carried it.
    assert all(SECRET in render_report(f, secret_run()) for f in FORMATS)


def test_write_reports_redacts_secrets_with_markup_characters(tmp_path):
    secret = 'p<a"s|s&w_rd'
    run = make_run(context={"token": secret})
    targets = [ReportTarget(fmt, str(tmp_path / f"report.{fmt}")) for fmt in FORMATS]
    write_reports(run, targets, Redactor([secret]))
    for t in targets:
        text = Path(t.path).read_text(encoding="utf-8")
        shown = htmllib.unescape(text).replace('\\"', '"')
        assert secret not in shown, t.format


# --- end to end -----------------------------------------------------------------------------


def test_cli_writes_all_reports_for_a_failing_run(tmp_path):
    port = free_port()  # nothing listens: connection refused, deterministic and fast
    suite = write_suite(
        tmp_path,
        f"""
        - name: home
          http:
            url: "http://127.0.0.1:{port}/healthz"
        """,
        name="e2e",
    )
    out = tmp_path / "reports"
    paths = {
        fmt: out / f"report.{ext}"
        for fmt, ext in (("junit", "xml"), ("json", "json"), ("markdown", "md"), ("html", "html"))
    }
    summary = tmp_path / "step-summary.md"
    summary.write_text("# earlier step\n\n")
    args = [a for fmt, p in paths.items() for a in ("--report", f"{fmt}={p}")]
    res = run_cli("run", str(suite), *args, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert res.code == 1, res.text

    for p in paths.values():
        assert p.is_file() and "e2e/home" in p.read_text(), p
    _, cases = junit_cases(paths["junit"].read_text())
    [failure] = cases[("e2e", "home")].result
    assert isinstance(failure, Failure) and failure.type == "connection_refused"

    data = json.loads(paths["json"].read_text())
    jsonschema.validate(data, jsonreport.load_schema(), cls=jsonschema.Draft202012Validator)
    assert data["ok"] is False
    assert data["results"][0]["status"] == "failed"
    assert data["results"][0]["errorKind"] == "connection_refused"

    md = paths["markdown"].read_text()
    assert md.startswith("### ❌ smokegate failed: 0 passed, 1 failed")
    assert "<code>e2e/home</code> · <code>connection&#95;refused</code>" in md
    assert "e2e/home" in paths["html"].read_text()

    appended = summary.read_text()
    assert appended.startswith("# earlier step\n\n### ❌ smokegate failed")
    assert appended.removeprefix("# earlier step\n\n") == md


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_renders_empty_and_interrupted_runs(fmt):
    assert render_report(fmt, make_run([], context={}))
    text = render_report(fmt, make_run(interrupted=True))
    expected = {
        "junit": '<property name="smokegate.interrupted" value="true" />',
        "json": '"interrupted": true',
        "markdown": "### ⚠️ smokegate interrupted",
        "html": '<span class="verdict">INTERRUPTED</span>',
    }[fmt]
    assert expected in text
