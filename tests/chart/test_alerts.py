"""smokegate's alert rules (deploy/alerts): `promtool check rules`, `promtool test rules` (with
tests that fail when a rule is weakened), the copies (chart, PrometheusRule) identical to the
one source, and every series and label the rules and their unit tests use, found on the
/metrics of a real `smokegate serve` that ran passing, failing, scheduled and Flagger-gated runs
and refused a badly signed webhook. promtool is Debian's `prometheus` package."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from smokegate.store.base import Verdict
from tests.server.support import (
    ServeProcess,
    Target,
    flux_event,
    hook_headers,
    request,
    write_suites,
)

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "deploy" / "alerts"
RULES = ALERTS / "smokegate.rules.yaml"
UNIT_TESTS = ALERTS / "tests" / "smokegate.rules.test.yaml"
CHART_COPY = REPO / "deploy" / "chart" / "smokegate" / "files" / "smokegate.rules.yaml"
# Labels Prometheus adds when it scrapes (target labels): not smokegate's to export.
SCRAPE_LABELS = {"pod", "instance", "job", "namespace", "service", "endpoint", "container"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    assert path, "promtool missing: install Debian's prometheus package (make deps)"
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=120)


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


# --- promtool ----------------------------------------------------------------------------------


def test_promtool_check_rules() -> None:
    r = promtool("check", "rules", str(RULES))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in r.stdout


def test_promtool_unit_tests_pass() -> None:
    r = promtool("test", "rules", str(UNIT_TESTS))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


@pytest.mark.parametrize(
    ("weaken", "failing_test"),
    [
        # increase() alone: the first failure of a new counter goes unseen.
        (lambda t: re.sub(r"sum by \(trigger\) \(\n\s+smokegate_runs_total.*?offset 15m\n\s+\)"
                          r"\n\s+or\n", "", t, flags=re.S),
         "gate failure on a new counter"),
        (lambda t: re.sub(r"sum\(\n\s+smokegate_webhooks_total.*?offset 15m\n\s+\)\n\s+or\n",
                          "", t, flags=re.S),
         "webhook rejects"),
        (lambda t: t.replace("> on (release) 3 *", "> on (release) 30 *"),
         "stale scheduled results"),
        (lambda t: t.replace("max by (release) (smokegate_release_verdict)",
                             "sum by (release) (smokegate_release_verdict)"),
         None),  # still right (0 + 0 == 0): shows the test is not a mere text match
        (lambda t: t.replace('trigger="flagger"', 'trigger="gate"'),
         "gate failure on an existing counter"),
        (lambda t: t.replace('outcome="rejected"', 'outcome="refused"'), "webhook rejects"),
        (lambda t: t.replace('state="queued"', 'state="running"'), "queue backlog"),
    ],
    ids=["gate-new-counter", "webhook-new-counter", "stale-threshold", "sum-instead-of-max",
         "gate-trigger-name", "webhook-outcome-name", "queue-state"],
)  # fmt: skip
def test_unit_tests_catch_a_weakened_rule(
    tmp_path: Path, weaken: Any, failing_test: str | None
) -> None:
    text = RULES.read_text()
    changed = weaken(text)
    assert changed != text, "the mutation did not apply"
    (tmp_path / "tests").mkdir()
    (tmp_path / "smokegate.rules.yaml").write_text(changed)
    shutil.copy(UNIT_TESTS, tmp_path / "tests" / UNIT_TESTS.name)
    assert promtool("check", "rules", str(tmp_path / "smokegate.rules.yaml")).returncode == 0
    r = promtool("test", "rules", str(tmp_path / "tests" / UNIT_TESTS.name))
    if failing_test is None:
        assert r.returncode == 0, r.stdout
    else:
        assert r.returncode != 0, f"the unit tests did not notice:\n{changed}"
        assert f"name: {failing_test}," in r.stdout + r.stderr, r.stdout + r.stderr


# --- one source, identical copies ----------------------------------------------------------------


def _sync_module() -> Any:
    spec = importlib.util.spec_from_file_location("alerts_sync", ALERTS / "sync.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_copies_are_identical_to_the_source() -> None:
    fix = "edit deploy/alerts/smokegate.rules.yaml only, then run python3 deploy/alerts/sync.py"
    source = RULES.read_text()
    assert CHART_COPY.read_text() == source, fix
    operator = (ALERTS / "prometheusrule.yaml").read_text()
    assert operator == _sync_module().operator_rule(source), fix
    rule = yaml.safe_load(operator)
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == yaml.safe_load(source)["groups"]


def test_the_operator_copy_passes_promtool(tmp_path: Path) -> None:
    spec = yaml.safe_load((ALERTS / "prometheusrule.yaml").read_text())["spec"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    r = promtool("check", "rules", str(tmp_path / "rules.yaml"))
    assert r.returncode == 0, r.stdout + r.stderr


# --- the names, from a real server ---------------------------------------------------------------

SELECTOR = re.compile(r"\b(smokegate_[a-z_]+)\b(\{([^}]*)\})?")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
GROUPING = re.compile(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)")


def used_by_rules() -> list[dict[str, Any]]:
    """Per rule: the metrics it reads, its matchers, and the labels it groups on or prints."""
    out = []
    for rule in alert_rules():
        expr = rule["expr"]
        metrics, matchers = set(), []
        for m in SELECTOR.finditer(expr):
            metrics.add(m.group(1))
            for label, op, value in MATCHER.findall(m.group(3) or ""):
                matchers.append((m.group(1), label, op, value))
        labels = {x.strip() for g in GROUPING.findall(expr) for x in g.split(",") if x.strip()}
        annotations = " ".join(rule.get("annotations", {}).values())
        labels |= set(re.findall(r"\$labels\.(\w+)", annotations))
        out.append({"alert": rule["alert"], "metrics": metrics, "matchers": matchers,
                    "labels": labels})  # fmt: skip
    return out


def used_by_unit_tests() -> list[tuple[str, set[str]]]:
    """(metric, label names) of every input series of the promtool unit tests."""
    out = []
    for case in yaml.safe_load(UNIT_TESTS.read_text())["tests"]:
        for series in case["input_series"]:
            m = re.fullmatch(r"(\w+)(\{(.*)\})?", series["series"].replace("\n", ""))
            assert m, series
            if not m.group(1).startswith("smokegate_"):
                continue
            labels = {label for label, _, _ in MATCHER.findall(m.group(3) or "")}
            out.append((m.group(1), labels - SCRAPE_LABELS))
    return out


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[dict]]]:
    """A real `smokegate serve` after: a webhook run of apps/podinfo where one check passes and
    one fails, a run of a schedule, a Flagger gate run that failed, a webhook with a bad
    signature. Returns metric name -> the label sets of its samples, from GET /metrics."""
    target = Target()
    workdir = tmp_path_factory.mktemp("alerts-serve")
    suites = write_suites(workdir / "suites", target.url)
    (suites / "mixed.yaml").write_text(
        "apiVersion: smokegate.io/v1\nkind: Suite\nmetadata: {name: mixed}\nspec:\n"
        "  defaults: {timeout: 2s}\n  checks:\n"
        f"    - {{name: home, http: {{url: '{target.url}/health', expect: {{status: 200}}}}}}\n"
        f"    - {{name: api, http: {{url: '{target.url}/health', expect: {{status: 418}}}}}}\n"
    )
    rules = "  - match: {namespace: apps}\n    suites: [mixed]\n"
    extra = "schedules:\n  - {name: public-endpoints, every: 10s, suites: [web]}\n"
    proc = ServeProcess.for_store(
        workdir, f"sqlite:///{workdir / 'h.db'}", rules=rules, extra=extra
    ).start()
    try:
        body = flux_event()
        assert proc.post_hook(body)[0] == 202
        bad = hook_headers(body, secret="not-the-key")
        assert proc.post_hook(body, bad)[0] == 401
        gate = json.dumps({"name": "podinfo", "namespace": "apps", "checksum": "c0ffee"}).encode()
        deadline = time.monotonic() + 30
        while request("POST", proc.url + "/gates/flagger", gate)[0] != 412:
            assert time.monotonic() < deadline, proc.log[-3000:]
            time.sleep(0.3)
        proc.wait_for_runs(2, release="apps/podinfo")
        proc.wait_for_runs(1, release="schedule/public-endpoints")
        proc.wait_idle()
        time.sleep(5.5)  # the store-derived gauges are cached for 5 s
        text = request("GET", proc.url + "/metrics")[2].decode()
    finally:
        proc.stop()
        target.close()
    found: dict[str, list[dict]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(dict(sample.labels))
    yield found


def test_every_metric_and_label_the_rules_use_is_exported(scraped: dict[str, list[dict]]) -> None:
    for use in used_by_rules():
        for metric in use["metrics"]:
            assert metric in scraped, f"{use['alert']}: {metric} is not on /metrics"
            have = set().union(*(set(s) for s in scraped[metric]))
            missing = use["labels"] - have - SCRAPE_LABELS
            assert not missing, f"{use['alert']}: {metric} has no label(s) {missing} ({have})"
        for metric, label, op, value in use["matchers"]:
            values = {s.get(label) for s in scraped[metric]}
            assert label in set().union(*(set(s) for s in scraped[metric])), (metric, label)
            wanted = value.split("|") if op == "=~" else [value]
            for v in wanted:
                # Seen on this server, or (a verdict it did not produce here) a valid one.
                valid = v in values or (label == "outcome" and v in {x.value for x in Verdict})
                assert valid, f"{use['alert']}: {metric}{{{label}{op}{value!r}}}: {values}"


def test_the_unit_tests_feed_series_named_as_exported(scraped: dict[str, list[dict]]) -> None:
    used = used_by_unit_tests()
    assert {m for m, _ in used} >= {m for u in used_by_rules() for m in u["metrics"]}
    for metric, labels in used:
        assert metric in scraped, f"unit test series {metric} is not on /metrics"
        assert any(set(s) == labels for s in scraped[metric]), (
            f"unit test series {metric}{sorted(labels)} has not the exported labels: "
            f"{[sorted(s) for s in scraped[metric]]}"
        )


def test_the_scrape_has_what_the_alerts_watch(scraped: dict[str, list[dict]]) -> None:
    """The series the scenario must produce, so the two tests above check something."""
    assert {"trigger": "flagger", "outcome": "failed"} in scraped["smokegate_runs_total"]
    assert {"outcome": "rejected"} in scraped["smokegate_webhooks_total"]
    assert {"release": "apps/podinfo", "suite": "mixed", "check": "api"} in scraped[
        "smokegate_check_success"
    ]
    assert {"schedule": "public-endpoints", "release": "schedule/public-endpoints"} in scraped[
        "smokegate_schedule_interval_seconds"
    ]
    assert {"release": "apps/podinfo"} in scraped["smokegate_release_verdict"]
    assert {"release": "schedule/public-endpoints"} in scraped[
        "smokegate_release_last_run_timestamp_seconds"
    ]
    assert {"state": "queued"} in scraped["smokegate_queue_depth"]


# --- the documented Alertmanager configuration -------------------------------------------------

AM_EXAMPLE = ALERTS / "alertmanager.example.yaml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("amtool")
    assert path, "amtool missing: install Debian's prometheus-alertmanager package (make deps)"
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=60)


def test_alertmanager_example_is_valid_and_is_what_the_docs_show() -> None:
    r = amtool("check-config", str(AM_EXAMPLE))
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
    docs = (REPO / "docs" / "install.md").read_text()
    block = re.search(r"\*\*Alertmanager route\*\*.*?```yaml\n(.*?)```", docs, re.S)
    assert block, "docs/install.md lost its Alertmanager example"
    body = "".join(line for line in AM_EXAMPLE.read_text().splitlines(True)
                   if not line.startswith("#"))  # fmt: skip
    assert block.group(1) == body


@pytest.mark.parametrize(
    ("alert", "receivers"),
    [
        (alert["alert"], {"critical": "smoke-pager,smoke-chat", "warning": "smoke-chat",
                          "info": "smoke-chat"}[alert["labels"]["severity"]])
        for alert in alert_rules()
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("Smoke") else "",
)  # fmt: skip
def test_every_alert_reaches_its_receivers(alert: str, receivers: str) -> None:
    """Each shipped alert, with its own severity, is routed as the docs say: critical pages and
    posts, the rest posts; nothing falls through to the default receiver."""
    (rule,) = [r for r in alert_rules() if r["alert"] == alert]
    labels = [f"alertname={alert}", f"severity={rule['labels']['severity']}", "release=apps/web"]
    r = amtool("config", "routes", "test", f"--config.file={AM_EXAMPLE}", *labels)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == receivers
