"""``smokegate helm-test`` against a chart installed with the real ``helm`` binary.

The test plays scheduler, kubelet and job controller (``actors`` fixture, helmtest_cluster.py):
it binds the pods smokegate creates to the stand-in node, runs their ``sh -c`` scripts locally
(their output becomes the pod log, served through the real apiserver by
scripts/kube/stand-in-kubelet.py) and patches pod and Job status as those components would.
After every scenario, no Pod, Job or ConfigMap created by smokegate may remain.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from helmtest_cluster import ClusterActors
from helmtest_support import DB_LOG, ORDERS_LOG, THREE_HOOKS, Namespace, job_hook, pod_hook


def test_runs_every_test_and_reports_the_failing_ones_log(
    actors: ClusterActors, ns: Namespace
) -> None:
    ns.install(THREE_HOOKS)
    r = ns.run("myapp", code=1, junit=True)
    # Console: the verdict, and the tail of the failing test's log.
    assert "2 passed, 1 failed" in r.out
    assert ORDERS_LOG in r.out
    assert "✗ helm-test/myapp-test-orders" in r.out
    assert "container test exited 1 (Error)" in r.out
    # Helm's order: weight 0 (helm create's own test), 1 (failing), 2 (the Job) — and the third
    # ran although the second failed.
    live = r.out.split("failures")[0]  # the per-test lines, before the failure details
    lines = [ln for ln in live.splitlines() if ln.startswith(("✓", "✗"))]
    assert [ln.split()[1] for ln in lines] == [
        "helm-test/myapp-test-connection",
        "helm-test/myapp-test-orders",
        "helm-test/myapp-test-db",
    ]
    # JSON: every test, its status and its full log, Jobs included.
    results = r.results
    assert {n: x["status"] for n, x in results.items()} == {
        "myapp-test-connection": "passed",
        "myapp-test-orders": "failed",
        "myapp-test-db": "passed",
    }
    assert ORDERS_LOG in results["myapp-test-orders"]["log"]
    assert results["myapp-test-orders"]["details"]["exitCodes"] == {"test": 1}
    # The Job's hook-delete-policy is hook-succeeded: its log is still there.
    assert DB_LOG in results["myapp-test-db"]["log"]
    assert results["myapp-test-db"]["details"]["deletePolicies"] == ["hook-succeeded"]
    # JUnit: a failure for the failing test, and its log as system-out.
    cases = {c.get("name"): c for c in ET.parse(r.junit).getroot().iter("testcase")}
    orders = next(c for n, c in cases.items() if "myapp-test-orders" in (n or ""))
    assert orders.find("failure") is not None
    assert ORDERS_LOG in (orders.findtext("system-out") or "")
    assert ns.left() == []

    # Helm itself, on the same release, stops at the failure: the Job test never runs.
    h = ns.helm("test", "myapp", "-n", ns.name, "--logs", check=False)
    assert h.returncode == 1
    assert "TEST SUITE:     myapp-test-orders" in h.stdout
    assert "Phase:          Failed" in h.stdout
    assert "TEST SUITE:     myapp-test-db" not in h.stdout
    assert DB_LOG not in h.stdout + h.stderr


def test_filter_globs_and_exclusions_select_exactly(actors: ClusterActors, ns: Namespace) -> None:
    ns.install(
        {
            **THREE_HOOKS,
            "test-slow.yaml": pod_hook("test-slow", "echo slow", weight=3),
            "smoke-extra.yaml": pod_hook("smoke-extra", "echo extra", weight=0),
        }
    )
    selection = ["--filter", "myapp-test-*", "--filter", "!*-slow"]
    listed = ns.helm_test("myapp", "--list", *selection, code=0)
    rows = {ln.split()[1]: ln for ln in listed.out.splitlines()[2:]}
    assert set(rows) == {
        "myapp-smoke-extra",
        "myapp-test-connection",
        "myapp-test-orders",
        "myapp-test-db",
        "myapp-test-slow",
    }
    assert "excluded by --filter '!*-slow'" in rows["myapp-test-slow"]
    assert "not matched by --filter 'myapp-test-*'" in rows["myapp-smoke-extra"]
    assert "3 of 5 tests selected" in listed.err

    r = ns.run("myapp", *selection, code=1)  # myapp-test-orders fails
    assert set(r.results) == {
        "myapp-test-connection",
        "myapp-test-orders",
        "myapp-test-db",
    }
    # Helm's own filter syntax is accepted too.
    r = ns.run("myapp", "--filter", "name=myapp-test-db,!name=myapp-test-orders", code=0)
    assert set(r.results) == {"myapp-test-db"}
    assert ns.left() == []


def test_hook_succeeded_pod_still_has_its_logs(actors: ClusterActors, ns: Namespace) -> None:
    hook = pod_hook(
        "test-cache",
        "echo 'redis PING -> PONG'; echo 'cache hit ratio 0.97'",
        delete_policy="hook-succeeded,hook-failed",
        init_script="echo 'waiting for redis: up'",
    )
    ns.install({"test-cache.yaml": hook}, keep_default=False)
    r = ns.run("myapp", code=0, junit=True)
    log = r.results["myapp-test-cache"]["log"]
    # Init container first, then the test container, each behind its header.
    assert log.index("container wait (init): exited 0") < log.index("waiting for redis: up")
    assert log.index("waiting for redis: up") < log.index("container test: exited 0")
    assert "cache hit ratio 0.97" in log
    case = next(iter(ET.parse(r.junit).getroot().iter("testcase")))
    assert "cache hit ratio 0.97" in (case.findtext("system-out") or "")
    assert ns.left() == []


def test_parallel_runs_one_weight_at_once_and_fail_fast_stops(
    actors: ClusterActors, ns: Namespace
) -> None:
    hooks = {
        "test-p1.yaml": pod_hook("test-p1", "sleep 1.5; echo p1 done", weight=0),
        "test-p2.yaml": job_hook("test-p2", "sleep 1.5; echo p2 done", weight=0),
        "test-after.yaml": pod_hook("test-after", "echo after; exit 3", weight=5),
        "test-last.yaml": pod_hook("test-last", "echo last", weight=9),
    }
    ns.install(hooks, keep_default=False)
    res = ns.run("myapp", "--parallel", "-x", code=1).results
    p1, p2 = res["myapp-test-p1"], res["myapp-test-p2"]
    # Same weight, --parallel: their runs overlap.
    assert p1["startedAt"] < p2["startedAt"] + p2["duration"]
    assert p2["startedAt"] < p1["startedAt"] + p1["duration"]
    assert res["myapp-test-after"]["status"] == "failed"
    assert "exited 3" in res["myapp-test-after"]["message"]
    # --fail-fast: Helm's behaviour, on request.
    assert res["myapp-test-last"]["status"] == "skipped"
    assert "--fail-fast after myapp-test-after failed" in res["myapp-test-last"]["message"]
    assert ns.left() == []
