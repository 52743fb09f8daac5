"""`helm install` of deploy/chart/smokegate with the real helm v4 into the real test apiserver
(v1.20, RBAC on), then:

* the objects read back from the API (and the Deployment's pod template, as the API server
  defaulted it, still passes Pod Security "restricted": pss_restricted.py);
* RBAC with `kubectl auth can-i --as system:serviceaccount:NS:SA`: yes for every verb serve
  uses, no for a list of things it must never do;
* `smokegate serve` run with exactly what the installed Deployment says (args, env from the real
  Secrets, serve.yaml and suites from the installed ConfigMaps) and the ServiceAccount's own
  token: its watch sees a HelmRelease turn Ready, runs the suite, records the Event, holds the
  Lease, and a check outside the granted permissions fails with "forbidden";
* the chart's own `helm.sh/hook: test` Pod run by `smokegate helm-test` and by `helm test`.

What the test plays (there is no kubelet, scheduler, kube-proxy or cluster DNS here): the
kubelet of the Deployment's pod (lay_out_pod: ConfigMap volumes written as the kubelet writes
them, paths mapped to them, the token of the pod's ServiceAccount given as a kubeconfig, the
process started with the container's args), and, for the test Pod, scheduler + kubelet
(helmtest_cluster.ClusterActors) plus cluster DNS and kube-proxy: the test Pod's URL must name
the chart's Service, whose selector and named targetPort must match the Deployment's pod and
container port; only then is it routed to the local serve process.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import (
    CHART,
    REPO,
    HelmCli,
    Rendered,
    ci,
    decode_secret,
    lay_out_pod,
    values_args,
)
from fixtures_flux import (
    apply,
    cond,
    events_for,
    helmrelease,
    patch_status,
    status_ready,
    write_kubeconfig_for_token,
)
from helmtest_cluster import Api, ClusterActors, StandInNode
from kubeenv import KubeEnv
from pss_restricted import violations
from tests.helpers import free_port, run_cli
from tests.server.support import get_json, request

HERE = Path(__file__).resolve().parent
RELEASE = "sg"
FULLNAME = "sg-smokegate"
SA = FULLNAME

WEB_SUITE = """apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: web}
spec:
  checks:
    - name: web-ready
      kube: {ready: {kind: Deployment, name: web}}
    - name: settings
      kube: {configMap: {name: settings, keys: [mode]}}
"""
CONFIGMAP_SUITE = """apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: from-configmap}
spec:
  checks:
    - name: settings-exist
      kube: {exists: {kind: ConfigMap, name: settings}}
"""
SECRET_SUITE = """apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: needs-secret}
spec:
  checks:
    - name: db-secret
      kube: {secret: {name: db, keys: [password]}}
"""


def new_namespace(env: KubeEnv, prefix: str, **labels: str) -> str:
    name = f"{prefix}-{secrets.token_hex(3)}"
    env.kubectl("create", "namespace", name)
    if labels:
        env.kubectl("label", "namespace", name, *[f"{k}={v}" for k, v in labels.items()])
    return name


def install(
    env: KubeEnv, helm: HelmCli, ns: str, files: list[Path], values: dict[str, Any]
) -> tuple[float, Rendered]:
    """helm install (timed), and the release's manifest as helm recorded it."""
    t0 = time.monotonic()
    helm("install", RELEASE, str(CHART), "-n", ns, *values_args(files, values))
    seconds = time.monotonic() - t0
    manifest = Rendered(helm("get", "manifest", RELEASE, "-n", ns).stdout)
    artifacts = os.environ.get("SMOKEGATE_ARTIFACTS_DIR")
    line = f"helm install {ns}: {seconds:.2f}s, {len(manifest.docs)} objects\n"
    print("\n" + line, end="")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        with open(Path(artifacts) / "chart-install-time.txt", "a") as out:
            out.write(line)
    return seconds, manifest


def get(env: KubeEnv, kind: str, name: str, ns: str | None = None) -> dict[str, Any]:
    return env.kubectl_json("get", kind, name, *(["-n", ns] if ns else []))


def can_i(env: KubeEnv, ns: str, verb: str, what: str, where: str | None, *extra: str) -> bool:
    scope = ["--all-namespaces"] if where is None else ["-n", where]
    r = env.kubectl(
        "auth", "can-i", verb, what, *scope, *extra,
        f"--as=system:serviceaccount:{ns}:{SA}", check=False,
    )  # fmt: skip
    answer = r.stdout.strip()
    assert answer in ("yes", "no"), r.stdout + r.stderr
    return answer == "yes"


# --- the default install (every namespace), with a stand-in pod running serve -------------------


@dataclass
class Installed:
    ns: str
    apps: str
    seconds: float
    manifest: Rendered


@pytest.fixture(scope="module")
def installed(kube_env: KubeEnv, cluster_helm: HelmCli) -> Iterator[Installed]:
    ns = new_namespace(
        kube_env, "smokegate", **{"pod-security.kubernetes.io/enforce": "restricted"}
    )
    apps = new_namespace(kube_env, "apps")
    kube_env.kubectl("create", "secret", "generic", "smokegate-webhook", "-n", ns,
                     "--from-literal=token=hmac-Key-3391")  # fmt: skip
    kube_env.kubectl("create", "secret", "generic", "smokegate-api", "-n", ns,
                     "--from-literal=token=api-Token-8812")  # fmt: skip
    values = {
        "webhook.existingSecret": "smokegate-webhook",
        "api.existingSecret": "smokegate-api",
        "leaderElection.enabled": True,  # one replica, the Lease forced on: its RBAC is tested
        "image.repository": "registry.invalid/smokegate",  # never pulled: no kubelet here
        "suites.files": {"web.yaml": WEB_SUITE, "needs-secret.yaml": SECRET_SUITE},
        # Suites from labelled ConfigMaps too, in every namespace (a cluster-wide list).
        "suites.fromLabelledConfigMaps.enabled": True,
        "config.releases": [{"match": {"namespace": apps}, "suites": ["web", "from-configmap"]}],
        "config.worker": {"pollInterval": "200ms"},
        "tests.timeoutSeconds": 5,
    }
    seconds, manifest = install(kube_env, cluster_helm, ns, [], values)
    try:
        yield Installed(ns, apps, seconds, manifest)
    finally:
        cluster_helm("uninstall", RELEASE, "-n", ns, check=False)
        for n in (ns, apps):
            kube_env.kubectl("delete", "namespace", n, "--wait=false", check=False)


class ServePod:
    """The installed Deployment's container, run locally (see the module docstring)."""

    def __init__(self, env: KubeEnv, ns: str, root: Path) -> None:
        deployment = get(env, "deployment", FULLNAME, ns)
        configmaps = {
            c["metadata"]["name"]: c.get("data") or {}
            for c in env.kubectl_json("get", "configmaps", "-n", ns)["items"]
        }
        secret_data = {
            s["metadata"]["name"]: decode_secret(s)
            for s in env.kubectl_json("get", "secrets", "-n", ns)["items"]
        }
        self.layout = lay_out_pod(deployment, configmaps, secret_data, root)
        # The pod's ServiceAccount token (the kubelet projects it; here: TokenRequest).
        token = env.kubectl("create", "token", SA, "-n", ns).stdout.strip()
        kubeconfig = write_kubeconfig_for_token(env, root / "sa.kubeconfig", token, ns)
        config = yaml.safe_load(self.layout.config.read_text())
        config["kubernetes"]["kubeconfig"] = str(kubeconfig)
        self.layout.config.write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServePod:
        env = {"PATH": os.environ["PATH"], **self.layout.env}  # the container's env, no more
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "smokegate", *self.layout.args,
                 "--listen", f"127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"serve exited:\n{self.log}"
            try:
                if request("GET", self.url + "/readyz", timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"serve not ready:\n{self.log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def serve_pod(
    installed: Installed, kube_env: KubeEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServePod]:
    pod = ServePod(kube_env, installed.ns, tmp_path_factory.mktemp("serve-pod")).start()
    try:
        yield pod
    finally:
        pod.stop()


def test_install_creates_what_was_rendered(installed: Installed, kube_env: KubeEnv) -> None:
    ns = installed.ns
    kinds = installed.manifest.kinds()
    assert kinds == sorted(
        [
            "ServiceAccount/sg-smokegate",
            "ConfigMap/sg-smokegate-config",
            "ConfigMap/sg-smokegate-suites",
            f"ClusterRole/{ns}-sg-smokegate",
            f"ClusterRoleBinding/{ns}-sg-smokegate",
            f"ClusterRole/{ns}-sg-smokegate-suites",
            f"ClusterRoleBinding/{ns}-sg-smokegate-suites",
            "Role/sg-smokegate-leader-election",
            "RoleBinding/sg-smokegate-leader-election",
            "Service/sg-smokegate",
            "Deployment/sg-smokegate",
        ]
    )  # the test Pod is a hook: `helm test` creates it, not `helm install`
    for doc in installed.manifest.docs:
        scoped = doc["kind"] not in ("ClusterRole", "ClusterRoleBinding")
        live = get(kube_env, doc["kind"], doc["metadata"]["name"], ns if scoped else None)
        assert live["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
        if doc["kind"] in ("ClusterRole", "Role"):
            assert live["rules"] == doc["rules"]
        if doc["kind"] == "ConfigMap":
            assert live["data"] == doc["data"]
    dep = get(kube_env, "deployment", FULLNAME, ns)
    tmpl = dep["spec"]["template"]
    # As the API server stored it (defaults applied), still "restricted".
    assert violations(tmpl["spec"], tmpl["metadata"].get("annotations")) == []
    assert tmpl["spec"]["serviceAccountName"] == SA
    status = json.loads(
        kube_env.kubectl("get", "secret", "-n", ns, "-l", f"owner=helm,name={RELEASE}", "-o",
                         "json").stdout)["items"]  # fmt: skip
    assert [s["metadata"]["labels"]["status"] for s in status] == ["deployed"]
    assert installed.seconds < 120  # a hung install; the real figure is printed and reported


# What serve calls (derived from the code: server/watch.py, execute.py, leader.py,
# kube/events.py, checks/kube.py) with the default values and the Lease forced on.
def needs(ns: str, apps: str) -> list[tuple[str, str, str | None, tuple[str, ...]]]:
    hr = "helmreleases.helm.toolkit.fluxcd.io"
    lease = "leases.coordination.k8s.io"
    return [
        # the watch: list + watch in every namespace (kubernetes.namespaces empty)
        ("list", hr, None, ()), ("watch", hr, None, ()),
        # a run: get the HelmRelease, wait on it (a watch narrowed to one name)
        ("get", hr, apps, ()), ("watch", hr, apps, ()),
        # the result as an Event on the HelmRelease
        ("create", "events", apps, ()),
        # kube checks (rbac.kubeChecks)
        *[("get", r, apps, ()) for r in ("deployments.apps", "statefulsets.apps",
                                          "daemonsets.apps", "jobs.batch", "pods", "services",
                                          "configmaps", "persistentvolumeclaims")],
        # leader election, in the release namespace, its own Lease
        ("create", lease, ns, ()), ("get", f"{lease}/sg-smokegate-leader", ns, ()),
        ("update", f"{lease}/sg-smokegate-leader", ns, ()),
        # suites.fromLabelledConfigMaps with every namespace: a labelled list
        ("list", "configmaps", None, ()),
    ]  # fmt: skip


def must_not(ns: str, apps: str) -> list[tuple[str, str, str | None, tuple[str, ...]]]:
    hr = "helmreleases.helm.toolkit.fluxcd.io"
    lease = "leases.coordination.k8s.io"
    return [
        ("list", "secrets", None, ()), ("get", "secrets", apps, ()), ("list", "secrets", ns, ()),
        ("get", "secrets", ns, ()), ("watch", "secrets", None, ()),
        ("create", "pods", apps, ()), ("delete", "pods", apps, ()),
        ("create", "pods", apps, ("--subresource=exec",)),
        ("get", "pods", apps, ("--subresource=log",)),
        ("update", hr, apps, ()), ("patch", hr, apps, ()), ("delete", hr, apps, ()),
        ("create", hr, apps, ()), ("update", hr, apps, ("--subresource=status",)),
        ("delete", "events", apps, ()), ("update", "events", apps, ()),
        ("watch", "configmaps", apps, ()), ("create", "configmaps", apps, ()),
        ("list", "deployments.apps", apps, ()), ("patch", "deployments.apps", apps, ()),
        ("delete", "deployments.apps", apps, ()), ("create", "jobs.batch", apps, ()),
        ("get", f"{lease}/someone-elses-lease", ns, ()), ("update", f"{lease}/other", ns, ()),
        ("delete", f"{lease}/sg-smokegate-leader", ns, ()), ("create", lease, apps, ()),
        ("list", lease, ns, ()),
        ("get", "nodes", None, ()), ("list", "namespaces", None, ()),
        ("create", "serviceaccounts", ns, ("--subresource=token",)),
        ("impersonate", "serviceaccounts", ns, ()),
        ("escalate", "clusterroles.rbac.authorization.k8s.io", None, ()),
        ("bind", "clusterroles.rbac.authorization.k8s.io", None, ()),
        ("create", "rolebindings.rbac.authorization.k8s.io", ns, ()),
        ("*", "*", None, ()),
    ]  # fmt: skip


def test_service_account_can_do_exactly_what_serve_needs(
    installed: Installed, kube_env: KubeEnv
) -> None:
    ns, apps = installed.ns, installed.apps
    refused = [n for n in needs(ns, apps) if not can_i(kube_env, ns, n[0], n[1], n[2], *n[3])]
    assert refused == [], refused
    allowed = [n for n in must_not(ns, apps) if can_i(kube_env, ns, n[0], n[1], n[2], *n[3])]
    assert allowed == [], allowed


def test_serve_with_the_service_account_token_watches_tests_and_reports(
    installed: Installed, serve_pod: ServePod, kube_env: KubeEnv
) -> None:
    apps = installed.apps
    apply(kube_env, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": apps},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "web:1"}]}}},
    })  # fmt: skip
    patch_status(kube_env, "deployment", "web", apps, {
        "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1,
        "availableReplicas": 1, "conditions": [
            cond("Available", "True", "MinimumReplicasAvailable"),
            cond("Progressing", "True", "NewReplicaSetAvailable")]})  # fmt: skip
    kube_env.kubectl("create", "configmap", "settings", "-n", apps, "--from-literal=mode=x")
    kube_env.kubectl("create", "configmap", "team-suite", "-n", apps,
                     f"--from-literal=suite.yaml={CONFIGMAP_SUITE}")  # fmt: skip
    kube_env.kubectl("label", "configmap", "team-suite", "-n", apps, "smokegate.io/suite=true")
    kube_env.kubectl("create", "secret", "generic", "db", "-n", apps,
                     "--from-literal=password=db-Pw-4410")  # fmt: skip
    apply(kube_env, helmrelease("podinfo", apps))
    db = helmrelease("db", apps)
    db["metadata"]["annotations"] = {"smokegate.io/suites": "needs-secret"}
    apply(kube_env, db)
    # helm-controller finishes both upgrades: serve's watch (its own token) must see it.
    patch_status(kube_env, "hr", "podinfo", apps, status_ready("podinfo", apps, 1, "6.6.1"))
    patch_status(kube_env, "hr", "db", apps, status_ready("db", apps, 1, "1.0.0"))

    deadline = time.monotonic() + 30
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(runs) < 2:
        # Only this test's namespace: the watch covers every namespace of the test apiserver.
        every = get_json(serve_pod.url + "/api/v1/runs?limit=100")["items"]
        runs = [r for r in every if r["release"].startswith(f"{apps}/")]
        time.sleep(0.2)
    assert len(runs) == 2, serve_pod.log[-4000:]
    by_release = {r["release"]: r for r in runs}
    web = by_release[f"{apps}/podinfo"]
    assert (web["trigger"], web["revision"], web["verdict"]) == ("watch", "6.6.1", "passed"), web
    assert web["counts"]["passed"] == 3  # web's two checks and the labelled ConfigMap's one
    # Outside the grant (rbac.secrets.get is off by default): the check says forbidden.
    denied = get_json(serve_pod.url + f"/api/v1/runs/{by_release[f'{apps}/db']['id']}")
    assert denied["verdict"] == "failed"
    text = json.dumps(denied["report"])
    assert f"system:serviceaccount:{installed.ns}:{SA}" in text
    assert 'cannot get resource \\"secrets\\"' in text

    # The Events, recorded with the ServiceAccount's token.
    (ok,) = events_for(kube_env, apps, "podinfo")
    assert ok["reason"] == "SmokeTestSucceeded"
    (bad,) = events_for(kube_env, apps, "db")
    assert bad["reason"] == "SmokeTestFailed"
    # The Lease, held by this replica's worker.
    status = get_json(serve_pod.url + "/api/v1/status")
    assert status["leaderElection"] and status["leader"] and status["watching"]
    lease = get(kube_env, "lease", "sg-smokegate-leader", installed.ns)
    assert lease["spec"]["holderIdentity"] == status["worker"]
    # Nothing serve itself does was refused.
    for line in serve_pod.log.splitlines():
        assert "forbidden" not in line.lower() or "secrets" in line, line
    assert "Traceback" not in serve_pod.log
    assert "db-Pw-4410" not in serve_pod.log and "db-Pw-4410" not in text


class ChartTestActors(ClusterActors):
    """ClusterActors (scheduler, kubelet) plus cluster DNS and kube-proxy for the chart's test
    Pod: its ``python3 -c`` script really runs, with SMOKEGATE_URL routed to the local serve only
    if that URL names a Service whose selector matches the Deployment's pod labels and whose
    named targetPort is the Deployment's container port."""

    def __init__(self, *args: Any, endpoints: dict[tuple[str, str], int]) -> None:
        super().__init__(*args)
        self.endpoints = endpoints  # (namespace, Deployment) -> local port of its stand-in pod
        self.routed: list[str] = []

    def _route(self, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        if not host.endswith(".svc") or host.count(".") != 2:
            return url  # not a Service name: no cluster DNS answer for it here
        name, namespace, _ = host.split(".")
        try:
            svc = self.api.get(f"/api/v1/namespaces/{namespace}/services/{name}")
        except Exception:
            return url
        (port,) = [p for p in svc["spec"]["ports"] if p["port"] == parts.port] or [None]
        if port is None:
            return url
        for (ns, deployment), local in self.endpoints.items():
            dep = self.api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{deployment}")
            labels = dep["spec"]["template"]["metadata"]["labels"]
            ports = {p.get("name"): p["containerPort"]
                     for c in dep["spec"]["template"]["spec"]["containers"]
                     for p in c.get("ports", [])}  # fmt: skip
            selected = all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
            if ns == namespace and selected and port["targetPort"] in ports:
                self.routed.append(f"{url} -> {ns}/{deployment}")
                return f"http://127.0.0.1:{local}{parts.path}"
        return url

    def _exec(self, pod: str, container: dict[str, Any]) -> int:
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        if argv[:2] != ["python3", "-c"]:
            return super()._exec(pod, container)
        env = {e["name"]: str(e.get("value", "")) for e in container.get("env") or []}
        env["SMOKEGATE_URL"] = self._route(env.get("SMOKEGATE_URL", ""))
        log = self.logs_dir / self.ns / pod / f"{container['name']}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            proc = subprocess.run(
                ["python3", "-c", argv[2]], stdout=out, stderr=subprocess.STDOUT,
                env={"PATH": os.environ["PATH"], **env}, timeout=120, check=False,
            )  # fmt: skip
        return proc.returncode


@pytest.fixture(scope="module")
def stand_in_node(kube_env: KubeEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    api = Api(kube_env.server, kube_env.token)
    node = StandInNode(api, REPO, tmp_path_factory.mktemp("chart-node"),
                       f"chart-{secrets.token_hex(3)}")  # fmt: skip
    node.start()
    try:
        yield node
    finally:
        node.stop()


def chart_actors(
    kube_env: KubeEnv, node: Any, ns: str, endpoints: dict[tuple[str, str], int]
) -> ChartTestActors:
    api = Api(kube_env.server, kube_env.token)
    return ChartTestActors(api, ns, node.name, node.logs_dir, endpoints=endpoints).start()


def smokegate_helm_test(kube_env: KubeEnv, ns: str, report: Path) -> Any:
    return run_cli("helm-test", RELEASE, "-n", ns, "--kubeconfig", str(kube_env.kubeconfig),
                   "--report", f"json={report}", timeout=180)  # fmt: skip


def test_smokegate_helm_test_runs_the_charts_test(
    installed: Installed, serve_pod: ServePod, kube_env: KubeEnv, stand_in_node: Any,
    tmp_path: Path,
) -> None:  # fmt: skip
    ns = installed.ns
    actors = chart_actors(kube_env, stand_in_node, ns, {(ns, FULLNAME): serve_pod.port})
    try:
        r = smokegate_helm_test(kube_env, ns, tmp_path / "report.json")
    finally:
        actors.stop()
    assert r.code == 0, r.text
    (result,) = json.loads((tmp_path / "report.json").read_text())["results"]
    assert result["id"] == f"helm-test/{FULLNAME}-test-healthz" and result["status"] == "passed"
    url = f"http://{FULLNAME}.{ns}.svc:8080"
    assert actors.routed == [f"{url} -> {ns}/{FULLNAME}"]
    assert f"GET {url}/healthz: 200 ok" in result["log"].replace(
        f"http://127.0.0.1:{serve_pod.port}", url
    )
    assert "/readyz: 200 ok" in result["log"]
    assert not actors.errors, actors.errors
    left = kube_env.kubectl_json("get", "pods", "-n", ns, "-l", "smokegate.io/helm-test-run")
    assert left["items"] == []


def test_helm_test_runs_it_too(
    installed: Installed, serve_pod: ServePod, kube_env: KubeEnv, cluster_helm: HelmCli,
    stand_in_node: Any,
) -> None:  # fmt: skip
    ns = installed.ns
    actors = chart_actors(kube_env, stand_in_node, ns, {(ns, FULLNAME): serve_pod.port})
    try:
        r = cluster_helm("test", RELEASE, "-n", ns, "--timeout", "60s", check=False)
    finally:
        actors.stop()
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"TEST SUITE:     {FULLNAME}-test-healthz" in r.stdout
    assert "Phase:          Succeeded" in r.stdout


# --- two namespaces, monitoring, NetworkPolicy; nothing serving ----------------------------------


@pytest.fixture(scope="module")
def namespaced(kube_env: KubeEnv, cluster_helm: HelmCli) -> Iterator[Installed]:
    kube_env.kubectl("apply", "-f", str(HERE / "monitoring-crds.yaml"))
    for crd in ("servicemonitors", "prometheusrules"):
        kube_env.kubectl("wait", "--for=condition=Established",
                         f"crd/{crd}.monitoring.coreos.com", "--timeout=60s")  # fmt: skip
    ns = new_namespace(kube_env, "smokegate-ns")
    team_a, team_b = new_namespace(kube_env, "team-a"), new_namespace(kube_env, "team-b")
    kube_env.kubectl("create", "secret", "generic", "smokegate-webhook", "-n", ns,
                     "--from-literal=token=k")  # fmt: skip
    values = {"kubernetes.namespaces": [team_a, team_b], "tests.timeoutSeconds": 3,
              "image.repository": "registry.invalid/smokegate"}  # fmt: skip
    seconds, manifest = install(kube_env, cluster_helm, ns, [ci("monitoring")], values)
    try:
        yield Installed(ns, team_a, seconds, manifest)
    finally:
        cluster_helm("uninstall", RELEASE, "-n", ns, check=False)
        for n in (ns, team_a, team_b):
            kube_env.kubectl("delete", "namespace", n, "--wait=false", check=False)


def test_namespaced_install_with_monitoring(
    namespaced: Installed, kube_env: KubeEnv, tmp_path: Path
) -> None:
    ns, team_a = namespaced.ns, namespaced.apps
    team_b = next(d["metadata"]["namespace"] for d in namespaced.manifest.all("Role")
                  if d["metadata"]["namespace"] != team_a)  # fmt: skip
    assert not namespaced.manifest.all("ClusterRole")
    for where in (team_a, team_b):
        assert get(kube_env, "role", FULLNAME, where)["rules"]
        assert get(kube_env, "rolebinding", FULLNAME, where)["subjects"][0]["namespace"] == ns
    hr = "helmreleases.helm.toolkit.fluxcd.io"
    assert can_i(kube_env, ns, "watch", hr, team_a) and can_i(kube_env, ns, "list", hr, team_b)
    assert can_i(kube_env, ns, "create", "events", team_b)
    assert not can_i(kube_env, ns, "list", hr, None)  # nothing cluster-wide
    assert not can_i(kube_env, ns, "get", hr, "default")
    assert not can_i(kube_env, ns, "create", "events", ns)

    # The API server is v1.20: no policy/v1, so the chart chose policy/v1beta1.
    (pdb,) = namespaced.manifest.all("PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1beta1"
    assert get(kube_env, "pdb", FULLNAME, ns)["spec"]["minAvailable"] == 1

    np = get(kube_env, "networkpolicy", FULLNAME, ns)
    assert np["spec"]["policyTypes"] == ["Ingress"] and len(np["spec"]["ingress"]) == 2

    sm = get(kube_env, "servicemonitor", FULLNAME, ns)
    svc = get(kube_env, "service", FULLNAME, ns)
    assert all(svc["metadata"]["labels"][k] == v
               for k, v in sm["spec"]["selector"]["matchLabels"].items())  # fmt: skip
    assert sm["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"]

    rule = get(kube_env, "prometheusrule", FULLNAME, ns)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]))
    promtool = shutil.which("promtool") or "promtool"
    check = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "rules.yaml")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 6 rules found" in check.stdout  # SmokeCheckFailing disabled by the values


def test_helm_test_fails_when_serve_does_not_answer(
    namespaced: Installed, kube_env: KubeEnv, stand_in_node: Any, tmp_path: Path
) -> None:
    """Nothing runs the Deployment's pod in this namespace: the chart's test must fail, with
    the reason in its log (the negative of test_smokegate_helm_test_runs_the_charts_test)."""
    ns = namespaced.ns
    actors = chart_actors(kube_env, stand_in_node, ns, {})
    try:
        r = smokegate_helm_test(kube_env, ns, tmp_path / "report.json")
    finally:
        actors.stop()
    assert r.code == 1, r.text
    (result,) = json.loads((tmp_path / "report.json").read_text())["results"]
    assert result["status"] == "failed"
    assert f"GET http://{FULLNAME}.{ns}.svc:8080/healthz:" in result["log"]
    assert "exited 1" in result["log"]
