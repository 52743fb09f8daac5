"""Prove the real-Kubernetes test environment does what smokegate's tests will rely on."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from kubeenv import KubectlError, KubeEnv, KubeEnvError


def _hr(name: str, ns: str, api_version: str = "helm.toolkit.fluxcd.io/v2") -> str:
    return json.dumps(
        {
            "apiVersion": api_version,
            "kind": "HelmRelease",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "interval": "5m",
                "releaseName": name,
                "chart": {
                    "spec": {
                        "chart": "podinfo",
                        "version": "6.x",
                        "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
                    }
                },
                "test": {"enable": True},
            },
        }
    )


def test_apiserver_is_real_and_loopback_only(kube_env: KubeEnv) -> None:
    assert kube_env.server.startswith("https://127.0.0.1:")
    version = json.loads(kube_env.kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"] == "v1.20.2"
    assert kube_env.kubectl("get", "--raw", "/readyz").stdout == "ok"
    crd = kube_env.kubectl_json("get", "crd", "helmreleases.helm.toolkit.fluxcd.io")
    assert {v["name"]: (v["served"], v["storage"]) for v in crd["spec"]["versions"]} == {
        "v2": (True, True),
        "v2beta2": (True, False),
    }


def test_helmrelease_status_subresource_roundtrip(kube_env: KubeEnv, kube_namespace: str) -> None:
    ns = kube_namespace
    kube_env.kubectl("apply", "-f", "-", input=_hr("podinfo", ns))
    created = kube_env.kubectl_json("get", "hr", "podinfo", "-n", ns)  # shortName `hr`
    assert created["spec"]["chart"]["spec"]["chart"] == "podinfo"  # unknown fields preserved
    assert "status" not in created and created["metadata"]["generation"] == 1

    # What Flux helm-controller writes after a successful install + test (api/v2 status shape).
    status = {
        "status": {
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "InstallSucceeded",
                    "observedGeneration": 1,
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                    "message": "Helm install succeeded for release podinfo/podinfo.v1"
                    " with chart podinfo@6.6.1",
                },
                {
                    "type": "TestSuccess",
                    "status": "True",
                    "reason": "TestSucceeded",
                    "observedGeneration": 1,
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                    "message": "1 test hook(s) completed successfully",
                },
            ],
            "history": [
                {
                    "name": "podinfo",
                    "namespace": ns,
                    "version": 1,
                    "status": "deployed",
                    "action": "install",
                    "chartName": "podinfo",
                    "chartVersion": "6.6.1",
                    "appVersion": "6.6.1",
                    "testHooks": {
                        "podinfo-grpc-test-abcde": {
                            "lastStarted": "2025-01-01T00:00:01Z",
                            "lastCompleted": "2025-01-01T00:00:05Z",
                            "phase": "Succeeded",
                        }
                    },
                }
            ],
        }
    }
    kube_env.kubectl(
        "patch",
        "hr",
        "podinfo",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )

    got = kube_env.kubectl_json("get", "helmrelease", "podinfo", "-n", ns)
    ready = {c["type"]: c for c in got["status"]["conditions"]}["Ready"]
    assert ready["status"] == "True" and ready["reason"] == "InstallSucceeded"
    assert got["status"]["history"][0]["chartVersion"] == "6.6.1"
    assert (
        got["status"]["history"][0]["testHooks"]["podinfo-grpc-test-abcde"]["phase"] == "Succeeded"
    )
    assert got["metadata"]["generation"] == 1  # a status write is not a spec change
    # The printer columns and `kubectl wait` work off that status, as a user would see them.
    assert "True" in kube_env.kubectl("get", "hr", "podinfo", "-n", ns).stdout
    kube_env.kubectl("wait", "--for=condition=Ready", "hr/podinfo", "-n", ns, "--timeout=5s")

    # Status really is a subresource: writes to the main resource ignore it, but bump generation.
    kube_env.kubectl(
        "patch",
        "hr",
        "podinfo",
        "-n",
        ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"suspend": True}, "status": {"observedGeneration": 99}}),
    )
    after = kube_env.kubectl_json("get", "hr", "podinfo", "-n", ns)
    assert after["status"]["observedGeneration"] == 1
    assert after["spec"]["suspend"] is True and after["metadata"]["generation"] == 2


def test_helmrelease_v2beta2_is_served(kube_env: KubeEnv, kube_namespace: str) -> None:
    r = kube_env.kubectl(
        "apply", "-f", "-", input=_hr("old", kube_namespace, "helm.toolkit.fluxcd.io/v2beta2")
    )
    assert "deprecated" in r.stderr  # the CRD's deprecationWarning reaches the client
    got = kube_env.kubectl_json(
        "get", "helmreleases.v2.helm.toolkit.fluxcd.io", "old", "-n", kube_namespace
    )
    assert got["apiVersion"] == "helm.toolkit.fluxcd.io/v2"


def test_serviceaccount_token_without_role_is_forbidden(
    kube_env: KubeEnv, kube_namespace: str
) -> None:
    ns = kube_namespace
    kube_env.kubectl("create", "serviceaccount", "smoke", "-n", ns)
    token = kube_env.kubectl(
        "create", "token", "smoke", "-n", ns
    ).stdout.strip()  # TokenRequest API

    with pytest.raises(KubectlError) as denied:
        kube_env.kubectl("get", "pods", "-n", ns, token=token)
    assert (
        f'pods is forbidden: User "system:serviceaccount:{ns}:smoke" cannot list resource "pods"'
    ) in denied.value.stderr

    # Control: the same token works once RBAC allows it (so the denial above was RBAC, not auth).
    kube_env.kubectl("create", "role", "pod-reader", "--verb=list", "--resource=pods", "-n", ns)
    kube_env.kubectl(
        "create",
        "rolebinding",
        "smoke-reads",
        "--role=pod-reader",
        f"--serviceaccount={ns}:smoke",
        "-n",
        ns,
    )
    assert "No resources found" in kube_env.kubectl("get", "pods", "-n", ns, token=token).stderr
    with pytest.raises(KubectlError, match="forbidden"):
        kube_env.kubectl("get", "secrets", "-n", ns, token=token)


def test_stop_leaves_no_processes_or_ports(kube_bin_dir: Path, tmp_path: Path) -> None:
    env = KubeEnv(kube_bin_dir).start(tmp_path)
    pids, ports = env.pids, [env.apiserver_port, env.etcd_port]
    assert set(pids) == {"etcd", "apiserver"}
    assert "Active" in env.kubectl("get", "ns", "default").stdout
    env.stop()
    env.stop()  # idempotent
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):  # exited and reaped, not a zombie
            os.kill(pid, 0)
    for port in ports:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0


def test_missing_binaries_raise_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KubeEnvError, match=r"kube-apiserver.*scripts/kube/ensure\.sh"):
        KubeEnv(tmp_path / "empty-bin").start(tmp_path / "work")
