"""The permissions of ``run --in-cluster`` (deploy/rbac/in-cluster-role.yaml and its ClusterRole,
docs/rbac.md) on the RBAC-enabled test apiserver, with ServiceAccount tokens from the
TokenRequest API as a CI job gets them:

* the identity that starts the run needs exactly the in-cluster Role: with only it (not even
  ``get`` on Secrets) a suite that reads a Secret passes, because the pod reads it;
* without one of its rules the run fails with the API server's reason naming the permission,
  and still leaves nothing behind;
* the pod's own ServiceAccount needs what the suites read (role.yaml): without it the pod's
  Secret read is refused, and that refusal is what the run reports.

The test plays job controller, scheduler and kubelet (incluster_kubelet.py); the pod's token
is a real one of its ServiceAccount, so RBAC applies to the pod's requests too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fixtures_flux import write_kubeconfig_for_token
from incluster_support import DB_PASSWORD, RBAC, Cluster

SUITE = """\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: web}
spec:
  checks:
    - name: settings
      kube: {configMap: {name: settings, keys: [mode]}}
    - name: db
      exec:
        command: 'test -n "$PW"'
        env: {PW: "${secret:db/password}"}
"""


def _runner(cluster: Cluster, *, bind: str | None, rules: list[dict] | None = None) -> Path:
    """ServiceAccount ``runner`` bound to the in-cluster Role ("Role"), the ClusterRole through
    a RoleBinding ("ClusterRole"), or a Role of ``rules``; a kubeconfig with its token."""
    ns = cluster.name
    cluster.kubectl("create", "serviceaccount", "runner", "-n", ns)
    if bind == "Role":
        cluster.kubectl("apply", "-n", ns, "-f", str(RBAC / "in-cluster-role.yaml"))
        cluster.kubectl("create", "rolebinding", "runner", "-n", ns,
                        "--role=smokegate-in-cluster", f"--serviceaccount={ns}:runner")  # fmt: skip
    elif bind == "ClusterRole":
        cluster.kubectl("apply", "-f", str(RBAC / "in-cluster-clusterrole.yaml"))
        cluster.kubectl(
            "create", "rolebinding", "runner", "-n", ns, "--clusterrole=smokegate-in-cluster",
            f"--serviceaccount={ns}:runner",
        )  # fmt: skip
    elif rules is not None:
        role = yaml.safe_load((RBAC / "in-cluster-role.yaml").read_text())
        role["metadata"] = {"name": "partial", "namespace": ns}
        role["rules"] = rules
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(role))
        cluster.kubectl("create", "rolebinding", "runner", "-n", ns, "--role=partial",
                        f"--serviceaccount={ns}:runner")  # fmt: skip
    token = cluster.kubectl("create", "token", "runner", "-n", ns).stdout.strip()
    return write_kubeconfig_for_token(cluster.kube_env, cluster.tmp_path / "runner.kubeconfig",
                                      token, ns)  # fmt: skip


def _can(cluster: Cluster, verb: str, resource: str) -> bool:
    who = f"--as=system:serviceaccount:{cluster.name}:runner"
    r = cluster.kubectl("auth", "can-i", verb, resource, "-n", cluster.name, who, check=False)
    return r.stdout.strip() == "yes"


@pytest.mark.parametrize("bind", ["Role", "ClusterRole"])
def test_the_in_cluster_role_is_enough_and_secrets_stay_in_the_pod(
    cluster: Cluster, bind: str
) -> None:
    config = _runner(cluster, bind=bind)
    cluster.baseline = cluster.objects()
    cluster.suite(SUITE, "web.yaml")
    r = cluster.run("web.yaml", "--service-account", "smokegate", kubeconfig=config, code=0)
    assert [x["status"] for x in r.report["results"]] == ["passed", "passed"]
    assert "warning" not in r.err
    # The starter cannot read the Secret, nor run anything but what the Role lists.
    assert not _can(cluster, "get", "secrets")
    assert not _can(cluster, "create", "pods")
    assert not _can(cluster, "watch", "pods")
    assert _can(cluster, "create", "jobs") and _can(cluster, "get", "pods/log")
    assert DB_PASSWORD not in r.text
    assert cluster.left() == []


def test_every_rule_is_needed(cluster: Cluster) -> None:
    """Without ``get`` on pods/log the run cannot follow its pod: exit 4 naming the permission,
    after the cleanup (which the other rules allow)."""
    rules = [r for r in yaml.safe_load((RBAC / "in-cluster-role.yaml").read_text())["rules"]
             if r["resources"] != ["pods/log"]]  # fmt: skip
    config = _runner(cluster, bind=None, rules=rules)
    cluster.baseline = cluster.objects()
    cluster.suite(SUITE, "web.yaml")
    r = cluster.run("web.yaml", "--service-account", "smokegate", kubeconfig=config, code=4,
                    report=False)  # fmt: skip
    user = f'User "system:serviceaccount:{cluster.name}:runner"'
    assert f"log of pod {cluster.name}/smokegate-run-" in r.err
    assert f'forbidden: {user} cannot get resource "pods/log" in API group ""' in r.err
    assert "docs/in-cluster.md" in r.err and "Traceback" not in r.text
    assert cluster.left() == []

    # Without create on jobs: refused before anything exists.
    jobs = [r for r in rules if r["resources"] != ["jobs"]]
    jobs.append({"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "delete"]})
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "partial", "namespace": cluster.name}, "rules": jobs}))  # fmt: skip
    r = cluster.run("web.yaml", kubeconfig=config, code=4, report=False)
    assert f"creating job {cluster.name}/smokegate-run-" in r.err
    assert f'{user} cannot create resource "jobs" in API group "batch"' in r.err
    assert cluster.left() == []


def test_the_pods_service_account_needs_what_the_suites_read(cluster: Cluster) -> None:
    """The namespace's ``default`` ServiceAccount may not read Secrets: the pod says so."""
    cluster.suite(SUITE, "web.yaml")
    r = cluster.run("web.yaml", code=4, report=False)
    ns = cluster.name
    assert (
        f'secret {ns}/db: forbidden: User "system:serviceaccount:{ns}:default" cannot get '
        'resource "secrets"'
    ) in " ".join(r.out.split())
    assert cluster.left() == []
