"""``smokegate serve`` with ``kubernetes.enabled`` against the real test apiserver, the test
playing Flux helm-controller (status patched through the status subresource): release facts,
the ``smokegate.io/suites`` annotation, waiting for the upgrade to finish, the Event on the
HelmRelease and the result sent to the notification-controller."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_flux import (  # noqa: F401  (*_fixture: fixtures, used by name)
    NotifyServer,
    apply,
    events_for,
    helmrelease,
    notify_server_fixture,
    patch_status,
    snapshot,
    status_ready,
    status_reconciling,
)
from kubeenv import KubeEnv
from tests.helpers import free_port
from tests.server.support import ServeProcess, Target, config_text, flux_event, get_json


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


@pytest.fixture
def serve(
    tmp_path: Path, kube_env: KubeEnv, notify_server: NotifyServer, target: Target
) -> Iterator[ServeProcess]:
    from tests.server.support import write_suites

    write_suites(tmp_path / "suites", target.url)
    port = free_port()
    kube = (
        "kubernetes:\n  enabled: true\n"
        f"  kubeconfig: {kube_env.kubeconfig}\n"
        f"  notifyFlux: {notify_server.url}\n"
        "  waitTimeout: 30s\n"
    )
    text = config_text(
        port, f"sqlite:///{tmp_path / 'h.db'}", extra=kube,
        rules="  - match: {namespace: nothing-matches-this}\n    suites: [web]\n",
    )  # fmt: skip
    proc = ServeProcess(tmp_path, text, port=port).start()
    yield proc
    proc.stop()


def _release(env: KubeEnv, ns: str, revision: str = "6.6.1") -> dict:
    hr = helmrelease("podinfo", ns)
    hr["metadata"]["annotations"] = {"smokegate.io/suites": "web"}
    apply(env, hr)
    patch_status(env, "hr", "podinfo", ns, status_ready("podinfo", ns, 1, revision, version=1))
    return hr


def test_webhook_run_uses_release_facts_and_reports_back(
    serve: ServeProcess, kube_env: KubeEnv, kube_namespace: str, notify_server: NotifyServer,
    target: Target,
) -> None:  # fmt: skip
    ns = kube_namespace
    _release(kube_env, ns)
    assert serve.post_hook(flux_event(namespace=ns, revision="6.6.1"))[0] == 202
    (run,) = serve.wait_for_runs(1)
    assert run["verdict"] == "passed", get_json(f"{serve.url}/api/v1/runs/{run['id']}")
    report = get_json(f"{serve.url}/api/v1/runs/{run['id']}")["report"]
    assert report["context"]["helmRelease"] == f"{ns}/podinfo"
    assert report["context"]["release"]["revision"] == "6.6.1"
    assert any(n == "Event SmokeTestSucceeded" for n in report["context"]["reportedTo"])
    # ${release.namespace} and ${release.revision} came from the HelmRelease's status.
    assert f"/health?rev=6.6.1&ns={ns}" in target.requests
    events = events_for(kube_env, ns, "podinfo")
    assert [e["reason"] for e in events] == ["SmokeTestSucceeded"]
    assert events[0]["message"] == "2 passed, 0 failed"
    (sent,) = notify_server.received
    assert sent.json()["reason"] == "SmokeTestSucceeded"
    assert sent.json()["involvedObject"] == {**sent.json()["involvedObject"], "name": "podinfo"}


def test_run_waits_for_flux_to_finish_the_upgrade(
    serve: ServeProcess, kube_env: KubeEnv, kube_namespace: str
) -> None:
    ns = kube_namespace
    hr = _release(kube_env, ns)
    hr["spec"]["chart"]["spec"]["version"] = "6.6.2"
    apply(kube_env, hr)
    previous = snapshot("podinfo", ns, "6.6.1", version=1)
    patch_status(kube_env, "hr", "podinfo", ns, status_reconciling(2, "6.6.2", previous))
    # The event can arrive before helm-controller's status says so (and TestSucceeded later).
    assert serve.post_hook(flux_event(namespace=ns, revision="6.6.2"))[0] == 202
    time.sleep(1.5)
    assert serve.runs() == []  # still waiting for Ready at 6.6.2
    patch_status(kube_env, "hr", "podinfo", ns, status_ready("podinfo", ns, 2, "6.6.2"))
    t0 = time.monotonic()
    (run,) = serve.wait_for_runs(1)
    assert time.monotonic() - t0 < 5
    assert run["revision"] == "6.6.2" and run["verdict"] == "passed"


def test_missing_helmrelease_is_an_error_run(serve: ServeProcess, kube_namespace: str) -> None:
    assert serve.post_hook(flux_event(name="ghost", namespace=kube_namespace))[0] == 202
    (run,) = serve.wait_for_runs(1)
    assert run["verdict"] == "error"
    assert run["message"] == f"HelmRelease {kube_namespace}/ghost not found"


def test_release_without_suites_runs_nothing(
    serve: ServeProcess, kube_env: KubeEnv, kube_namespace: str
) -> None:
    ns = kube_namespace
    apply(kube_env, helmrelease("bare", ns))
    patch_status(kube_env, "hr", "bare", ns, status_ready("bare", ns, 1, "1.0.0"))
    status, answer = serve.post_hook(flux_event(name="bare", namespace=ns, revision="1.0.0"))
    assert status == 202
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        job = get_json(f"{serve.url}/api/v1/jobs/{answer['jobId']}")
        if job["state"] == "done":
            break
        time.sleep(0.1)
    assert job["state"] == "done" and job["runId"] is None
    assert serve.runs() == []


def test_suites_from_labelled_configmaps(
    tmp_path: Path, kube_env: KubeEnv, kube_namespace: str, target: Target
) -> None:
    ns = kube_namespace
    suite = (
        "apiVersion: smokegate.io/v1\nkind: Suite\nmetadata: {name: from-configmap}\n"
        f'spec:\n  checks:\n    - name: up\n      http: {{url: "{target.url}/health?cm=1"}}\n'
    )
    for name, labels in (("smoke-suites", {"smokegate.io/suite": "true"}), ("unlabelled", {})):
        cm = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": name, "namespace": ns, "labels": labels},
              "data": {"suite.yaml": suite.replace("from-configmap", f"from-{name}"),
                       "README": "not a suite"}}  # fmt: skip
        kube_env.kubectl("apply", "-f", "-", input=json.dumps(cm))
    hr = helmrelease("podinfo", ns)
    hr["metadata"]["annotations"] = {"smokegate.io/suites": "from-smoke-suites"}
    apply(kube_env, hr)
    patch_status(kube_env, "hr", "podinfo", ns, status_ready("podinfo", ns, 1, "1.2.3"))
    (tmp_path / "suites").mkdir()
    port = free_port()
    extra = (
        f"kubernetes: {{enabled: true, kubeconfig: {kube_env.kubeconfig}, recordEvents: false}}\n"
    )
    text = config_text(port, f"sqlite:///{tmp_path / 'h.db'}", extra=extra).replace(
        "suites: {directories: [suites]}",
        f"suites: {{directories: [suites], configMaps: {{enabled: true, namespaces: [{ns}]}}}}",
    )
    proc = ServeProcess(tmp_path, text, port=port).start()
    try:
        assert proc.post_hook(flux_event(namespace=ns, revision="1.2.3"))[0] == 202
        (run,) = proc.wait_for_runs(1)
        assert run["verdict"] == "passed", run
        report = get_json(f"{proc.url}/api/v1/runs/{run['id']}")["report"]
        assert [r["id"] for r in report["results"]] == ["from-smoke-suites/up"]
        assert f"configmap-{ns}-smoke-suites-suite.yaml" in report["suites"][0]["file"]
        assert "/health?cm=1" in target.requests
    finally:
        proc.stop()
