"""Least privilege (docs/rbac.md, deploy/rbac/*.yaml) on the RBAC-enabled test apiserver: a
ServiceAccount bound only to smokegate's Role runs ``gate`` with its own token (from the
TokenRequest API, as a CI job would get it). What the Role allows works; a check outside it
fails (exit 1) with the API server's "forbidden: …" naming the missing permission.

The test plays helm-controller and the workload controllers by writing ``status`` through the
status subresource with the admin token.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from fixtures_flux import (
    REPO,
    apply,
    cond,
    events_for,
    helmrelease,
    patch_status,
    status_ready,
    write_kubeconfig_for_token,
)
from kubeenv import KubeEnv
from tests.helpers import run_cli, write_suite

RBAC = REPO / "deploy" / "rbac"

SUITE = """
- name: web-ready
  kube: {ready: {kind: Deployment, name: web}}
- name: db-secret
  kube: {secret: {name: db, keys: [password]}}
- name: settings
  kube: {configMap: {name: settings, keys: [mode]}}
- name: uses-secret-${release.revision}
  kube: {exists: {kind: ConfigMap, name: "settings-${secret:db/suffix}"}}
"""


def _workloads(env: KubeEnv, ns: str) -> None:
    apply(
        env,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "example/web:1"}]},
                },
            },
        },
    )
    patch_status(
        env, "deployment", "web", ns,
        {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1,
         "availableReplicas": 1, "conditions": [
             cond("Available", "True", "MinimumReplicasAvailable"),
             cond("Progressing", "True", "NewReplicaSetAvailable")]},
    )  # fmt: skip
    env.kubectl(
        "create", "secret", "generic", "db", "-n", ns,
        "--from-literal=password=pw-4471-Unshown", "--from-literal=suffix=prod",
    )  # fmt: skip
    env.kubectl("create", "configmap", "settings", "-n", ns, "--from-literal=mode=x")
    env.kubectl("create", "configmap", "settings-prod", "-n", ns)
    apply(env, helmrelease("podinfo", ns))
    patch_status(env, "hr", "podinfo", ns, status_ready("podinfo", ns, 1, "6.6.1", version=1))


def _service_account(env: KubeEnv, ns: str, tmp_path: Path, *, bind: str | None) -> Path:
    """ServiceAccount `smokegate` (from deploy/rbac/serviceaccount.yaml, namespace swapped in),
    bound to ``bind`` ("Role"/"ClusterRole") or to nothing; returns a kubeconfig with its token."""
    manifest = (
        (RBAC / "serviceaccount.yaml").read_text().replace("namespace: apps", f"namespace: {ns}")
    )
    docs = manifest.split("\n---\n")
    env.kubectl("apply", "-f", "-", input=docs[0])  # the ServiceAccount
    if bind == "Role":
        env.kubectl("apply", "-n", ns, "-f", str(RBAC / "role.yaml"))
        env.kubectl("apply", "-f", "-", input=docs[1])
    elif bind == "ClusterRole":
        env.kubectl("apply", "-f", str(RBAC / "clusterrole.yaml"))
        env.kubectl("apply", "-f", "-", input=docs[1].replace("kind: Role ", "kind: ClusterRole "))
    token = env.kubectl("create", "token", "smokegate", "-n", ns).stdout.strip()
    return write_kubeconfig_for_token(env, tmp_path / "sa.kubeconfig", token, ns)


@pytest.mark.parametrize("bind", ["Role", "ClusterRole"])
def test_gate_works_with_only_the_documented_role(
    kube_env: KubeEnv, kube_namespace: str, tmp_path: Path, bind: str
) -> None:
    ns = kube_namespace
    _workloads(kube_env, ns)
    sa_config = _service_account(kube_env, ns, tmp_path, bind=bind)
    suite = write_suite(tmp_path, SUITE)
    r = run_cli("gate", "hr/podinfo", "--kubeconfig", str(sa_config), str(suite))
    assert r.code == 0, r.text
    assert "PASSED 4 passed" in r.out
    assert f"recorded Event SmokeTestSucceeded on helmrelease {ns}/podinfo" in r.err
    (ev,) = events_for(kube_env, ns, "podinfo")
    assert ev["reason"] == "SmokeTestSucceeded"
    assert "pw-4471-Unshown" not in r.text

    # A waiting gate needs the watch the Role grants, too.
    patch_status(
        kube_env, "hr", "podinfo", ns,
        {"observedGeneration": 0, "conditions": []},
    )  # fmt: skip
    r = run_cli("gate", "hr/podinfo", "--timeout", "2s", "--kubeconfig", str(sa_config), str(suite))
    assert r.code == 3, r.text  # timed out waiting (not forbidden)
    assert "forbidden" not in r.err


def test_a_check_outside_the_role_fails_with_forbidden(
    kube_env: KubeEnv, kube_namespace: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    _workloads(kube_env, ns)
    sa_config = _service_account(kube_env, ns, tmp_path, bind="Role")
    suite = write_suite(
        tmp_path,
        SUITE
        + """
- name: ingress
  kube: {exists: {apiVersion: networking.k8s.io/v1, kind: Ingress, name: web}}
- name: other-namespace
  kube: {ready: {kind: Deployment, name: web, namespace: kube-system}}
""",
    )
    r = run_cli("gate", "hr/podinfo", "--kubeconfig", str(sa_config), str(suite))
    assert r.code == 1, r.text
    user = f'User "system:serviceaccount:{ns}:smokegate"'
    out = " ".join(r.out.split())  # the console wraps long lines
    assert (
        f'ingress {ns}/web: forbidden: {user} cannot get resource "ingresses" '
        f'in API group "networking.k8s.io" in the namespace "{ns}"'
    ) in out
    assert (
        f'deployment kube-system/web: forbidden: {user} cannot get resource "deployments" '
        'in API group "apps" in the namespace "kube-system"'
    ) in out
    assert "[forbidden]" in r.out
    assert "Traceback" not in r.text
    (ev,) = events_for(kube_env, ns, "podinfo")
    assert ev["message"] == "4 passed, 2 failed: t/ingress, t/other-namespace"


def test_without_the_role_the_gate_says_what_is_missing(
    kube_env: KubeEnv, kube_namespace: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    _workloads(kube_env, ns)
    sa_config = _service_account(kube_env, ns, tmp_path, bind=None)
    suite = write_suite(tmp_path, SUITE)
    r = run_cli("gate", "hr/podinfo", "--kubeconfig", str(sa_config), str(suite))
    assert r.code == 4, r.text  # ClusterError: the API refused, nothing ran
    assert (
        f'helmrelease {ns}/podinfo: forbidden: User "system:serviceaccount:{ns}:smokegate" '
        'cannot get resource "helmreleases" in API group "helm.toolkit.fluxcd.io"'
    ) in r.err
    assert "Traceback" not in r.text

    # Allowed to read the HelmRelease but not Secrets: the Secret a suite needs is named.
    kube_env.kubectl(
        "create", "role", "hr-only", "-n", ns, "--verb=get,list,watch",
        "--resource=helmreleases.helm.toolkit.fluxcd.io",
    )  # fmt: skip
    kube_env.kubectl(
        "create", "rolebinding", "hr-only", "-n", ns, "--role=hr-only",
        f"--serviceaccount={ns}:smokegate",
    )  # fmt: skip
    r = run_cli("gate", "hr/podinfo", "--kubeconfig", str(sa_config), str(suite))
    assert r.code == 4, r.text
    assert (
        f'secret {ns}/db: forbidden: User "system:serviceaccount:{ns}:smokegate" cannot get '
        f'resource "secrets" in API group "" in the namespace "{ns}"'
    ) in r.err
    # Without the Secret reference the suite runs, the gate reports, and the Event it could not
    # record is a warning naming the missing permission.
    plain = write_suite(
        tmp_path,
        "- name: hr\n  kube: {ready: {kind: HelmRelease, name: podinfo}}\n",
        filename="p.yaml",
    )
    r = run_cli("gate", "hr/podinfo", "--kubeconfig", str(sa_config), str(plain))
    assert r.code == 0, r.text
    assert "warning: could not record an Event" in r.err
    assert 'cannot create resource "events"' in r.err


def test_in_cluster_service_account_configuration(
    kube_env: KubeEnv, kube_namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside a pod there is no kubeconfig: the service account's token, CA and namespace are
    used (here a directory laid out like /var/run/secrets/kubernetes.io/serviceaccount)."""
    from smokegate.kube import client as kc
    from smokegate.kube import config as kube_config

    ns = kube_namespace
    _workloads(kube_env, ns)
    sa_config = json.loads(_service_account(kube_env, ns, tmp_path, bind="Role").read_text())
    sa_dir = tmp_path / "serviceaccount"
    sa_dir.mkdir()
    (sa_dir / "token").write_text(sa_config["users"][0]["user"]["token"])
    (sa_dir / "namespace").write_text(ns)
    assert kube_env.workdir is not None
    (sa_dir / "ca.crt").write_bytes((kube_env.workdir / "certs" / "apiserver.crt").read_bytes())
    monkeypatch.setattr(kube_config, "SERVICE_ACCOUNT_DIR", str(sa_dir))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(kube_env.apiserver_port))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config

    client = kc.KubeClient.from_options(kc.KubeOptions())
    assert client.namespace == ns  # the service account's namespace

    async def read() -> dict:
        try:
            return await client.get(kc.HELMRELEASE, "podinfo")
        finally:
            await client.close()

    hr = asyncio.run(read())
    assert hr["metadata"]["name"] == "podinfo"
    with pytest.raises(Exception, match="no kubeconfig"):
        kc.load_config(kc.KubeOptions(context="x"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(Exception, match="no Kubernetes configuration"):
        kc.load_config(kc.KubeOptions())
    assert os.environ.get("KUBECONFIG") is None
