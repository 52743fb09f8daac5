"""The chart's tests inside smokegate's other front ends: the ``helmTest`` check kind in a suite
(through the real ``smokegate run``) and ``run_for_gate`` (what ``gate --helm-tests run`` calls
when Flux did not run the tests)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from helmtest_cluster import Api, ClusterActors
from helmtest_support import (
    DB_LOG,
    ORDERS_LOG,
    THREE_HOOKS,
    Helm,
    load_json,
    pod_hook,
    smokegate_objects,
)
from kubeenv import KubeEnv
from tests.helpers import run_cli, write_suite


def test_helmtest_check_in_a_suite(
    api: Api,
    actors: ClusterActors,
    helm: Helm,
    make_chart: Callable[..., Path],
    kube_namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    ns = kube_namespace
    helm("install", "myapp", str(make_chart(THREE_HOOKS)), "-n", ns)
    suite = write_suite(
        tmp_path,
        """
        - name: chart-tests
          helmTest: {release: myapp, parallel: true}
          timeout: 2m
        - name: chart-tests-without-orders
          helmTest: {release: myapp, filter: ['!*-orders']}
          timeout: 2m
        """,
    )
    report = tmp_path / "report.json"
    r = run_cli("run", str(suite), "-n", ns, "--kubeconfig", str(kubeconfig),
                "--report", f"json={report}")  # fmt: skip
    assert r.code == 1, r.text
    res = {x["name"]: x for x in load_json(report)["results"]}
    whole, without = res["chart-tests"], res["chart-tests-without-orders"]
    assert whole["status"] == "failed"
    assert whole["message"].startswith("1 of 3 Helm tests failed: myapp-test-orders: pod failed")
    assert [e["subject"] for e in whole["evidence"]] == ["helm test myapp-test-orders"]
    # Every hook's log, the failed one last (so the console's tail shows it).
    log = whole["log"]
    assert DB_LOG in log and ORDERS_LOG in log
    assert log.rindex("===== myapp-test-orders: failed") > log.rindex("===== myapp-test-db")
    assert ORDERS_LOG in r.out
    assert {t["name"]: t["status"] for t in whole["details"]["tests"]} == {
        "myapp-test-connection": "passed",
        "myapp-test-orders": "failed",
        "myapp-test-db": "passed",
    }
    assert without["status"] == "passed"
    assert without["message"] == "2 Helm tests passed"
    assert smokegate_objects(api, ns) == []


def test_helmtest_check_cleans_up_when_its_timeout_cuts_it_short(
    api: Api,
    actors: ClusterActors,
    helm: Helm,
    make_chart: Callable[..., Path],
    kube_namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    ns = kube_namespace
    hooks = {"test-hang.yaml": pod_hook("test-hang", "echo hanging; sleep 60")}
    helm("install", "myapp", str(make_chart(hooks, keep_default=False)), "-n", ns)
    suite = write_suite(tmp_path, "- {name: hang, helmTest: {release: myapp}, timeout: 2s}")
    r = run_cli("run", str(suite), "-n", ns, "--kubeconfig", str(kubeconfig))
    assert r.code == 1, r.text
    assert "timed out after 2.00s" in r.out
    assert smokegate_objects(api, ns) == []


def test_suite_validation_rejects_a_bad_filter(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, "- {name: t, helmTest: {release: myapp, filter: [a=b]}}")
    r = run_cli("lint", str(suite))
    assert r.code == 2
    assert "filter 'a=b': only hook-name globs are supported" in r.err


def test_run_for_gate_runs_the_tests_flux_did_not(
    kube_env: KubeEnv,
    api: Api,
    actors: ClusterActors,
    helm: Helm,
    make_chart: Callable[..., Path],
    kube_namespace: str,
    kubeconfig: Path,
) -> None:
    from smokegate.helmtest.flux import flux_ran_tests, run_for_gate
    from smokegate.kube.client import KubeOptions, load_config

    ns = kube_namespace
    helm("install", "myapp", str(make_chart(THREE_HOOKS)), "-n", ns)
    hr = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "myapp", "namespace": ns},
        "spec": {
            "interval": "5m",
            "chart": {"spec": {"chart": "myapp", "sourceRef": {"kind": "HelmRepository",
                                                               "name": "charts"}}},
            "test": {"filters": [{"name": "myapp-test-connection", "exclude": True}]},
        },
    }  # fmt: skip
    kube_env.kubectl("apply", "-f", "-", input=json.dumps(hr))
    assert not flux_ran_tests(hr)
    config = load_config(KubeOptions(str(kubeconfig)))
    results = run_for_gate(config, hr, timeout=60)
    assert {r.id: r.status.value for r in results} == {
        "helm-test/myapp-test-orders": "failed",
        "helm-test/myapp-test-db": "passed",
    }
    assert all(r.suite == "helm-test" and r.log for r in results)
    ignored = run_for_gate(config, hr, timeout=60, ignore_failures=True)
    orders = next(r for r in ignored if r.name == "myapp-test-orders")
    assert orders.status.value == "skipped"
    assert orders.message.endswith("(ignored: --ignore-helm-tests)")
    assert smokegate_objects(api, ns) == []
