"""The chart without a cluster: `helm lint --strict`, the schema rejecting typos, `helm template`
for each value set (defaults, replicas 3 on PostgreSQL, two namespaces, existing ConfigMaps,
monitoring + NetworkPolicy) with assertions on the objects, the Pod Security "restricted"
profile, and every rendered serve.yaml accepted by `smokegate serve --check`, read from a
directory laid out as the kubelet mounts a ConfigMap."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import (
    CHART,
    CI_VALUES,
    REPO,
    RULES,
    HelmCli,
    Rendered,
    ci,
    lay_out_pod,
    template,
    template_error,
)
from pss_restricted import violations
from tests.helpers import run_cli

WEBHOOK = {"webhook.existingSecret": "smokegate-webhook"}
APP_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]


def rules_of(role: dict[str, Any]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """A Role's rules flattened to (group, resource, verb, resourceNames), sorted."""
    out = []
    for rule in role["rules"]:
        for group in rule.get("apiGroups", [""]):
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    out.append((group, resource, verb, tuple(rule.get("resourceNames") or ())))
    return sorted(out)


# Exactly what serve calls with the defaults (kubernetes.enabled, watch, recordEvents) plus the
# `kube` check rules of deploy/rbac (rbac.kubeChecks, on by default).
SERVE_CORE = [
    ("", "events", "create", ()),
    ("helm.toolkit.fluxcd.io", "helmreleases", "get", ()),
    ("helm.toolkit.fluxcd.io", "helmreleases", "list", ()),
    ("helm.toolkit.fluxcd.io", "helmreleases", "watch", ()),
]
KUBE_CHECKS = (
    [("", r, "get", ()) for r in ("configmaps", "persistentvolumeclaims", "pods", "services")]
    + [("apps", r, "get", ()) for r in ("daemonsets", "deployments", "statefulsets")]
    + [("batch", "jobs", "get", ())]
)


# --- lint and schema ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "files",
    [[], *[[p] for p in CI_VALUES], [ci("ha-postgres"), ci("monitoring")]],
    ids=lambda f: "+".join(p.stem for p in f) or "defaults",
)
def test_lint_strict(helm_cli: HelmCli, files: list[Path]) -> None:
    args = [a for f in files for a in ("-f", str(f))]
    r = helm_cli("lint", "--strict", str(CHART), *args, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in r.stdout
    assert "[WARNING]" not in r.stdout and "[ERROR]" not in r.stdout, r.stdout


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kubernetes.namspaces": ["apps"]}, "additional properties 'namspaces' not allowed"),
        ({"replicas": 2}, "additional properties 'replicas' not allowed"),
        ({"store.type": "mysql"}, "/store/type"),
        ({"image.digest": "sha256:1234"}, "/image/digest"),
        ({"leaderElection.enabled": "yes"}, "/leaderElection/enabled"),
        ({"config.worker.concurency": 2}, "additional properties 'concurency' not allowed"),
        ({"config.releases": [{"match": {"namespace": "apps"}, "suite": ["x"]}]}, "'suite'"),
        ({"config.schedules": [{"name": "x", "every": "5 minutes"}]}, "/config/schedules/0/every"),
        ({"config.kubernetes": {"enabled": True}}, "additional properties 'kubernetes'"),
        ({"metrics.prometheusRule.disabledAlerts": ["SmokeTestFailing"]}, "disabledAlerts/0"),
        ({"rbac.secrets.resourcenames": ["db"]}, "'resourcenames' not allowed"),
        ({"suites.files": {"suite.txt": "x"}}, "'suite.txt' does not match pattern"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else "",
)
def test_schema_rejects_typos(helm_cli: HelmCli, values: dict[str, Any], message: str) -> None:
    # helm template (and install) and helm lint both refuse, naming the path.
    err = template_error(helm_cli, values={**WEBHOOK, **values})
    assert message in err, err
    lint = helm_cli(
        "lint", "--strict", str(CHART), *[a for k, v in values.items()
                                          for a in ("--set-json", f"{k}={json.dumps(v)}")],
        check=False,
    )  # fmt: skip
    assert lint.returncode != 0 and message in lint.stdout + lint.stderr, lint.stdout


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "webhook.existingSecret is required"),
        ({**WEBHOOK, "replicaCount": 2}, "replicaCount > 1 needs store.type=postgresql"),
        ({**WEBHOOK, "store.type": "postgresql"}, "needs store.postgresql.existingSecret"),
        (
            {**WEBHOOK, "store.type": "postgresql", "store.postgresql.existingSecret": "db",
             "store.postgresql.url": "postgresql://u:${PGPASSWORD}@db/x"},
            "set store.postgresql.passwordKey",
        ),
        ({**WEBHOOK, "kubernetes.enabled": False, "leaderElection.enabled": True},
         "leaderElection needs kubernetes.enabled=true"),
    ],
    ids=["no-webhook-secret", "sqlite-replicas", "pg-no-secret", "pg-no-password", "le-no-kube"],
)  # fmt: skip
def test_impossible_values_fail_with_the_fix(
    helm_cli: HelmCli, values: dict[str, Any], message: str
) -> None:
    err = template_error(helm_cli, values=values)
    assert message in err, err
    assert "goroutine" not in err  # a clear message, not a crash


def test_no_webhook_secret_is_generated_silently(helm_cli: HelmCli) -> None:
    """Without a Secret the chart refuses (above); allowUnsigned is the explicit opt-out, and
    then the chart writes no webhook secret at all (serve logs that events are unsigned)."""
    err = template_error(helm_cli)
    assert "openssl rand" in err  # the message says how to make one
    r = template(helm_cli, values={"webhook.allowUnsigned": True})
    assert r.all("Secret") == []
    assert r.serve_config()["webhooks"]["flux"]["secrets"] == []
    assert not any(e["name"].startswith("SMOKEGATE_WEBHOOK") for e in r.container["env"])


# --- value sets ----------------------------------------------------------------------------------


def test_defaults(helm_cli: HelmCli) -> None:
    r = template(helm_cli, [ci("default")])
    assert r.kinds() == sorted(
        [
            "ServiceAccount/sg-smokegate",
            "ConfigMap/sg-smokegate-config",
            "ClusterRole/smokegate-sg-smokegate",
            "ClusterRoleBinding/smokegate-sg-smokegate",
            "Service/sg-smokegate",
            "Deployment/sg-smokegate",
            "Pod/sg-smokegate-test-healthz",
        ]
    )
    # Watch every namespace: what serve calls + the kube check rules, nothing else.
    assert rules_of(r.one("ClusterRole")) == sorted(SERVE_CORE + KUBE_CHECKS)
    binding = r.one("ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "sg-smokegate", "namespace": "smokegate"}
    ]
    assert binding["roleRef"]["name"] == "smokegate-sg-smokegate"

    dep = r.deployment
    pod = dep["spec"]["template"]
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"
    assert pod["spec"]["serviceAccountName"] == "sg-smokegate"
    assert pod["spec"]["terminationGracePeriodSeconds"] == 40
    c = r.container
    assert c["image"] == f"ghcr.io/smokegate/smokegate:{APP_VERSION}"
    assert c["args"] == ["serve", "--config", "/etc/smokegate/config/serve.yaml",
                         "--log-level", "info"]  # fmt: skip
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    # Probes on the real endpoints (server/app.py): liveness /healthz, readiness /readyz.
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    env = {e["name"]: e for e in c["env"]}
    assert env["SMOKEGATE_WEBHOOK_SECRET_0"]["valueFrom"]["secretKeyRef"] == {
        "name": "smokegate-webhook", "key": "token"}  # fmt: skip
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts == {"config": "/etc/smokegate/config", "data": "/var/lib/smokegate",
                      "tmp": "/tmp"}  # fmt: skip
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["data"]["emptyDir"] == {}
    assert volumes["config"]["configMap"]["name"] == "sg-smokegate-config"
    # The config rollout: the checksum is the rendered serve.yaml's.
    config_text = r.serve_config_text()
    body = config_text.split("\n", 2)[2]  # after the two comment lines
    assert (
        pod["metadata"]["annotations"]["checksum/config"]
        == hashlib.sha256(body.rstrip("\n").encode()).hexdigest()
    )

    cfg = r.serve_config()
    assert cfg["kubernetes"] == {
        "enabled": True, "watch": True, "namespaces": [], "waitTimeout": "10m",
        "recordEvents": True, "leaderElection": {"enabled": False},
    }  # fmt: skip
    assert cfg["store"]["url"] == "sqlite:////var/lib/smokegate/history.db"
    assert cfg["listen"] == "0.0.0.0:8080"
    assert "directories" not in cfg["suites"]  # no suites given: none configured
    assert cfg["webhooks"]["flux"]["secrets"] == [{"env": "SMOKEGATE_WEBHOOK_SECRET_0"}]
    assert "token" not in cfg["api"]

    svc = r.one("Service")
    assert svc["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http",
                                     "protocol": "TCP"}]  # fmt: skip
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    labels = pod["metadata"]["labels"]
    assert all(labels[k] == v for k, v in svc["spec"]["selector"].items())


def test_replicas_3_on_postgresql(helm_cli: HelmCli) -> None:
    r = template(helm_cli, [ci("ha-postgres")])
    assert r.deployment["spec"]["replicas"] == 3
    cfg = r.serve_config()
    # Leader election on by default with replicas > 1, on a Lease of its own name.
    assert cfg["kubernetes"]["leaderElection"] == {
        "enabled": True, "leaseName": "sg-smokegate-leader", "namespace": "smokegate",
        "leaseDuration": "15s", "renewEvery": "5s",
    }  # fmt: skip
    lease_role = r.one("Role", "sg-smokegate-leader-election")
    assert lease_role["metadata"]["namespace"] == "smokegate"
    assert rules_of(lease_role) == [
        ("coordination.k8s.io", "leases", "create", ()),
        ("coordination.k8s.io", "leases", "get", ("sg-smokegate-leader",)),
        ("coordination.k8s.io", "leases", "update", ("sg-smokegate-leader",)),
    ]
    pdb = r.one("PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    selector = r.deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": selector}}
    # The whole URL from the Secret (CloudNativePG's `uri`); no SQLite volume.
    assert cfg["store"]["url"] == "${SMOKEGATE_STORE_URL}"
    env = {e["name"]: e for e in r.container["env"]}
    assert env["SMOKEGATE_STORE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "smokegate-db-app", "key": "uri"}  # fmt: skip
    assert "data" not in {v["name"] for v in r.deployment["spec"]["template"]["spec"]["volumes"]}
    # Two webhook keys (rotation), the API token.
    assert cfg["webhooks"]["flux"]["secrets"] == [
        {"env": "SMOKEGATE_WEBHOOK_SECRET_0"}, {"env": "SMOKEGATE_WEBHOOK_SECRET_1"}]  # fmt: skip
    assert env["SMOKEGATE_WEBHOOK_SECRET_1"]["valueFrom"]["secretKeyRef"]["key"] == "token-next"
    assert cfg["api"] == {"protectReads": False, "token": {"env": "SMOKEGATE_API_TOKEN"}}
    assert env["SMOKEGATE_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "smokegate-api", "key": "token"}  # fmt: skip
    assert r.deployment["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}  # fmt: skip


def test_leader_election_forced_or_off(helm_cli: HelmCli) -> None:
    one = template(helm_cli, values={**WEBHOOK, "leaderElection.enabled": True})
    assert one.serve_config()["kubernetes"]["leaderElection"]["enabled"] is True
    assert one.one("Role", "sg-smokegate-leader-election")
    pg = {"store.type": "postgresql", "store.postgresql.existingSecret": "db",
          "store.postgresql.urlKey": "uri"}  # fmt: skip
    off = template(helm_cli, values={**WEBHOOK, **pg, "replicaCount": 2,
                                     "leaderElection.enabled": False})  # fmt: skip
    assert off.serve_config()["kubernetes"]["leaderElection"] == {"enabled": False}
    assert not off.all("Role")
    assert off.one("PodDisruptionBudget")  # still several replicas


def test_two_namespaces_get_roles_and_nothing_cluster_wide(helm_cli: HelmCli) -> None:
    r = template(helm_cli, [ci("namespaced")])
    assert not r.all("ClusterRole") and not r.all("ClusterRoleBinding")
    roles = {(x["metadata"]["namespace"], x["metadata"]["name"]): x for x in r.all("Role")}
    assert sorted(roles) == [("apps", "sg-smokegate"), ("apps", "sg-smokegate-suites"),
                             ("shop", "sg-smokegate"), ("shop", "sg-smokegate-suites")]  # fmt: skip
    discovery = [("", "secrets", "list", ()), ("", "services", "list", ()),
                 ("apps", "daemonsets", "list", ()), ("apps", "deployments", "list", ()),
                 ("apps", "statefulsets", "list", ()),
                 ("networking.k8s.io", "ingresses", "list", ())]  # fmt: skip
    secrets = [("", "secrets", "get", ("podinfo-credentials",))]
    for ns in ("apps", "shop"):
        assert rules_of(roles[(ns, "sg-smokegate")]) == sorted(
            SERVE_CORE + KUBE_CHECKS + discovery + secrets
        )
        assert rules_of(roles[(ns, "sg-smokegate-suites")]) == [("", "configmaps", "list", ())]
    for b in r.all("RoleBinding"):
        assert b["subjects"] == [
            {"kind": "ServiceAccount", "name": "sg-smokegate", "namespace": "smokegate"}
        ]
        assert b["roleRef"]["kind"] == "Role"
    cfg = r.serve_config()
    assert cfg["kubernetes"]["namespaces"] == ["apps", "shop"]
    assert cfg["kubernetes"]["notifyFlux"].startswith("http://notification-controller")
    assert cfg["suites"] == {"directories": ["/etc/smokegate/suites"],
                             "configMaps": {"enabled": True, "namespaces": []}}  # fmt: skip
    assert cfg["releases"][0]["suites"] == ["podinfo-smoke"] and cfg["releases"][1]["discover"]
    assert cfg["schedules"] == [{"name": "podinfo-every-5m", "every": "5m",
                                 "release": "apps/podinfo"}]  # fmt: skip
    assert cfg["worker"] == {"concurrency": 4, "shutdownGrace": "20s"}
    # Suites in their ConfigMap, mounted under the suites directory.
    suites = r.one("ConfigMap", "sg-smokegate-suites")
    assert "podinfo-smoke" in suites["data"]["podinfo.yaml"]
    mounts = {m["name"]: m["mountPath"] for m in r.container["volumeMounts"]}
    assert mounts["suites"] == "/etc/smokegate/suites/chart"
    # SQLite on a kept PVC; Recreate, because the claim is ReadWriteOnce.
    pvc = r.one("PersistentVolumeClaim", "sg-smokegate-data")
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert r.deployment["spec"]["strategy"] == {"type": "Recreate"}
    vols = {v["name"]: v for v in r.deployment["spec"]["template"]["spec"]["volumes"]}
    assert vols["data"]["persistentVolumeClaim"] == {"claimName": "sg-smokegate-data"}


def test_existing_configmaps_and_postgres_password(helm_cli: HelmCli) -> None:
    r = template(helm_cli, [ci("existing-configmaps")])
    assert not [c for c in r.all("ConfigMap")]  # serve.yaml and suites are the user's
    spec = r.deployment["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in spec["volumes"]}
    assert vols["config"]["configMap"]["name"] == "smokegate-serve-config"
    assert vols["suites-0"]["configMap"]["name"] == "team-a-suites"
    assert vols["suites-1"]["configMap"]["name"] == "team-b-suites"
    mounts = {m["name"]: m["mountPath"] for m in r.container["volumeMounts"]}
    assert mounts["suites-0"] == "/etc/smokegate/suites/team-a-suites"
    assert mounts["suites-1"] == "/etc/smokegate/suites/team-b-suites"
    assert "checksum/config" not in (r.deployment["spec"]["template"]["metadata"]["annotations"]
                                     or {})  # fmt: skip
    env = {e["name"]: e for e in r.container["env"]}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "smokegate-db",
                                                              "key": "password"}  # fmt: skip
    assert "SMOKEGATE_STORE_URL" not in env


def test_postgres_url_with_password_is_written_to_serve_yaml(helm_cli: HelmCli) -> None:
    url = "postgresql://smokegate:${PGPASSWORD}@pg.db.svc:5432/smokegate"
    r = template(helm_cli, values={**WEBHOOK, "store.type": "postgresql",
                                   "store.postgresql.existingSecret": "pg",
                                   "store.postgresql.url": url,
                                   "store.postgresql.passwordKey": "password"})  # fmt: skip
    assert r.serve_config()["store"]["url"] == url  # the password stays a ${VAR}
    assert "password" not in r.serve_config_text().replace("passwordKey", "")


def test_monitoring_and_network_policy(helm_cli: HelmCli) -> None:
    r = template(helm_cli, [ci("monitoring")])
    svc = r.one("Service")
    sm = r.one("ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    # It finds the Service (labels, namespace) and scrapes its named port's /metrics.
    assert all(svc["metadata"]["labels"][k] == v
               for k, v in sm["spec"]["selector"]["matchLabels"].items())  # fmt: skip
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["smokegate"]}
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == svc["spec"]["ports"][0]["name"] == "http"
    assert endpoint["path"] == "/metrics" and endpoint["interval"] == "30s"

    rule = r.one("PrometheusRule")
    source = yaml.safe_load(RULES.read_text())["groups"]
    (group,) = rule["spec"]["groups"]
    want = [dict(x, labels={**x["labels"], "team": "platform"})
            for x in source[0]["rules"] if x["alert"] != "SmokeCheckFailing"]  # fmt: skip
    assert group["rules"] == want and group["name"] == source[0]["name"]

    np = r.one("NetworkPolicy")
    assert np["spec"]["podSelector"]["matchLabels"] == svc["spec"]["selector"]
    assert np["spec"]["policyTypes"] == ["Ingress"]
    peers, tests = np["spec"]["ingress"]
    names = [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
             for p in peers["from"]]  # fmt: skip
    assert names == ["flux-system", "flagger-system", "argo-rollouts", "monitoring"]
    assert peers["ports"] == [{"port": "http", "protocol": "TCP"}]
    # The chart's own test Pod may call in; it is not behind the Service (not selected by it).
    test_labels = r.test_pod()["metadata"]["labels"]
    assert all(test_labels[k] == v
               for k, v in tests["from"][0]["podSelector"]["matchLabels"].items())  # fmt: skip
    assert not all(test_labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    assert r.one("PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_network_policy_with_no_peers_denies_all(helm_cli: HelmCli) -> None:
    r = template(helm_cli, values={**WEBHOOK, "networkPolicy.enabled": True,
                                   "networkPolicy.from": [], "tests.enabled": False})  # fmt: skip
    assert r.one("NetworkPolicy")["spec"]["ingress"] == []


def test_prometheus_rule_is_the_alert_file(helm_cli: HelmCli) -> None:
    """With no options, the chart's PrometheusRule holds exactly deploy/alerts' rules (the chart
    renders its byte-identical copy: tests/chart/test_alerts.py)."""
    r = template(helm_cli, values={**WEBHOOK, "metrics.prometheusRule.enabled": True})
    assert r.one("PrometheusRule")["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_config_change_rolls_the_pods_suite_change_does_not(helm_cli: HelmCli) -> None:
    def checksum(values: dict[str, Any]) -> str:
        r = template(helm_cli, values={**WEBHOOK, **values})
        return r.deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    base = checksum({"suites.files": {"a.yaml": "one"}})
    assert checksum({"suites.files": {"a.yaml": "two"}}) == base  # re-read for each run
    assert (
        checksum({"suites.files": {"a.yaml": "one"}, "config.worker": {"concurrency": 3}}) != base
    )


def test_chart_reuses_the_proven_rbac_rules(helm_cli: HelmCli) -> None:
    """deploy/rbac/role.yaml (proven by tests/kube/test_rbac.py): its rules are the chart's
    kube-check + Secret rules, verb for verb."""
    proven = rules_of(yaml.safe_load((REPO / "deploy" / "rbac" / "role.yaml").read_text()))
    r = template(helm_cli, values={**WEBHOOK, "rbac.secrets.get": True})
    assert rules_of(r.one("ClusterRole")) == proven


def test_kubernetes_off_creates_no_cluster_permissions(helm_cli: HelmCli) -> None:
    r = template(helm_cli, values={**WEBHOOK, "kubernetes.enabled": False})
    assert not r.all("ClusterRole") and not r.all("Role")
    assert r.deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert r.serve_config()["kubernetes"] == {"enabled": False}


def test_image_digest_and_test_image(helm_cli: HelmCli) -> None:
    digest = "sha256:" + "a" * 64
    r = template(helm_cli, values={**WEBHOOK, "image.digest": digest,
                                   "image.repository": "registry.example/sg"})  # fmt: skip
    assert r.container["image"] == f"registry.example/sg@{digest}"
    assert r.test_pod()["spec"]["containers"][0]["image"] == f"registry.example/sg@{digest}"
    r = template(helm_cli, values={**WEBHOOK, "tests.image": {"repository": "py", "tag": "3"}})
    assert r.test_pod()["spec"]["containers"][0]["image"] == "py:3"


# --- Pod Security "restricted" -----------------------------------------------------------------

VALUE_SETS = {
    "defaults": [ci("default")],
    **{p.stem.removesuffix("-values"): [p] for p in CI_VALUES},
}


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_pods_pass_pod_security_restricted(helm_cli: HelmCli, name: str) -> None:
    r = template(helm_cli, VALUE_SETS[name])
    tmpl = r.deployment["spec"]["template"]
    assert violations(tmpl["spec"], tmpl["metadata"].get("annotations")) == []
    pod = r.test_pod()
    assert violations(pod["spec"], pod["metadata"].get("annotations")) == []
    # readOnlyRootFilesystem (not part of the profile, but asked for): /tmp is writable.
    sc = r.container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert "/tmp" in [m["mountPath"] for m in r.container["volumeMounts"]]


@pytest.mark.parametrize(
    ("change", "control"),
    [
        (lambda s: s["containers"][0]["securityContext"].update(privileged=True),
         "Privileged Containers"),
        (lambda s: s["containers"][0]["securityContext"]["capabilities"].update(drop=[]),
         "Capabilities: containers[smokegate] does not drop ALL"),
        (lambda s: s["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
         "Privilege Escalation"),
        (lambda s: s["securityContext"].update(runAsUser=0), "Running as Non-root user"),
        (lambda s: (s["securityContext"].pop("runAsNonRoot"),
                    s["containers"][0]["securityContext"].pop("runAsNonRoot")),
         "Running as Non-root: containers[smokegate]"),
        (lambda s: s["securityContext"].pop("seccompProfile"), "Seccomp: containers[smokegate]"),
        (lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
         "HostPath Volumes"),
        (lambda s: s["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
         "Volume Types: n"),
        (lambda s: s.update(hostNetwork=True), "Host Namespaces: hostNetwork"),
        (lambda s: s["containers"][0]["ports"][0].update(hostPort=8080), "Host Ports"),
        (lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["NET_RAW"]),
         "adds more than NET_BIND_SERVICE"),
    ],
    ids=["privileged", "no-drop-all", "escalation", "root-uid", "non-root-unset", "no-seccomp",
         "hostpath", "nfs", "hostnetwork", "hostport", "net-raw"],
)  # fmt: skip
def test_the_profile_check_catches_each_violation(
    helm_cli: HelmCli, change: Any, control: str
) -> None:
    spec = template(helm_cli, [ci("default")]).deployment["spec"]["template"]["spec"]
    change(spec)
    found = violations(spec)
    assert any(control in v for v in found), found


# --- the rendered serve.yaml, as the pod reads it ------------------------------------------------

PLACEHOLDER_SECRETS = {
    "smokegate-webhook": {"token": "wh-1", "token-next": "wh-2"},
    "smokegate-api": {"token": "api-token"},
    "smokegate-db-app": {"uri": "postgresql://app:Secret-Pw-71@db-rw.smokegate.svc:5432/app"},
    "smokegate-db": {"password": "pw"},
}


def pod_config(r: Rendered, root: Path, config_text: str | None = None) -> tuple[Path, dict]:
    """The rendered Deployment laid out as the kubelet would (a given serve.yaml, and a suite
    of its own for each ConfigMap the user manages); the local serve.yaml and the env."""
    configmaps = {c["metadata"]["name"]: c["data"] for c in r.all("ConfigMap")}
    for v in r.deployment["spec"]["template"]["spec"]["volumes"]:
        name = (v.get("configMap") or {}).get("name")
        if name and name not in configmaps:
            configmaps[name] = ({"serve.yaml": config_text} if v["name"] == "config" else
                                {"suite.yaml": SUITE.replace("NAME", name)})  # fmt: skip
    pod = lay_out_pod(r.deployment, configmaps, PLACEHOLDER_SECRETS, root)
    return pod.config, pod.env


SUITE = """apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: NAME}
spec:
  checks:
    - {name: up, tcp: {host: 127.0.0.1, port: 1}}
"""


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_rendered_serve_yaml_passes_serve_check(
    helm_cli: HelmCli, name: str, tmp_path: Path
) -> None:
    """`smokegate serve --config … --check` (what the pod runs, minus serving) accepts the
    chart's serve.yaml with the pod's env, suites from ConfigMap volumes (hidden timestamped
    directory, ..data and symlinks: each suite is found once), release rules naming them."""
    r = template(helm_cli, VALUE_SETS[name])
    given = None
    if name == "existing-configmaps":
        given = (
            "apiVersion: smokegate.io/v1\nkind: ServerConfig\nlisten: 0.0.0.0:8080\n"
            "store: {url: 'postgresql://smokegate:${PGPASSWORD}@postgres.smokegate.svc/sg'}\n"
            "suites: {directories: [/etc/smokegate/suites]}\n"
            "releases:\n  - {match: {namespace: a}, suites: [team-a-suites, team-b-suites]}\n"
        )
    config, env = pod_config(r, tmp_path / "pod", given)
    result = run_cli("serve", "--config", str(config), "--check", env=env)
    assert result.code == 0, result.text + config.read_text()
    assert result.out.startswith("ok: listen 0.0.0.0:8080, store ")
    assert "Secret-Pw-71" not in result.text  # the store URL's password is masked
    rules = len((r.serve_config().get("releases") if given is None else [1]) or [])
    assert f"{rules} release rule(s)" in result.out


def test_serve_check_names_a_suite_the_chart_does_not_have(
    helm_cli: HelmCli, tmp_path: Path
) -> None:
    """The negative case of the above: a rule naming an unknown suite fails at start, located."""
    r = template(helm_cli, values={
        **WEBHOOK, "suites.files": {"a.yaml": SUITE.replace("NAME", "known")},
        "config.releases": [{"match": {"namespace": "apps"}, "suites": ["knwon"]}]})  # fmt: skip
    config, env = pod_config(r, tmp_path / "pod")
    result = run_cli("serve", "--config", str(config), "--check", env=env)
    assert result.code == 2, result.text
    assert "no suite named 'knwon' (suites: known)" in result.err


def test_store_url_from_a_secret_is_checked_and_never_echoed(tmp_path: Path) -> None:
    """`url: ${SMOKEGATE_STORE_URL}` (the chart's store.postgresql.urlKey): the scheme is checked
    once expanded; a missing variable or a non-URL value is a clear error that never repeats the
    value (it may be all password)."""
    config = tmp_path / "serve.yaml"
    config.write_text("apiVersion: smokegate.io/v1\nkind: ServerConfig\n"
                      "store: {url: '${SMOKEGATE_STORE_URL}'}\n")  # fmt: skip
    ok = run_cli("serve", "--config", str(config), "--check",
                 env={"SMOKEGATE_STORE_URL": "postgresql://u:Hidden-Pw-5@db:5432/x"})  # fmt: skip
    assert ok.code == 0, ok.text
    assert "store postgresql://u:***@db:5432/x" in ok.out
    unset = run_cli("serve", "--config", str(config), "--check", env={"SMOKEGATE_STORE_URL": ""})
    assert unset.code == 2 and "store.url: $SMOKEGATE_STORE_URL is not set" in unset.err
    bad = run_cli("serve", "--config", str(config), "--check",
                  env={"SMOKEGATE_STORE_URL": "Hidden-Pw-5"})  # fmt: skip
    assert bad.code == 2, bad.text
    assert "$SMOKEGATE_STORE_URL is not a sqlite:/// or postgresql:// URL" in bad.err
    assert "Hidden-Pw-5" not in bad.text and "Traceback" not in bad.text


def test_the_readme_example_installs(helm_cli: HelmCli, tmp_path: Path) -> None:
    """README's "Install in your cluster" values: lint-clean, and the serve.yaml they render
    passes `serve --check` with its suite found."""
    import re

    readme = (REPO / "README.md").read_text()
    block = re.search(r"# my-values.yaml\n(.*?)```", readme, re.S)
    assert block, "README lost its my-values.yaml example"
    values = tmp_path / "my-values.yaml"
    values.write_text(block.group(1))
    lint = helm_cli("lint", "--strict", str(CHART), "-f", str(values), check=False)
    assert lint.returncode == 0, lint.stdout
    r = template(helm_cli, [values], release="smokegate")
    assert r.one("Service")["metadata"]["name"] == "smokegate"  # the Provider address in docs
    config, env = pod_config(r, tmp_path / "pod")
    result = run_cli("serve", "--config", str(config), "--check", env=env)
    assert result.code == 0, result.text
    assert "1 release rule(s)" in result.out
