"""Cleanup is guaranteed: after a timeout, Ctrl-C (SIGINT), SIGTERM, ``--keep`` and a crashed
run (SIGKILL, then ``--cleanup``), no Pod or Job created by smokegate remains.

The test plays scheduler/kubelet/job controller (``actors``): hanging hooks really hang (their
``sleep`` runs locally), so their pods are Running when smokegate gives up or is interrupted.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from helmtest_cluster import Api, ClusterActors
from helmtest_support import (
    Helm,
    helm_test,
    helm_test_background,
    job_hook,
    load_json,
    pod_hook,
    results_by_name,
    running_smokegate_pods,
    smokegate_objects,
    wait_for,
)

HANGING = {
    "test-quick.yaml": pod_hook("test-quick", "echo quick ok", weight=0),
    "test-hang-pod.yaml": pod_hook("test-hang-pod", "echo 'polling the queue'; sleep 60", weight=1),
    "test-hang-job.yaml": job_hook("test-hang-job", "echo 'job polling'; sleep 60", weight=1),
    "test-later.yaml": pod_hook("test-later", "echo later", weight=2),
}


def test_timeout_stops_the_test_keeps_its_log_and_leaves_nothing(
    api: Api,
    actors: ClusterActors,
    helm: Helm,
    make_chart: Callable[..., Path],
    kube_namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    ns = kube_namespace
    helm("install", "myapp", str(make_chart(HANGING, keep_default=False)), "-n", ns)
    report = tmp_path / "report.json"
    r = helm_test(
        kubeconfig, "myapp", "-n", ns, "--timeout", "3s", "--parallel", "--report", f"json={report}"
    )
    assert r.code == 1, r.text
    res = results_by_name(load_json(report))
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
    assert smokegate_objects(api, ns) == []


def test_overall_deadline_skips_what_could_not_start(
    api: Api,
    actors: ClusterActors,
    helm: Helm,
    make_chart: Callable[..., Path],
    kube_namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    ns = kube_namespace
    helm("install", "myapp", str(make_chart(HANGING, keep_default=False)), "-n", ns)
    report = tmp_path / "report.json"
    r = helm_test(kubeconfig, "myapp", "-n", ns, "--deadline", "3s", "--report", f"json={report}")
    assert r.code == 1, r.text
    res = results_by_name(load_json(report))
    assert res["myapp-test-quick"]["status"] == "passed"
    assert "the overall deadline (--deadline)" in res["myapp-test-hang-job"]["message"]
    assert res["myapp-test-later"]["status"] == "skipped"
    assert "overall deadline" in res["myapp-test-later"]["message"]
    assert smokegate_objects(api, ns) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_collects_logs_and_leaves_nothing(
    sig: signal.Signals,
    api: Api,
    actors: ClusterActors,
    helm: Helm,
    make_chart: Callable[..., Path],
    kube_namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    ns = kube_namespace
    helm("install", "myapp", str(make_chart(HANGING, keep_default=False)), "-n", ns)
    report = tmp_path / "report.json"
    bg = helm_test_background(kubeconfig, "myapp", "-n", ns, "--parallel", "--report",
                              f"json={report}")  # fmt: skip
    # Both hanging tests (a Pod, and the pod of a Job) are running: interrupt now.
    wait_for(lambda: len(running_smokegate_pods(api, ns)) >= 2, what="two running test pods")
    wait_for(lambda: len(smokegate_objects(api, ns)) >= 3, what="the Job and its pod")
    bg.signal(sig)
    r = bg.finish()
    assert r.code == 130, r.text
    assert "interrupted: collecting logs and deleting what this run created" in r.err
    assert "Traceback" not in r.text
    assert "INTERRUPTED" in r.out
    assert smokegate_objects(api, ns) == []
    data = load_json(report)
    assert data["interrupted"] is True
    res = results_by_name(data)
    assert res["myapp-test-quick"]["status"] == "passed"
    assert res["myapp-test-hang-pod"]["status"] == "skipped"
    assert "interrupted" in res["myapp-test-hang-pod"]["message"]
    assert "polling the queue" in res["myapp-test-hang-pod"]["log"]
    assert "not run" in res["myapp-test-later"]["message"]


def test_keep_then_cleanup(
    api: Api,
    actors: ClusterActors,
    helm: Helm,
    make_chart: Callable[..., Path],
    kube_namespace: str,
    kubeconfig: Path,
) -> None:
    ns = kube_namespace
    hooks = {"test-job.yaml": job_hook("test-job", "echo job ok", delete_policy="hook-succeeded")}
    helm("install", "myapp", str(make_chart(hooks)), "-n", ns)
    r = helm_test(kubeconfig, "myapp", "-n", ns, "--keep")
    assert r.code == 0, r.text
    assert "remove them with `smokegate helm-test --cleanup" in r.err
    kept = smokegate_objects(api, ns)
    assert {k.split("/")[0] for k in kept} == {"pod", "job"}, kept
    assert len(kept) == 3  # test-connection's pod, the Job and its pod

    # --older-than spares recent objects (a run in progress elsewhere).
    r = helm_test(kubeconfig, "--cleanup", "-n", ns, "--older-than", "1h")
    assert r.code == 0, r.text
    assert len(smokegate_objects(api, ns)) == 3
    r = helm_test(kubeconfig, "myapp", "--cleanup", "-n", ns)
    assert r.code == 0, r.text
    assert "cleanup: 3 object(s) of release myapp removed" in r.err
    assert "deleted job/myapp-test-job-sg" in r.out
    assert smokegate_objects(api, ns) == []


def test_a_crashed_run_is_cleaned_up_by_label(
    api: Api,
    actors: ClusterActors,
    helm: Helm,
    make_chart: Callable[..., Path],
    kube_namespace: str,
    kubeconfig: Path,
) -> None:
    ns = kube_namespace
    helm("install", "myapp", str(make_chart(HANGING, keep_default=False)), "-n", ns)
    bg = helm_test_background(kubeconfig, "myapp", "-n", ns, "--parallel")
    wait_for(lambda: len(running_smokegate_pods(api, ns)) >= 2, what="two running test pods")
    bg.signal(signal.SIGKILL)  # no chance to clean up
    assert bg.finish().code == -signal.SIGKILL
    left = smokegate_objects(api, ns)
    assert any(x.startswith("job/myapp-test-hang-job-sg") for x in left), left
    r = helm_test(kubeconfig, "--cleanup", "-n", ns)
    assert r.code == 0, r.text
    assert "hook myapp-test-hang-job" in r.out
    assert smokegate_objects(api, ns) == []
