"""``kube`` checks against a real kube-apiserver.

No kubelet or controllers run here: the tests write each object's ``status`` through the status
subresource the way the Deployment/StatefulSet/DaemonSet/Job controllers and the kubelet do, then
run the real CLI (``smokegate run --kubeconfig …``) and read what it reports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fixtures_flux import apply, cond, kubeconfig_fixture, patch_status  # noqa: F401
from kubeenv import KubeEnv
from tests.helpers import free_port, load_json, run_cli, write_suite

POD_TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "web", "image": "ghcr.io/example/web:1.0"}]},
}


def workload(kind: str, name: str, ns: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"selector": {"matchLabels": {"app": "web"}}, "template": POD_TEMPLATE}
    if kind == "StatefulSet":
        body["serviceName"] = name
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": {**body, **spec},
    }


def run_suite(tmp_path: Path, kubeconfig: str, ns: str, checks: str, *extra: str) -> Any:
    report = tmp_path / "report.json"
    suite = write_suite(tmp_path, checks)
    r = run_cli(
        "run",
        str(suite),
        "--kubeconfig",
        kubeconfig,
        "-n",
        ns,
        "--report",
        f"json={report}",
        *extra,
    )
    assert "Traceback" not in r.text, r.text
    results = {x["name"]: x for x in load_json(report)["results"]} if report.exists() else {}
    return r, results


def test_deployment_readiness_says_why(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    apply(kube_env, workload("Deployment", "web", ns, replicas=3))
    checks = "- name: web\n  kube:\n    ready: {kind: Deployment, name: web}\n"

    r, res = run_suite(tmp_path, kubeconfig, ns, checks)
    assert r.code == 1
    assert "controller has not observed the latest spec" in res["web"]["message"] or (
        "no status yet" in res["web"]["message"]
    )

    # The deployment controller mid-rollout: 2 of 3 replicas on the new template.
    patch_status(
        kube_env, "deployment", "web", ns,
        {"observedGeneration": 1, "replicas": 4, "updatedReplicas": 2, "readyReplicas": 3,
         "availableReplicas": 3},
    )  # fmt: skip
    r, res = run_suite(tmp_path, kubeconfig, ns, checks)
    assert r.code == 1
    evidence = [e["actual"] for e in res["web"]["evidence"]]
    assert evidence == [
        "2/3 replicas updated",
        "2 old replica(s) pending termination",
    ], evidence
    assert f"deployment {ns}/web: expected ready, got 2/3 replicas updated" in r.out

    # Counts met: kstatus also wants the controller's conditions (deploymentConditions; the API
    # server defaults progressDeadlineSeconds to 600, so Progressing is maintained).
    patch_status(
        kube_env, "deployment", "web", ns,
        {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
         "availableReplicas": 3, "conditions": [
             cond("Available", "True", "MinimumReplicasAvailable"),
             cond("Progressing", "True", "NewReplicaSetAvailable")]},
    )  # fmt: skip
    r, res = run_suite(tmp_path, kubeconfig, ns, checks)
    assert r.code == 0, r.text

    # A stuck rollout is reported with the controller's own words.
    patch_status(
        kube_env, "deployment", "web", ns,
        {"updatedReplicas": 1, "conditions": [
            cond("Progressing", "False", "ProgressDeadlineExceeded",
                 'ReplicaSet "web-5d4f" has timed out progressing.')]},
    )  # fmt: skip
    r, res = run_suite(tmp_path, kubeconfig, ns, checks)
    assert r.code == 1
    assert "ProgressDeadlineExceeded" in res["web"]["message"]
    assert 'ReplicaSet "web-5d4f" has timed out progressing.' in res["web"]["message"]


def test_statefulset_daemonset_job_pod(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    apply(kube_env, workload("StatefulSet", "db", ns, replicas=2))
    apply(kube_env, workload("DaemonSet", "agent", ns))
    apply(
        kube_env,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "migrate", "namespace": ns},
            "spec": {
                "template": {
                    **POD_TEMPLATE,
                    "spec": {**POD_TEMPLATE["spec"], "restartPolicy": "Never"},
                }
            },
        },
    )
    apply(
        kube_env,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": ns},
            "spec": POD_TEMPLATE["spec"],
        },
    )
    patch_status(
        kube_env, "statefulset", "db", ns,
        {"observedGeneration": 1, "replicas": 2, "readyReplicas": 1, "currentReplicas": 2,
         "updatedReplicas": 2, "currentRevision": "db-1", "updateRevision": "db-1"},
    )  # fmt: skip
    patch_status(
        kube_env, "daemonset", "agent", ns,
        {"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
         "updatedNumberScheduled": 3, "numberAvailable": 2, "numberReady": 2,
         "numberMisscheduled": 0},
    )  # fmt: skip
    patch_status(
        kube_env, "job", "migrate", ns,
        {"failed": 1, "conditions": [cond("Failed", "True", "BackoffLimitExceeded",
                                          "Job has reached the specified backoff limit")]},
    )  # fmt: skip
    patch_status(
        kube_env, "pod", "p", ns,
        {"phase": "Running", "conditions": [cond("Ready", "False", "ContainersNotReady",
                                                 "containers with unready status: [web]")],
         "containerStatuses": [{"name": "web", "ready": False, "restartCount": 5, "image": "x",
                                "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff",
                                "message": "back-off 5m0s restarting failed container"}}}]},
    )  # fmt: skip
    checks = """
- name: db
  kube: {ready: {kind: StatefulSet, name: db}}
- name: agent
  kube: {ready: {apiVersion: apps/v1, kind: DaemonSet, name: agent}}
- name: migrate
  kube: {ready: {kind: Job, name: migrate}}
- name: pod
  kube: {ready: {kind: Pod, name: p}}
"""
    r, res = run_suite(tmp_path, kubeconfig, ns, checks)
    assert r.code == 1
    assert res["db"]["message"].endswith("got 1/2 replicas ready")
    assert "2/3 pods available" in res["agent"]["message"]
    assert "BackoffLimitExceeded" in res["migrate"]["message"]
    assert "CrashLoopBackOff: back-off 5m0s" in json.dumps(res["pod"]["evidence"])

    patch_status(kube_env, "statefulset", "db", ns, {"readyReplicas": 2, "availableReplicas": 2})
    patch_status(kube_env, "daemonset", "agent", ns, {"numberAvailable": 3, "numberReady": 3})
    patch_status(
        kube_env, "job", "migrate", ns,
        {"succeeded": 1, "conditions": [cond("Complete", "True", "", "")]},
    )  # fmt: skip
    patch_status(kube_env, "pod", "p", ns, {"conditions": [cond("Ready", "True", "", "")]})
    r, res = run_suite(tmp_path, kubeconfig, ns, checks)
    assert r.code == 0, r.text


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {
            "kind": "Widget",
            "plural": "widgets",
            "singular": "widget",
            "listKind": "WidgetList",
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def widget_crd(kube_env: KubeEnv) -> None:
    kube_env.kubectl("apply", "-f", "-", input=json.dumps(CRD))
    kube_env.kubectl(
        "wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=60s"
    )


def test_custom_resource_ready_condition_via_discovery(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path, widget_crd: None
) -> None:
    ns = kube_namespace
    apply(
        kube_env,
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": ns},
            "spec": {},
        },
    )
    patch_status(
        kube_env, "widget", "w", ns,
        {"observedGeneration": 1,
         "conditions": [cond("Ready", "False", "IssuerNotReady", "issuer acme is not ready")]},
    )  # fmt: skip
    checks = """
- name: widget
  kube: {ready: {apiVersion: example.com/v1, kind: Widget, name: w}}
- name: typo-kind
  kube: {ready: {apiVersion: example.com/v1, kind: Gadget, name: w}}
- name: no-api-version
  kube: {ready: {kind: Widget, name: w}}
- name: no-such-group
  kube: {exists: {apiVersion: nothing.example.org/v1, kind: Widget, name: w}}
"""
    r, res = run_suite(tmp_path, kubeconfig, ns, checks)
    assert r.code == 1
    assert "Ready=False (IssuerNotReady): issuer acme is not ready" in res["widget"]["message"]
    assert "example.com/v1 has no kind 'Gadget'" in res["typo-kind"]["message"]
    assert "Widget" in res["typo-kind"]["message"]  # lists what the group serves
    assert "give its apiVersion" in res["no-api-version"]["message"]
    assert "not served by this cluster" in res["no-such-group"]["message"]

    patch_status(
        kube_env, "widget", "w", ns, {"conditions": [cond("Ready", "True", "Ready", "all good")]}
    )
    r, res = run_suite(tmp_path, kubeconfig, ns, checks, "-k", "widget")
    assert r.code == 0, r.text


def test_exists_absent_and_helmrelease(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    kube_env.kubectl("create", "service", "clusterip", "api", "--tcp=80:8080", "-n", ns)
    checks = """
- name: api-exists
  kube: {exists: {kind: Service, name: api}}
- name: legacy-absent
  kube: {absent: {kind: Service, name: legacy}}
- name: api-absent
  kube: {absent: {kind: Service, name: api}}
- name: legacy-exists
  kube: {exists: {kind: Service, name: legacy}}
- name: ns-exists
  kube: {exists: {kind: Namespace, name: default}}
"""
    r, res = run_suite(tmp_path, kubeconfig, ns, checks)
    assert r.code == 1
    status = {k: v["status"] for k, v in res.items()}
    assert status == {
        "api-exists": "passed",
        "legacy-absent": "passed",
        "api-absent": "failed",
        "legacy-exists": "failed",
        "ns-exists": "passed",
    }
    assert res["legacy-exists"]["message"] == f"service {ns}/legacy: not found"
    assert res["legacy-exists"]["errorKind"] == "not_found"


def test_configmap_and_secret_keys_and_values(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    secret_value = "hunter2-Very-Long-Password"
    kube_env.kubectl(
        "create", "secret", "generic", "db", "-n", ns,
        f"--from-literal=password={secret_value}", "--from-literal=username=app",
    )  # fmt: skip
    kube_env.kubectl("create", "configmap", "app", "-n", ns, "--from-literal=mode=production")
    checks = """
- name: secret-ok
  kube: {secret: {name: db, keys: [username], values: {password: '^.{16,}$'}}}
- name: secret-bad
  kube: {secret: {name: db, keys: [api-key], values: {password: '^short$'}}}
- name: cm-ok
  kube: {configMap: {name: app, values: {mode: '^production$'}}}
- name: cm-bad
  kube: {configMap: {name: app, values: {mode: '^staging$'}}}
- name: cm-missing
  kube: {configMap: {name: nope}}
"""
    r, res = run_suite(tmp_path, kubeconfig, ns, checks)
    assert r.code == 1
    assert [res[n]["status"] for n in ("secret-ok", "cm-ok")] == ["passed", "passed"]
    evidence = res["secret-bad"]["evidence"]
    assert evidence[0] == {
        "subject": f"secret {ns}/db",
        "expected": "key api-key",
        "actual": "missing (has: password, username)",
    }
    assert evidence[1]["actual"] == "a value that does not match (not shown)"
    assert res["cm-bad"]["status"] == "failed"
    assert res["cm-missing"]["message"] == f"configmap {ns}/nope: not found"
    # Values are never printed, not even the ConfigMap's.
    report = (tmp_path / "report.json").read_text()
    for text in (r.out, r.err, report):
        assert secret_value not in text
        assert "production" not in text


def test_spec_validation(kubeconfig: str, tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        """
- name: two
  kube: {ready: {kind: Pod, name: a}, absent: {kind: Pod, name: b}}
- name: bad-regex
  kube: {secret: {name: s, values: {k: '('}}}
""",
    )
    r = run_cli("run", str(suite), "--kubeconfig", kubeconfig)
    assert r.code == 2
    assert "give exactly one of ready, exists, absent, secret, configMap" in r.err
    assert "invalid regex" in r.err


def test_namespace_defaults_and_config_errors(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    kube_env.kubectl("create", "configmap", "here", "-n", ns)
    suite = write_suite(tmp_path, "- name: cm\n  kube: {exists: {kind: ConfigMap, name: here}}\n")
    # -n sets the default namespace
    assert run_cli("run", str(suite), "--kubeconfig", kubeconfig, "-n", ns).code == 0
    # without -n: the context's namespace ("default" in the test kubeconfig)
    r = run_cli("run", str(suite), "--kubeconfig", kubeconfig)
    assert r.code == 1 and "configmap default/here: not found" in r.out
    # KUBECONFIG works like kubectl's (a list; missing files skipped)
    r = run_cli("run", str(suite), "-n", ns, env={"KUBECONFIG": f"/nonexistent:{kubeconfig}"})
    assert r.code == 0, r.text
    # an unusable configuration is a usage error before anything runs (see below)
    r = run_cli("run", str(suite), "--kubeconfig", str(tmp_path / "missing"))
    assert r.code == 2
    assert "kubeconfig" in r.err and "missing" in r.err and "Traceback" not in r.text
    # an apiserver that is not there: connection error, named
    dead = tmp_path / "dead.yaml"
    cfg = json.loads(Path(kubeconfig).read_text())
    cfg["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    dead.write_text(json.dumps(cfg))
    r = run_cli("run", str(suite), "--kubeconfig", str(dead))
    assert r.code == 1
    assert "configmap default/here: cannot reach the Kubernetes API" in r.out


def test_runs_without_kube_checks_never_touch_the_cluster(tmp_path: Path) -> None:
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        suite = write_suite(tmp_path, f"- name: tcp\n  tcp: {{host: 127.0.0.1, port: {port}}}\n")
        r = run_cli(
            "run", str(suite), env={"KUBECONFIG": str(tmp_path / "nope"), "HOME": str(tmp_path)}
        )
    assert r.code == 0, r.text


def test_unusable_kube_configuration_is_a_usage_error_before_anything_runs(
    kubeconfig: str, tmp_path: Path
) -> None:
    """A run with ``kube``/``helmTest`` checks reads the kubeconfig before it starts: a missing
    file or an unknown context is exit 2 naming it (as for Secret references), not one failed
    check per check."""
    suite = write_suite(
        tmp_path,
        """
- name: first
  exec: {command: ["true"]}
- name: cm
  kube: {exists: {kind: ConfigMap, name: here}}
- name: release-tests
  helmTest: {release: web}
""",
    )
    r = run_cli("run", str(suite), "--kubeconfig", "/nonexistent")
    assert r.code == 2, r.text
    assert r.err.strip() == "smokegate: kubeconfig /nonexistent: No such file or directory"
    assert r.out == ""  # no check line: nothing ran, not even the exec check
    r = run_cli("run", str(suite), "--kubeconfig", kubeconfig, "--context", "nope")
    assert r.code == 2, r.text
    assert f"context 'nope' not found in {kubeconfig}" in r.err
    assert r.out == "" and "Traceback" not in r.text
    # Runs whose selected checks need no cluster never read the configuration.
    r = run_cli("run", str(suite), "--kubeconfig", "/nonexistent", "-k", "t/first")
    assert r.code == 0, r.text
    skipped = write_suite(
        tmp_path,
        "- {name: later, skip: not yet, kube: {exists: {kind: ConfigMap, name: x}}}\n"
        '- {name: now, exec: {command: ["true"]}}\n',
        filename="skipped.yaml",
    )
    r = run_cli("run", str(skipped), "--kubeconfig", "/nonexistent")
    assert r.code == 0, r.text
