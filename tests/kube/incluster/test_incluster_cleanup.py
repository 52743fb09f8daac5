"""Nothing is left behind: after success and failure (test_incluster_run.py), after the job
timeout and after Ctrl-C (SIGINT), SIGTERM and a second Ctrl-C to the smokegate process, every
namespaced kind the apiserver serves is listed and holds nothing the run created.

The test plays job controller, scheduler and kubelet (incluster_kubelet.py): the pod's
smokegate really runs, its slow check really sleeps, and stopping the pod (a graceful delete)
really sends it SIGTERM, so the report of what finished comes back through its log.
"""

from __future__ import annotations

import signal

import pytest
from incluster_support import Cluster, wait_for

SLOW = """\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: slow}
spec:
  checks:
    - name: quick
      exec: {command: "echo quick done"}
    - name: slow
      timeout: 120s
      exec: {command: "echo polling; sleep 60"}
"""


def test_timeout_stops_the_pod_reports_what_finished_and_leaves_nothing(
    cluster: Cluster,
) -> None:
    cluster.suite(SLOW, "slow.yaml")
    r = cluster.run("slow.yaml", "--job-timeout", "4s", "--report", "junit=junit.xml", code=1)
    assert "did not finish within 4.00s" in r.err
    # The pod was stopped as a kubelet stops it (SIGTERM), and printed what finished.
    (ran,) = cluster.actors.runs
    assert ran["signals"] == ["SIGTERM"] and ran["exit"] == 130
    assert "INTERRUPTED 1 passed, 1 skipped" in r.out
    res = r.results
    assert res["slow/quick"]["status"] == "passed"
    assert res["slow/slow"]["status"] == "skipped"
    runner = res["in-cluster/runner"]
    assert runner["status"] == "error" and runner["errorKind"] == "timeout"
    assert "did not finish within 4.00s" in runner["message"]
    assert r.report["interrupted"] is True and r.report["ok"] is False
    assert "in-cluster/runner" in (cluster.tmp_path / "junit.xml").read_text() or (
        'name="runner"' in (cluster.tmp_path / "junit.xml").read_text()
    )
    assert cluster.left() == []


@pytest.mark.parametrize(
    "signals",
    [[signal.SIGINT], [signal.SIGTERM], [signal.SIGINT, signal.SIGINT]],
    ids=["SIGINT", "SIGTERM", "SIGINT-twice"],
)
def test_interrupt_collects_the_partial_report_and_leaves_nothing(
    cluster: Cluster, signals: list[signal.Signals]
) -> None:
    cluster.suite(SLOW, "slow.yaml")
    bg = cluster.start("slow.yaml")
    # The pod runs and its quick check has finished (streamed here): interrupt now.
    wait_for(lambda: "✓ slow/quick" in bg.output_so_far(), what="the quick check's line")
    for sig in signals:
        bg.signal(sig)
    r = bg.finish()
    assert r.code == 130, r.text
    assert "interrupted: stopping the runner pod" in r.err
    assert "Traceback" not in r.text
    (ran,) = cluster.actors.runs
    assert ran["signals"][:1] == ["SIGTERM"]
    report = cluster.report()
    assert report["interrupted"] is True
    res = {x["id"]: x for x in report["results"]}
    assert res["slow/slow"]["status"] == "skipped"
    if len(signals) == 1:
        # The pod had time to report what finished, as a local run does on Ctrl-C.
        assert "INTERRUPTED 1 passed, 1 skipped" in r.out
        assert res["slow/quick"]["status"] == "passed"
        assert "interrupted" in res["slow/slow"]["message"]
    else:
        # The second Ctrl-C skipped waiting for it: what the pod had not reported is skipped.
        assert res["slow/quick"]["status"] in ("passed", "skipped")
    assert cluster.left() == []
