"""serve's ``inCluster: …`` release rule: a webhook for the release starts a run whose suites run
in a Job in the release's namespace; the run is stored, reported back (Event) and shown like
any other, and the Job, its pod and its ConfigMap are gone afterwards.

The test plays helm-controller (the HelmRelease's status) and job controller, scheduler and
kubelet (incluster_kubelet.py); serve is the real process, with the admin kubeconfig.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_flux import apply, events_for, helmrelease, patch_status, status_ready
from incluster_support import Cluster
from tests.helpers import free_port
from tests.server.support import ServeProcess, config_text, flux_event, get_json

from smokegate.server.config import parse_config
from smokegate.server.config_sections import ConfigError

SUITE = """\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: web}
spec:
  checks:
    - name: revision
      exec:
        command: 'echo "at $REV"; test "$REV" = 6.6.1 && test "$PW" != ""'
        env: {REV: "${release.revision}", PW: "${secret:db/password}"}
"""


@pytest.fixture
def serve(cluster: Cluster, tmp_path: Path) -> Iterator[ServeProcess]:
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "web.yaml").write_text(SUITE)
    port = free_port()
    kube = f"kubernetes:\n  enabled: true\n  kubeconfig: {cluster.kubeconfig}\n  waitTimeout: 30s\n"
    rules = (
        f"  - match: {{namespace: {cluster.name}}}\n    suites: [web]\n"
        "    inCluster: {serviceAccount: smokegate, timeout: 2m}\n"
    )
    proc = ServeProcess(
        tmp_path, config_text(port, f"sqlite:///{tmp_path / 'h.db'}", extra=kube, rules=rules),
        port=port,
    ).start()  # fmt: skip
    yield proc
    proc.stop()


def test_a_release_rule_runs_its_suites_in_the_cluster(
    cluster: Cluster, serve: ServeProcess
) -> None:
    ns = cluster.name
    apply(cluster.kube_env, helmrelease("podinfo", ns))
    patch_status(
        cluster.kube_env, "hr", "podinfo", ns, status_ready("podinfo", ns, 1, "6.6.1", version=1)
    )
    baseline = cluster.objects()
    assert serve.post_hook(flux_event(namespace=ns, revision="6.6.1"))[0] == 202
    (run,) = serve.wait_for_runs(1, timeout=60)
    report = get_json(f"{serve.url}/api/v1/runs/{run['id']}")["report"]
    assert run["verdict"] == "passed", report
    assert [r["id"] for r in report["results"]] == ["web/revision"]
    assert report["context"]["inCluster"]["namespace"] == ns
    assert report["context"]["trigger"] == "webhook"
    (ran,) = cluster.actors.runs
    assert "release.revision=6.6.1" in ran["argv"]
    (event,) = events_for(cluster.kube_env, ns, "podinfo")
    assert event["reason"] == "SmokeTestSucceeded"
    left = sorted(cluster.objects() - baseline)
    assert [o for o in left if not o.startswith("Event/")] == []


def test_in_cluster_needs_kubernetes() -> None:
    text = (
        "apiVersion: smokegate.io/v1\nkind: ServerConfig\n"
        "releases:\n  - match: {namespace: apps}\n    suites: [web]\n    inCluster: true\n"
    )
    with pytest.raises(ConfigError, match=r"releases\[0\].inCluster runs a Job: it needs"):
        parse_config(text, "serve.yaml", check_suites=False)
    config = parse_config(text + "kubernetes: {enabled: true}\n", "serve.yaml", check_suites=False)
    assert config.releases[0].in_cluster is not None
    off = parse_config(text.replace("true", "false"), "serve.yaml", check_suites=False)
    assert off.releases[0].in_cluster is None
