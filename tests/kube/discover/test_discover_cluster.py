"""Discovery against a real kube-apiserver: Helm release Secrets (written by the real ``helm``
binary, and built by hand for the older uncompressed format), the helm-controller label
fallback, ``--selector``, ``--via pods``, and an end-to-end run against a real nginx.

No controllers run: Deployments never get pods unless a test creates them. That does not
matter to discovery, which reads specs; ``--via pods`` tests write the pod status themselves.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubeenv import KubeEnv
from tests.discover import charts
from tests.helm_records import release_secret
from tests.helpers import run_cli, write_suite
from tests.servers.nginx import NginxServer

from smokegate.api import run_async
from smokegate.discover import build as build_mod
from smokegate.discover.manifests import load_manifests
from smokegate.discover.objects import collect
from smokegate.discover.request import DiscoverRequest, discover_from_helmrelease, discover_suite
from smokegate.kube.client import KubeClient, KubeOptions


@pytest.fixture(autouse=True)
def grpc_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    # Assert the shape discovery emits for gRPC probes whether or not the kind is installed.
    monkeypatch.setattr(build_mod, "grpc_available", lambda: True)


def apply(env: KubeEnv, objects: list[dict[str, Any]], ns: str) -> None:
    env.kubectl(
        "apply",
        "-n",
        ns,
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
    )


def helmrelease(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "interval": "5m",
            "chart": {
                "spec": {"chart": name, "sourceRef": {"kind": "HelmRepository", "name": "r"}}
            },
            **spec,
        },
    }


async def gate_discovery(env: KubeEnv, ns: str, hr: dict[str, Any]) -> Any:
    client = KubeClient.from_options(KubeOptions(str(env.kubeconfig), None, ns))
    try:
        return await discover_from_helmrelease(client, hr)
    finally:
        await client.close()


def flux_shorten(name: str) -> str:
    """helm-controller's ShortenName, written out independently of smokegate's."""
    if len(name) <= 53:
        return name
    return name[:40] + "-" + hashlib.sha256(name.encode()).hexdigest()[:12]


def request(env: KubeEnv, ns: str, **kw: Any) -> DiscoverRequest:
    return DiscoverRequest(kube=KubeOptions(str(env.kubeconfig), None, ns), **kw)


def assert_checks(
    entries: list[dict[str, Any]], expected: list[dict[str, Any]], *, ordered: bool = True
) -> None:
    got = [{k: v for k, v in e.items() if k != "description"} for e in entries]
    if not ordered:
        # Lists come back sorted by kind, then name: a different order than the manifest's.
        got.sort(key=lambda e: e["name"])
        expected = sorted(expected, key=lambda e: e["name"])
    assert [e["name"] for e in got] == [e["name"] for e in expected]
    for g, want in zip(got, expected, strict=True):
        assert g == want, g["name"]


def assert_not_checked(discovery: Any, *, ordered: bool = True) -> None:
    got = [(n.origin, n.reason) for n in discovery.not_checked]
    expected = charts.expected_not_checked()
    if not ordered:
        got, expected = sorted(got), sorted(expected)
    assert len(got) == len(expected)
    for (origin, fragment), (got_origin, reason) in zip(expected, got, strict=True):
        assert got_origin == origin
        assert fragment in reason


def with_labels(text: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    objects = load_manifests(text)
    for obj in objects:
        obj["metadata"].setdefault("labels", {}).update(labels)
    return objects


# --- the release Secret ------------------------------------------------------------------------


def test_a_flux_release_is_read_from_its_release_secret(
    kube_env: KubeEnv, kube_namespace: str
) -> None:
    """HelmRelease in one namespace, objects in its targetNamespace, release Secrets in its
    storage namespace (the HelmRelease's); the long derived name is shortened as Flux does."""
    storage = kube_namespace
    target = f"{kube_namespace}-apps"
    kube_env.kubectl("create", "namespace", target)
    try:
        release = flux_shorten(f"{target}-charts-on-a-rather-long-helmrelease-name")
        assert len(release) == 53  # the test must exercise the shortening
        apply(
            kube_env,
            [
                helmrelease(
                    "charts-on-a-rather-long-helmrelease-name", storage, targetNamespace=target
                ),
                # The live revision is the newest *deployed* one, not the newest.
                release_secret(release, target, 1, "superseded", charts.PODINFO),
                release_secret(release, target, 2, "deployed", charts.ALL),
                release_secret(release, target, 3, "failed", charts.REDIS),
            ],
            storage,
        )
        discovery = discover_suite(
            request(
                kube_env, storage, target="helmrelease/charts-on-a-rather-long-helmrelease-name"
            )
        )
        # The gate's entry point: the HelmRelease it waited for, and its own client.
        hr = kube_env.kubectl_json(
            "get", "helmrelease", "charts-on-a-rather-long-helmrelease-name", "-n", storage
        )
        via_gate = run_async(gate_discovery(kube_env, storage, hr))
    finally:
        kube_env.kubectl("delete", "namespace", target, "--wait=false")
    assert discovery.source == (
        f"Helm release {release} revision 2 (charts-1.2.0; Secret "
        f"{storage}/sh.helm.release.v1.{release}.v2)"
    )
    assert discovery.namespace == target
    assert discovery.notes == []
    assert_checks([c.entry() for c in discovery.checks], charts.expected_checks(target))
    assert_not_checked(discovery)
    assert [c.entry() for c in via_gate.checks] == [c.entry() for c in discovery.checks]
    assert via_gate.not_checked == discovery.not_checked
    suite = discovery.suite()
    assert suite["metadata"]["name"] == f"discovered-{release}"
    assert suite["spec"]["release"] == {
        "helmRelease": "charts-on-a-rather-long-helmrelease-name",
        "namespace": storage,
    }


def test_a_release_secret_without_gzip_is_read(kube_env: KubeEnv, kube_namespace: str) -> None:
    """Older Helm stored the JSON without compressing it; no HelmRelease: a plain Helm release."""
    ns = kube_namespace
    apply(
        kube_env, [release_secret("legacy", ns, 4, "deployed", charts.GREETER, compress=False)], ns
    )
    discovery = discover_suite(request(kube_env, ns, target="legacy"))
    assert discovery.notes == [
        f"no HelmRelease {ns}/legacy: looking for the Helm release 'legacy' instead"
    ]
    assert discovery.source.startswith("Helm release legacy revision 4 ")
    greeter = [c for c in charts.expected_checks(ns) if c["name"].startswith("greeter")]
    assert_checks([c.entry() for c in discovery.checks], greeter)
    assert discovery.not_checked == []


# --- labels ------------------------------------------------------------------------------------


def test_without_a_release_secret_objects_are_found_by_flux_labels(
    kube_env: KubeEnv, kube_namespace: str
) -> None:
    ns = kube_namespace
    flux = {"helm.toolkit.fluxcd.io/name": "charts", "helm.toolkit.fluxcd.io/namespace": ns}
    apply(kube_env, [helmrelease("charts", ns), *with_labels(charts.ALL_BUT_GRPC, flux)], ns)
    # Another release's objects in the same namespace are not picked up.
    other = {"helm.toolkit.fluxcd.io/name": "other", "helm.toolkit.fluxcd.io/namespace": ns}
    apply(kube_env, with_labels(charts.GREETER.split("---")[1], other), ns)
    discovery = discover_suite(request(kube_env, ns, target=f"hr/{ns}/charts"))
    assert discovery.source == (
        "objects labelled helm.toolkit.fluxcd.io/name=charts,"
        f"helm.toolkit.fluxcd.io/namespace={ns} in namespace {ns}"
    )
    assert discovery.notes == [
        f"no deployed revision of Helm release 'charts' in namespace '{ns}'; "
        "found objects by labels"
    ]
    expected = charts.expected_checks(ns, grpc=False)
    assert_checks([c.entry() for c in discovery.checks], expected, ordered=False)
    assert_not_checked(discovery, ordered=False)


def test_then_by_the_instance_label_and_by_selector(kube_env: KubeEnv, kube_namespace: str) -> None:
    ns = kube_namespace
    apply(kube_env, with_labels(charts.PODINFO, {"app.kubernetes.io/instance": "web"}), ns)
    discovery = discover_suite(request(kube_env, ns, target="web"))
    assert discovery.source == f"objects labelled app.kubernetes.io/instance=web in namespace {ns}"
    names = [c.name for c in discovery.checks]
    assert names == [
        "podinfo-port-http",
        "podinfo-port-grpc",
        "ingress-podinfo-podinfo.example.com",
        "ingress-podinfo-podinfo-internal.example.com-api",
    ]
    by_selector = discover_suite(
        request(kube_env, ns, selector="app.kubernetes.io/instance in (web)")
    )
    assert [c.name for c in by_selector.checks] == names


def test_nothing_found_is_an_error(kube_env: KubeEnv, kube_namespace: str, tmp_path: Path) -> None:
    ns = kube_namespace
    result = run_discover(kube_env, "hr/ghost", "-n", ns)
    assert result.returncode == 2
    assert "nothing to discover for Helm release 'ghost'" in result.stderr


# --- --via pods --------------------------------------------------------------------------------


def test_via_pods_checks_unexposed_probes_on_pod_ips(
    kube_env: KubeEnv, kube_namespace: str
) -> None:
    ns = kube_namespace
    apply(kube_env, with_labels(charts.DASHBOARD, {"app.kubernetes.io/instance": "dash"}), ns)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "dashboard-5f7-x2k", "labels": {"app": "dashboard"}},
        "spec": {"containers": [{"name": "dashboard", "image": "example/dashboard:2.1"}]},
    }
    apply(kube_env, [pod], ns)
    status = {"status": {"phase": "Running", "podIP": "10.1.2.3", "podIPs": [{"ip": "10.1.2.3"}]}}
    kube_env.kubectl(
        "patch", "pod", "dashboard-5f7-x2k", "-n", ns, "--subresource=status",
        "--type=merge", "-p", json.dumps(status),
    )  # fmt: skip
    discovery = discover_suite(request(kube_env, ns, target="dash", via="pods"))
    pod_checks = [c for c in discovery.checks if "[pod=" in c.name]
    assert [(c.name, c.spec["url"]) for c in pod_checks] == [
        ("dashboard-dashboard-readiness[pod=dashboard-5f7-x2k]", "http://10.1.2.3:8080/healthz")
    ]


# --- a chart installed by the real helm binary --------------------------------------------------


def helm(env: KubeEnv, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = {
        "HELM_CACHE_HOME": str(tmp / "helm-cache"),
        "HELM_CONFIG_HOME": str(tmp / "helm-config"),
        "HELM_DATA_HOME": str(tmp / "helm-data"),
    }
    proc = subprocess.run(
        [str(env.helm_path), *args, "--kubeconfig", str(env.kubeconfig)]
        if args[0] != "create"
        else [str(env.helm_path), *args],
        capture_output=True,
        text=True,
        cwd=tmp,
        env={**os.environ, **home},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def test_helm_create_chart_installed_by_helm(
    kube_env: KubeEnv, kube_namespace: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    helm(kube_env, tmp_path, "create", "myapp")
    # Flux names the release <targetNamespace>-<name> when targetNamespace is set.
    release = flux_shorten(f"{ns}-myapp")
    apply(kube_env, [helmrelease("myapp", ns, targetNamespace=ns)], ns)
    helm(
        kube_env, tmp_path, "install", release, "./myapp", "-n", ns,
        "--set", "ingress.enabled=true",
    )  # fmt: skip
    discovery = discover_suite(request(kube_env, ns, target="helmrelease/myapp"))
    assert discovery.record is not None and discovery.record.chart.name == "myapp"
    assert discovery.source == (
        f"Helm release {release} revision 1 (myapp-0.1.0; Secret {ns}/sh.helm.release.v1."
        f"{release}.v1)"
    )
    # Every workload and Service of the release (helm itself rendered and stored them).
    objects = collect(load_manifests(discovery.record.manifest), ns)
    fullname = release if "myapp" in release else f"{release}-myapp"[:63].rstrip("-")
    assert [w.ref for w in objects.workloads] == [f"Deployment/{fullname}"]
    assert [s.ref for s in objects.services] == [f"Service/{fullname}"]
    assert [i.ref for i in objects.ingresses] == [f"Ingress/{fullname}"]
    entries = [c.entry() for c in discovery.checks]
    assert entries == [
        {
            "name": f"{fullname}-readiness",
            "description": f"from Deployment/{fullname} container myapp readinessProbe, "
            "livenessProbe",
            "tags": ["discovered", "probe"],
            "timeout": "1s",
            "retry": {"attempts": 3, "interval": "10s", "within": "30s"},
            "http": {
                "url": f"http://{fullname}.{ns}.svc.cluster.local:80/",
                "expect": {"status": "200-399"},
            },
        },
        {
            "name": f"ingress-{fullname}-chart-example.local",
            "description": f"from Ingress/{fullname} host chart-example.local path /",
            "tags": ["discovered", "ingress"],
            "http": {"url": "http://chart-example.local/", "expect": {"status": "200-399"}},
        },
    ]
    assert discovery.not_checked == []
    assert (
        discovery.checks[0].via
        == "via Service " + fullname + " port http (80 -> container port 80)"
    )


# --- end to end: discover, run, break, run ------------------------------------------------------


def run_discover(env: KubeEnv, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smokegate", "discover", *args,
         "--kubeconfig", str(env.kubeconfig)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def web_release(port: int) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports: [{{name: http, containerPort: {port}}}]
          readinessProbe:
            httpGet: {{path: /healthz, port: http}}
            periodSeconds: 1
            failureThreshold: 2
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: {port}, targetPort: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web-direct}}
spec:
  selector: {{app: web}}
  ports: [{{name: direct, port: {port}}}]
"""


HEALTHZ = 'if (!-f $document_root/healthy) { return 503 "broken\\n"; } return 200 "ok\\n";'


def test_end_to_end_discovered_checks_pass_then_fail(
    kube_env: KubeEnv, kube_namespace: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    with NginxServer(locations={"= /healthz": HEALTHZ}, files={"healthy": "yes"}) as nginx:
        port = nginx.port
        apply(
            kube_env,
            [helmrelease("web", ns), release_secret("web", ns, 1, "deployed", web_release(port))],
            ns,
        )
        resolve = [
            "--resolve", f"web.{ns}.svc.cluster.local:{port}:127.0.0.1",
            "--resolve", f"web-direct.{ns}.svc.cluster.local:{port}:127.0.0.1",
        ]  # fmt: skip
        # 1. discover (the addresses go into the suite), 2. run it with the real CLI
        found = run_discover(kube_env, "helmrelease/web", "-n", ns, *resolve)
        assert found.returncode == 0, found.stderr
        suite = tmp_path / "web.yaml"
        suite.write_text(found.stdout)
        assert "# from Deployment/web container web readinessProbe\n" in found.stdout
        ok = run_cli("run", str(suite))
        assert ok.code == 0, ok.text
        assert "2 passed" in ok.text, ok.text
        # 3. `run --discover` (as smokegate.cli wires it), merged with a user suite. The probe goes
        # through both Services (one check per route); the user's check replaces the second.
        user = write_suite(
            tmp_path,
            f"""
            - name: web-readiness[service=web-direct:direct]
              tcp: {{host: 127.0.0.1, port: {port}}}
            - name: mine
              http: {{url: "http://127.0.0.1:{port}/healthz"}}
            """,
            name="mine",
            filename="mine.yaml",
        )
        wired = run_wired_run(
            "--discover",
            "hr/web",
            "-n",
            ns,
            "--kubeconfig",
            str(kube_env.kubeconfig),
            *resolve,
            str(user),
        )
        assert wired.returncode == 0, wired.stdout + wired.stderr
        assert "mine/web-readiness[service=web-direct:direct]" in wired.stdout
        assert "discovered-web/web-readiness" in wired.stdout
        # the user's wins
        assert "discovered-web/web-readiness[service=web-direct:direct]" not in wired.stdout

        # Break the app's /healthz: the probe-derived check fails, the run exits 1.
        (nginx.prefix / "html" / "healthy").unlink()
        broken = run_cli("run", str(suite))
        assert broken.code == 1, broken.text
        assert "web-readiness" in broken.text and "503" in broken.text
        wired = run_wired_run(
            "--discover",
            "hr/web",
            "-n",
            ns,
            "--kubeconfig",
            str(kube_env.kubeconfig),
            *resolve,
            str(user),
        )
        assert wired.returncode == 1, wired.stdout + wired.stderr


def run_wired_run(*args: str) -> subprocess.CompletedProcess[str]:
    """The real ``smokegate run`` (with ``--discover``)."""
    return subprocess.run(
        [sys.executable, "-m", "smokegate", "run", *args],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )  # fmt: skip
