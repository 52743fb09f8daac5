"""The chart's tests inside smokegate's other front ends: the ``helmTest`` check kind in a suite
(through the real ``smokegate run``) and ``run_for_gate`` (what ``gate --helm-tests run`` calls
when Flux did not run the tests)."""

from __future__ import annotations

from pathlib import Path

from helmtest_cluster import ClusterActors
from helmtest_support import DB_LOG, ORDERS_LOG, THREE_HOOKS, Namespace, helm_release, pod_hook
from tests.helpers import run_cli, write_suite


def test_helmtest_check_in_a_suite(actors: ClusterActors, ns: Namespace) -> None:
    ns.install(THREE_HOOKS)
    r = ns.run_suite(
        """
        - name: chart-tests
          helmTest: {release: myapp, parallel: true}
          timeout: 2m
        - name: chart-tests-without-orders
          helmTest: {release: myapp, filter: ['!*-orders']}
          timeout: 2m
        """,
        code=1,
    )
    whole, without = r.results["chart-tests"], r.results["chart-tests-without-orders"]
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
    assert ns.left() == []


def test_helmtest_check_cleans_up_when_its_timeout_cuts_it_short(
    actors: ClusterActors, ns: Namespace
) -> None:
    ns.install(
        {"test-hang.yaml": pod_hook("test-hang", "echo hanging; sleep 60")}, keep_default=False
    )
    r = ns.run_suite("- {name: hang, helmTest: {release: myapp}, timeout: 2s}", code=1)
    assert "timed out after 2.00s" in r.out
    assert ns.left() == []


def test_suite_validation_rejects_a_bad_filter(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, "- {name: t, helmTest: {release: myapp, filter: [a=b]}}")
    r = run_cli("lint", str(suite))
    assert r.code == 2
    assert "filter 'a=b': only hook-name globs are supported" in r.err


def test_run_for_gate_runs_the_tests_flux_did_not(actors: ClusterActors, ns: Namespace) -> None:
    from smokegate.helmtest.flux import flux_ran_tests, run_for_gate
    from smokegate.kube.client import KubeOptions, load_config

    ns.install(THREE_HOOKS)
    hr = helm_release(ns.name, {"filters": [{"name": "myapp-test-connection", "exclude": True}]})
    ns.apply(hr)
    assert not flux_ran_tests(hr)
    config = load_config(KubeOptions(str(ns.kubeconfig)))
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
    assert ns.left() == []
