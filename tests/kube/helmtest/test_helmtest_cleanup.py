"""Cleanup is guaranteed: after a timeout, Ctrl-C (SIGINT), SIGTERM, ``--keep`` and a crashed
run (SIGKILL, then ``--cleanup``), no Pod or Job created by smokegate remains.

The test plays scheduler/kubelet/job controller (``actors``): hanging hooks really hang (their
``sleep`` runs locally), so their pods are Running when smokegate gives up or is interrupted.
"""

from __future__ import annotations

import signal

import pytest
from helmtest_cluster import ClusterActors
from helmtest_support import Namespace, job_hook, pod_hook, results_by_name, wait_for

HANGING = {
    "test-quick.yaml": pod_hook("test-quick", "echo quick ok", weight=0),
    "test-hang-pod.yaml": pod_hook("test-hang-pod", "echo 'polling the queue'; sleep 60", weight=1),
    "test-hang-job.yaml": job_hook("test-hang-job", "echo 'job polling'; sleep 60", weight=1),
    "test-later.yaml": pod_hook("test-later", "echo later", weight=2),
}


def test_timeout_stops_the_test_keeps_its_log_and_leaves_nothing(
    actors: ClusterActors, ns: Namespace
) -> None:
    ns.install(HANGING, keep_default=False)
    res = ns.run("myapp", "--timeout", "3s", "--parallel", code=1).results
    assert res["myapp-test-quick"]["status"] == "passed"
    for name in ("myapp-test-hang-pod", "myapp-test-hang-job"):
        assert res[name]["status"] == "failed"
        assert res[name]["errorKind"] == "timeout"
        assert "did not finish within 3.00s (--timeout)" in res[name]["message"]
    assert "Running: container test running" in res["myapp-test-hang-pod"]["message"]
    # What it printed before it was stopped is kept.
    assert "polling the queue" in res["myapp-test-hang-pod"]["log"]
    assert "job polling" in res["myapp-test-hang-job"]["log"]
    # A timeout is a failure, not a reason to stop: the next weight still ran.
    assert res["myapp-test-later"]["status"] == "passed"
    assert ns.left() == []


def test_overall_deadline_skips_what_could_not_start(actors: ClusterActors, ns: Namespace) -> None:
    ns.install(HANGING, keep_default=False)
    res = ns.run("myapp", "--deadline", "3s", code=1).results
    assert res["myapp-test-quick"]["status"] == "passed"
    assert "the overall deadline (--deadline)" in res["myapp-test-hang-job"]["message"]
    assert res["myapp-test-later"]["status"] == "skipped"
    assert "overall deadline" in res["myapp-test-later"]["message"]
    assert ns.left() == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_collects_logs_and_leaves_nothing(
    sig: signal.Signals, actors: ClusterActors, ns: Namespace
) -> None:
    ns.install(HANGING, keep_default=False)
    bg = ns.start("myapp", "--parallel", report=True)
    # Both hanging tests (a Pod, and the pod of a Job) are running: interrupt now.
    ns.wait_for_running_pods(2)
    wait_for(lambda: len(ns.left()) >= 3, what="the Job and its pod")
    bg.signal(sig)
    r = bg.finish()
    assert r.code == 130, r.text
    assert "interrupted: collecting logs and deleting what this run created" in r.err
    assert "Traceback" not in r.text
    assert "INTERRUPTED" in r.out
    assert ns.left() == []
    data = ns.report()
    assert data["interrupted"] is True
    res = results_by_name(data)
    assert res["myapp-test-quick"]["status"] == "passed"
    assert res["myapp-test-hang-pod"]["status"] == "skipped"
    assert "interrupted" in res["myapp-test-hang-pod"]["message"]
    assert "polling the queue" in res["myapp-test-hang-pod"]["log"]
    assert "not run" in res["myapp-test-later"]["message"]


def test_keep_then_cleanup(actors: ClusterActors, ns: Namespace) -> None:
    ns.install(
        {"test-job.yaml": job_hook("test-job", "echo job ok", delete_policy="hook-succeeded")}
    )
    r = ns.helm_test("myapp", "--keep", code=0)
    assert "remove them with `smokegate helm-test --cleanup" in r.err
    kept = ns.left()
    assert {k.split("/")[0] for k in kept} == {"pod", "job"}, kept
    assert len(kept) == 3  # test-connection's pod, the Job and its pod

    # --older-than spares recent objects (a run in progress elsewhere).
    ns.helm_test("--cleanup", "--older-than", "1h", code=0)
    assert len(ns.left()) == 3
    r = ns.helm_test("myapp", "--cleanup", code=0)
    assert "cleanup: 3 object(s) of release myapp removed" in r.err
    assert "deleted job/myapp-test-job-sg" in r.out
    assert ns.left() == []


def test_a_crashed_run_is_cleaned_up_by_label(actors: ClusterActors, ns: Namespace) -> None:
    ns.install(HANGING, keep_default=False)
    bg = ns.start("myapp", "--parallel")
    ns.wait_for_running_pods(2)
    bg.signal(signal.SIGKILL)  # no chance to clean up
    assert bg.finish().code == -signal.SIGKILL
    left = ns.left()
    assert any(x.startswith("job/myapp-test-hang-job-sg") for x in left), left
    r = ns.helm_test("--cleanup", code=0)
    assert "hook myapp-test-hang-job" in r.out
    assert ns.left() == []
