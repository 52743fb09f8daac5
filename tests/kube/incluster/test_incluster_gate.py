"""``smokegate gate --in-cluster``: the gate waits for Flux and reports back as always; only the
suites run in a Job in the release's namespace, with the release's facts as ``${release.*}``.

The test plays helm-controller (the HelmRelease's status, patched) and job controller,
scheduler and kubelet (incluster_kubelet.py).
"""

from __future__ import annotations

import json
import subprocess
import sys

from fixtures_flux import apply, events_for, helmrelease, patch_status, status_ready
from incluster_support import Cluster, cli_env

SUITE = """\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: podinfo}
spec:
  checks:
    - name: version-${release.revision}
      exec:
        command: 'echo "release $NAME at $REV in $NS"; test "$REV" = 6.6.1'
        env: {NAME: "${release.name}", REV: "${release.revision}", NS: "${release.namespace}"}
"""
HOOK = {
    "podinfo-grpc-test-a1b2c": {
        "lastStarted": "2025-01-01T00:00:01Z",
        "lastCompleted": "2025-01-01T00:00:04Z",
        "phase": "Succeeded",
    }
}


def test_gate_runs_its_suites_in_the_cluster_and_reports_back(cluster: Cluster) -> None:
    ns = cluster.name
    apply(cluster.kube_env, helmrelease("podinfo", ns, test={"enable": True}))
    patch_status(
        cluster.kube_env, "hr", "podinfo", ns,
        status_ready("podinfo", ns, 1, "6.6.1", version=1, test_hooks=HOOK, test_success=True),
    )  # fmt: skip
    cluster.baseline = cluster.objects()
    cluster.suite(SUITE, "podinfo.yaml")
    report = cluster.tmp_path / "gate.json"
    proc = subprocess.run(
        [sys.executable, "-m", "smokegate", "gate", "hr/podinfo", "-n", ns, "podinfo.yaml",
         "--in-cluster", "--service-account", "smokegate", "--kubeconfig", str(cluster.kubeconfig),
         "--report", f"json={report}"],
        capture_output=True, text=True, env=cli_env(), cwd=cluster.tmp_path, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✓ podinfo/version-6.6.1 exec" in proc.stdout
    assert f"recorded Event SmokeTestSucceeded on helmrelease {ns}/podinfo" in proc.stderr
    (ran,) = cluster.actors.runs
    assert "release.revision=6.6.1" in ran["argv"] and f"release.namespace={ns}" in ran["argv"]
    data = json.loads(report.read_text())
    assert [r["id"] for r in data["results"]] == [
        "helm-test/podinfo-grpc-test-a1b2c",
        "podinfo/version-6.6.1",
    ]
    assert data["context"]["helmRelease"] == f"{ns}/podinfo"
    assert data["context"]["release"]["revision"] == "6.6.1"
    assert data["context"]["inCluster"]["namespace"] == ns
    (event,) = events_for(cluster.kube_env, ns, "podinfo")
    assert event["reason"] == "SmokeTestSucceeded"
    # Only the Event the gate reports back with is new.
    assert [o for o in cluster.left() if not o.startswith("Event/")] == []
