"""Server-side pod security admission for the chart's pods, on the test apiserver's own terms.

kube-apiserver v1.20 has no PodSecurity admission (Pod Security Standards: v1.22 alpha, v1.25
GA), but it has its predecessor, PodSecurityPolicy. This module starts a second test apiserver
with the PodSecurityPolicy admission plugin on and one policy written to the "restricted" Pod
Security Standard (https://kubernetes.io/docs/concepts/security/pod-security-standards/): no
privilege or escalation, non-root, all capabilities dropped, RuntimeDefault seccomp, the
restricted volume types, no host namespaces, paths or ports. The chart's pods (the Deployment's
pod template and the test Pod, for several value sets) are then created through it with a
server-side dry run: admitted. A pod that breaks the policy is refused, so admission really runs.
The programmatic check of the full profile is in test_chart_render.py (pss_restricted.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chart_support import HelmCli, ci, template
from kubeenv import KubeEnv

RESTRICTED_PSP = {
    "apiVersion": "policy/v1beta1",
    "kind": "PodSecurityPolicy",
    "metadata": {
        "name": "restricted",
        "annotations": {
            "seccomp.security.alpha.kubernetes.io/allowedProfileNames": "runtime/default",
        },
    },
    "spec": {
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "requiredDropCapabilities": ["ALL"],
        "allowedCapabilities": [],
        "volumes": [
            "configMap",
            "csi",
            "downwardAPI",
            "emptyDir",
            "ephemeral",
            "persistentVolumeClaim",
            "projected",
            "secret",
        ],
        "hostNetwork": False,
        "hostIPC": False,
        "hostPID": False,
        "hostPorts": [],
        "runAsUser": {"rule": "MustRunAsNonRoot"},
        "runAsGroup": {"rule": "MustRunAs", "ranges": [{"min": 1, "max": 65535}]},
        "supplementalGroups": {"rule": "MustRunAs", "ranges": [{"min": 1, "max": 65535}]},
        "fsGroup": {"rule": "MustRunAs", "ranges": [{"min": 1, "max": 65535}]},
        "seLinux": {"rule": "RunAsAny"},
        "readOnlyRootFilesystem": False,
    },
}


class PspKubeEnv(KubeEnv):
    """KubeEnv whose apiserver also runs the PodSecurityPolicy admission plugin."""

    def _spawn(self, name: str, cmd: list[str]) -> None:
        if name == "apiserver":
            cmd = [*cmd, "--enable-admission-plugins=PodSecurityPolicy"]
        super()._spawn(name, cmd)


@pytest.fixture(scope="module")
def psp_env(kube_bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeEnv]:
    env = PspKubeEnv(kube_bin_dir)
    env.start(tmp_path_factory.mktemp("psp-kube-env"))
    try:
        env.kubectl("apply", "-f", "-", input=json.dumps(RESTRICTED_PSP))
        env.kubectl("create", "namespace", "smokegate")
        yield env
    finally:
        env.stop()


def dry_run_pod(env: KubeEnv, name: str, template_: dict[str, Any]) -> Any:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "smokegate",
                     "labels": template_.get("metadata", {}).get("labels", {})},
        "spec": template_["spec"],
    }  # fmt: skip
    return env.kubectl(
        "create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(pod), check=False
    )


@pytest.mark.parametrize("values", ["default", "ha-postgres", "namespaced", "monitoring"])
def test_chart_pods_are_admitted_by_a_restricted_policy(
    psp_env: KubeEnv, helm_cli: HelmCli, values: str
) -> None:
    r = template(helm_cli, [ci(values)])
    server = dry_run_pod(psp_env, "server", r.deployment["spec"]["template"])
    assert server.returncode == 0, server.stderr
    admitted = json.loads(server.stdout)
    assert admitted["metadata"]["annotations"]["kubernetes.io/psp"] == "restricted"
    test = dry_run_pod(psp_env, "test", r.test_pod())
    assert test.returncode == 0, test.stderr
    assert json.loads(test.stdout)["metadata"]["annotations"]["kubernetes.io/psp"] == "restricted"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda c, s: c["securityContext"].update(privileged=True), "Privileged containers"),
        (lambda c, s: c["securityContext"].update(allowPrivilegeEscalation=True),
         "Allowing privilege escalation"),
        (lambda c, s: (s["securityContext"].update(runAsUser=0),
                       c["securityContext"].update(runAsUser=0)), "running with the root UID"),
        (lambda c, s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
         "hostPath volumes are not allowed"),
    ],
    ids=["privileged", "escalation", "root", "hostpath"],
)  # fmt: skip
def test_the_policy_refuses_what_restricted_forbids(
    psp_env: KubeEnv, helm_cli: HelmCli, change: Any, reason: str
) -> None:
    tmpl = template(helm_cli, [ci("default")]).deployment["spec"]["template"]
    change(tmpl["spec"]["containers"][0], tmpl["spec"])
    r = dry_run_pod(psp_env, "bad", tmpl)
    assert r.returncode != 0, r.stdout
    assert "PodSecurityPolicy: unable to admit pod" in r.stderr
    assert reason in r.stderr, r.stderr
