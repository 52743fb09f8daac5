"""The parts of ``run --in-cluster`` that need no cluster: the report block in a log and reading
a report back, the suite bundle, the manifests, the pod's arguments, and the outcome rules."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from smokegate.checks.base import Mismatch
from smokegate.core.errors import SuiteError, UsageError
from smokegate.core.results import Attempt, CheckResult, RunResult, Status, SuiteInfo
from smokegate.incluster.api import InClusterRequest, outcome_of, pod_args, prepare
from smokegate.incluster.bundle import MAX_CONFIGMAP_BYTES, bundle_suites
from smokegate.incluster.follow import Collected
from smokegate.incluster.manifests import DEFAULT_IMAGE, IMAGE_REPOSITORY, PodOptions
from smokegate.report import logblock
from smokegate.report.jsonreport import ReportFormatError, load_run, parse_report, render
from tests.helpers import run_cli, write_suite


def sample_run(n: int = 3) -> RunResult:
    now = time.time()
    results = [
        CheckResult(
            id=f"web/c{i}",
            name=f"c{i}",
            suite="web",
            kind="http",
            status=[Status.PASSED, Status.FAILED, Status.SKIPPED, Status.ERROR][i % 4],
            tags=("smoke", f"t{i % 3}"),
            source=f"suites/web.yaml:{10 + i}",
            description="d",
            attempts=[
                Attempt(1, now, 0.25, False, "refused", "connection_refused"),
                Attempt(2, now + 1, 0.5, i % 4 == 0, "", None),
            ],
            started_at=now,
            duration=1.5,
            message=f"status: expected 200, got 50{i % 10}",
            error_kind="expectation",
            evidence=[Mismatch("status", "200", "503")],
            snippet='{"error": "ü"}',
            details={"status": 503, "url": f"http://web/{i}"},
            log=f"line {i}\n" * 3,
        )
        for i in range(n)
    ]
    return RunResult(
        "3f9c1a7b2e04", now, now + 3.5, [SuiteInfo("web", "suites/web.yaml", {"namespace": "a"})],
        results, context={"release": {"name": "podinfo"}},
    )  # fmt: skip


# --- the report block -------------------------------------------------------------------------


def test_block_round_trip_with_console_lines_around_and_inside() -> None:
    text = render(sample_run())
    block = logblock.encode(text)
    lines = block.splitlines(keepends=True)
    assert all(len(line.rstrip("\n")) <= 76 for line in lines[1:-1])
    assert block == logblock.encode(text)  # deterministic (gzip mtime 0)
    # stderr interleaved by the runtime into the middle of the block stays console text.
    log = "✓ web/c0 http\n" + "".join(lines[:3]) + "smokegate: warning: x\n" + "".join(lines[3:])
    console, report = logblock.extract(log)
    assert console == "✓ web/c0 http\nsmokegate: warning: x\n"
    assert report == text


def test_damaged_blocks_are_refused_never_half_read() -> None:
    block = logblock.encode(render(sample_run()))
    lines = block.splitlines(keepends=True)
    with pytest.raises(logblock.LogBlockError, match="no report block"):
        logblock.extract("just console\n")
    with pytest.raises(logblock.LogBlockError, match="cut off"):
        logblock.extract("".join(lines[:-1]))
    with pytest.raises(logblock.LogBlockError, match=r"checksum|corrupt"):
        logblock.extract("".join([*lines[:2], *lines[3:]]))  # a line lost
    bomb = lines[0].replace(re.search(r"\d+ bytes", lines[0]).group(), "999999999999 bytes")
    with pytest.raises(logblock.LogBlockError, match="over the limit"):
        logblock.extract("".join([bomb, *lines[1:]]))


def test_a_large_report_shrinks_in_its_block() -> None:
    """2,000 checks with logs: the block is a fraction of the JSON (docs/in-cluster.md)."""
    text = render(sample_run(2000))
    block = logblock.encode(text)
    assert len(block) < len(text) / 4, (len(text), len(block))


# --- reading a report back --------------------------------------------------------------------


def test_load_run_renders_exactly_as_the_original() -> None:
    run = sample_run(8)
    text = render(run)
    again = parse_report(text)
    assert render(again) == text
    assert again.results[1].evidence[0].expected == "200" and again.ok is False
    for fmt in ("junit", "markdown", "html"):
        from smokegate.report import render as render_as

        assert render_as(fmt, again) == render_as(fmt, run)


def test_load_run_checks_the_schema_and_ignores_added_fields() -> None:
    data = json.loads(render(sample_run()))
    data["newTopLevelField"] = {"added": "within v1"}
    data["results"][0]["newField"] = 1
    assert load_run(data).results[0].id == "web/c0"
    del data["results"][1]["status"]
    with pytest.raises(ReportFormatError, match="results/1: 'status' is a required property"):
        load_run(data)
    with pytest.raises(ReportFormatError, match="not JSON"):
        parse_report("{")


# --- the suite bundle --------------------------------------------------------------------------


def test_bundle_keeps_relative_paths_and_maps_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suites" / "deep").mkdir(parents=True)
    a = write_suite(tmp_path / "suites", "- {name: a, exec: {command: 'true'}}", name="a")
    write_suite(tmp_path / "suites" / "deep", "- {name: b, exec: {command: 'true'}}", name="b",
                filename="b.yml")  # fmt: skip
    elsewhere = tmp_path.parent / f"{tmp_path.name}-other.yaml"
    elsewhere.write_text(a.read_text().replace("name: a", "name: c"))
    bundle = bundle_suites(["suites", str(elsewhere), "-"], stdin_text="apiVersion: x\n")
    assert bundle.pod_paths == ["suites/deep/b.yml", "suites/suite.yaml", f"_/02-{elsewhere.name}",
                                "_/03-stdin.yaml"]  # fmt: skip
    assert all(re.fullmatch(r"[-._a-zA-Z0-9]+", k) for k in bundle.data)
    assert bundle.local_path("suites/suite.yaml") == "suites/suite.yaml"
    assert bundle.local_path(f"_/02-{elsewhere.name}") == str(elsewhere)
    assert bundle.local_path("_/03-stdin.yaml") == "-"
    assert bundle.data[bundle.files[0].key] == (tmp_path / "suites/deep/b.yml").read_text()
    big = tmp_path / "big.yaml"
    big.write_text("#" * (MAX_CONFIGMAP_BYTES + 1))
    with pytest.raises(UsageError, match="more than one ConfigMap holds"):
        bundle_suites([str(big)])


# --- prepare: validation, manifests, arguments ---------------------------------------------------


def test_prepare_validates_with_the_pods_environment_and_passes_everything_along(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smokegate.core.selection import Selection

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHADE", "set-here-only")
    suite = write_suite(tmp_path, """
        - name: a
          tags: [smoke]
          exec: {command: "echo ${env:SHADE} ${secret:db/password}"}
    """)  # fmt: skip
    request = InClusterRequest(suites=[suite.name])
    with pytest.raises(SuiteError, match="in-cluster: the pod's environment holds only"):
        prepare(request, namespace="apps")
    request = InClusterRequest(
        suites=[suite.name], pod=PodOptions(env={"SHADE": "navy"}, service_account="sg"),
        cli_vars={"release.name": "podinfo", "x": "1"}, selection=Selection(("a*",), ("smoke",),
        ("slow",)), concurrency=4, fail_fast=True, resolve=("web:80:10.0.0.1",), quiet=True,
        timeout=90,
    )  # fmt: skip
    prepared = prepare(request, namespace="apps")
    assert [c.id for c in prepared.plan.checks] == ["t/a"]
    args = prepared.job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == pod_args(request, "apps", prepared.bundle)
    assert args == ["run", "-n", "apps", "--no-color", "--log-report", "-c", "4", "-x", "-q",
                    "--resolve", "web:80:10.0.0.1", "-k", "a*", "-t", "smoke",
                    "--exclude-tag", "slow", "--var", "release.name=podinfo", "--var", "x=1",
                    "suite.yaml"]  # fmt: skip
    env = prepared.job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "SHADE", "value": "navy"} in env
    assert prepared.job["spec"]["activeDeadlineSeconds"] == 150
    with pytest.raises(UsageError, match="--resolve"):
        prepare(InClusterRequest(suites=[suite.name], resolve=("nonsense",)), namespace="apps")


def test_the_default_image_is_this_version_and_help_says_so() -> None:
    from smokegate import __version__

    assert f"{IMAGE_REPOSITORY}:{__version__}" == DEFAULT_IMAGE
    r = run_cli("run", "--help")
    assert f"(default: {DEFAULT_IMAGE}," in " ".join(r.out.split())
    assert "--in-cluster" in r.out and "--job-timeout" in r.out and "--log-report" in r.out


# --- the outcome ----------------------------------------------------------------------------------


def _prepared(tmp_path: Path) -> object:
    suite = write_suite(
        tmp_path, "- {name: a, exec: {command: 'true'}}\n- {name: b, exec: {command: 'true'}}"
    )
    return prepare(InClusterRequest(suites=[str(suite)]), namespace="apps")


def _collected(**kw: object) -> Collected:
    return Collected("abc", "smokegate-run-abc", "apps", pod="p", **kw)  # type: ignore[arg-type]


def test_outcome_rules(tmp_path: Path) -> None:
    prepared = _prepared(tmp_path)
    pod_path = prepared.bundle.pod_paths[0]  # type: ignore[attr-defined]
    assert pod_path == "_/00-suite.yaml"  # an absolute local path
    passed = RunResult("r1", 1.0, 2.0, [SuiteInfo("t", pod_path)], [
        CheckResult("t/a", "a", "t", "exec", Status.PASSED, source=f"{pod_path}:6")])  # fmt: skip
    report = render(passed)
    o = outcome_of(prepared, _collected(report_json=report, exit_code=0))  # type: ignore[arg-type]
    assert o.code == 0 and o.run.results[0].source == str(tmp_path / "suite.yaml") + ":6"
    assert o.run.suites[0].file == str(tmp_path / "suite.yaml")
    assert o.run.context["inCluster"]["job"] == "smokegate-run-abc"
    o = outcome_of(prepared, _collected(report_json=report, timed_out=True))  # type: ignore[arg-type]
    assert o.code == 1 and o.run.results[-1].id == "in-cluster/runner"
    assert o.run.results[-1].error_kind == "timeout"
    o = outcome_of(prepared, _collected(report_json=report, interrupted=True))  # type: ignore[arg-type]
    assert o.code == 130 and o.run.interrupted
    # No report: the pod's own exit code for suite and cluster problems, no run to report.
    for code in (2, 4):
        o = outcome_of(prepared, _collected(exit_code=code, report_problem="x"))  # type: ignore[arg-type]
        assert o.code == code and o.run is None
    # No report otherwise: every planned check skipped, and why.
    o = outcome_of(prepared, _collected(exit_code=137, termination="OOMKilled",  # type: ignore[arg-type]
                                        report_problem="the log has no report block"))  # fmt: skip
    assert o.code == 4
    assert [r.status for r in o.run.results] == [Status.SKIPPED, Status.SKIPPED, Status.ERROR]
    assert "exited 137 without a report" in o.run.results[-1].message
    assert "OOMKilled" in o.run.results[-1].message
    o = outcome_of(prepared, _collected(never_started="pod Evicted: low memory"))  # type: ignore[arg-type]
    assert o.code == 4 and o.run.results[-1].error_kind == "config"
    o = outcome_of(prepared, _collected(timed_out=True, started=True))  # type: ignore[arg-type]
    assert o.code == 1 and o.run.results[-1].error_kind == "timeout"
    o = outcome_of(prepared, _collected(timed_out=True, last_state="Pending: x"))  # type: ignore[arg-type]
    assert o.code == 4 and "did not start within" in o.run.results[-1].message
    o = outcome_of(prepared, _collected(interrupted=True))  # type: ignore[arg-type]
    assert o.code == 130 and o.run.interrupted and len(o.run.results) == 2
    o = outcome_of(prepared, _collected(report_json="{}", exit_code=0))  # type: ignore[arg-type]
    assert o.code == 4 and "cannot be read" in o.run.results[-1].message


# --- the pod's side: --log-report ----------------------------------------------------------------


def test_log_report_ends_the_output_with_the_redacted_report(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, """
        - name: ok
          exec: {command: "echo fine"}
        - name: leaky
          exec: {command: "echo token=${tok}; exit 1"}
    """, extra_spec="vars:\n  tok: {value: s3cr3t-Tok, secret: true}")  # fmt: skip
    json_path = tmp_path / "r.json"
    r = run_cli("run", str(suite), "--log-report", "--report", f"json={json_path}")
    assert r.code == 1, r.text
    assert r.out.rstrip("\n").splitlines()[-1] == logblock.END
    console, report = logblock.extract(r.out)
    assert "✗ t/leaky exec" in console and "smokegate report" not in console
    assert json.loads(report)["results"] == json.loads(json_path.read_text())["results"]
    assert "s3cr3t-Tok" not in r.out and "token=***" in report
