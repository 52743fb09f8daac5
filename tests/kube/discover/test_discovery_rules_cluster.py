"""Discovery rules 9-12 (issue 17) on objects read back from a real kube-apiserver, where the
API server's own defaulting has run (``SetDefaults_Probe``, ``SetDefaults_HTTPGetAction``, an
empty ``selector: {}`` stored as none): live objects must give what the rendered manifests give.
Then the rule-12 checks are run for real against nginx.

No controllers run (no pods): discovery reads specs, so that does not matter here.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from kubeenv import KubeEnv
from tests.discover.test_discovery_rules import RELEASE
from tests.helm_records import release_secret
from tests.helpers import run_cli
from tests.servers.nginx import NginxServer

from smokegate.discover.build import build_checks
from smokegate.discover.manifests import load_manifests
from smokegate.discover.objects import collect
from smokegate.discover.request import DiscoverRequest, discover_suite
from smokegate.kube.client import KubeOptions

INSTANCE = {"app.kubernetes.io/instance": "shop"}

# Probes equal only once the API server's defaults are in (rule 10), and a Service with
# `selector: {}` (rule 9).
API = textwrap.dedent(
    """
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: api}
    spec:
      selector: {matchLabels: {app: api}}
      template:
        metadata: {labels: {app: api}}
        spec:
          containers:
            - name: api
              image: example/api:1
              ports: [{name: http, containerPort: 9000}]
              readinessProbe: {httpGet: {path: /healthz, port: http}}
              livenessProbe:
                httpGet: {path: /healthz, port: 9000, scheme: HTTP}
                timeoutSeconds: 1
                failureThreshold: 3
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: api}
    spec:
      selector: {app: api}
      ports: [{name: http, port: 80, targetPort: http}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: api-all}
    spec:
      selector: {}
      ports: [{name: http, port: 9000}]
    """
)


def apply(env: KubeEnv, objects: list[dict[str, Any]], ns: str) -> None:
    env.kubectl(
        "apply", "-n", ns, "-f", "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
    )  # fmt: skip


def labelled(text: str) -> list[dict[str, Any]]:
    objects = load_manifests(text)
    for obj in objects:
        obj["metadata"].setdefault("labels", {}).update(INSTANCE)
        for container in (
            (obj.get("spec") or {}).get("template", {}).get("spec", {}).get("containers", [])
        ):
            container.setdefault("image", "example/app:1")  # the API server requires one
        for container in (
            (obj.get("spec") or {}).get("template", {}).get("spec", {}).get("initContainers", [])
        ):
            container.setdefault("image", "example/migrate:1")
    return objects


def summary(checks: list[Any], not_checked: list[Any]) -> tuple[list[Any], list[str]]:
    entries = sorted(
        ({k: v for k, v in c.entry().items() if k != "description"} for c in checks),
        key=lambda e: e["name"],
    )
    return entries, sorted(f"{n.origin}: {n.reason}" for n in not_checked)


def test_live_objects_give_what_the_manifests_give(kube_env: KubeEnv, kube_namespace: str):
    """kubernetes ``pkg/apis/core/v1/defaults.go`` ``SetDefaults_Probe`` and
    ``SetDefaults_HTTPGetAction`` run in the API server: the ``api`` readiness and liveness
    probes, different as written, are equal as stored, so both sources give one check (rule
    10). ``selector: {}`` is stored as no selector (``endpointslice_controller.go``
    ``syncService`` skips it): not checked (rule 9). Rules 11 and 12 as in the manifests."""
    ns = kube_namespace
    apply(kube_env, labelled(RELEASE + "\n---\n" + API), ns)
    stored = kube_env.kubectl_json("get", "service", "api-all", "-n", ns)
    assert "selector" not in stored["spec"]
    probe = kube_env.kubectl_json("get", "deployment", "api", "-n", ns)["spec"]["template"]
    live_probe = probe["spec"]["containers"][0]["readinessProbe"]
    assert live_probe["timeoutSeconds"] == 1 and live_probe["httpGet"]["scheme"] == "HTTP"

    live = discover_suite(
        DiscoverRequest(
            selector="app.kubernetes.io/instance=shop",
            kube=KubeOptions(str(kube_env.kubeconfig), None, ns),
        )
    )
    offline = build_checks(collect(load_manifests(RELEASE + "\n---\n" + API), ns))
    assert summary(live.checks, live.not_checked) == summary(*offline)
    entries, not_checked = summary(live.checks, live.not_checked)
    assert [e["name"] for e in entries] == [
        "api-readiness",
        "web-liveness",
        "web-liveness[service=web-direct:direct]",
        "web-readiness",
        "web-readiness[service=web-direct:direct]",
    ]
    api = next(c for c in live.checks if c.name == "api-readiness")
    assert api.origin == "Deployment/api container api readinessProbe, livenessProbe"
    assert [n.split(":")[0] for n in not_checked] == [
        "Deployment/proxy container proxy livenessProbe",
        "Service/api-all port http",
        "Service/db-external port pg",
        "Service/web port setup",
    ]
    assert "127.0.0.1" not in json.dumps([e for e in entries])


def test_a_release_secret_with_a_service_in_another_namespace(
    kube_env: KubeEnv, kube_namespace: str
) -> None:
    """``endpointslice_controller.go`` ``syncService`` lists pods in the Service's own
    namespace: a chart's Service pinned to another namespace selects none of the release's
    pods, so its port is listed, not checked (rule 9), read from a real Helm release Secret."""
    ns = kube_namespace
    pinned = API.split("---")[1].replace("{name: api}", "{name: api, namespace: elsewhere}")
    manifest = API.split("---")[0] + "---" + pinned
    apply(kube_env, [release_secret("shop", ns, 1, "deployed", manifest)], ns)
    discovery = discover_suite(
        DiscoverRequest(target="shop", kube=KubeOptions(str(kube_env.kubeconfig), None, ns))
    )
    assert [c.name for c in discovery.checks] == []
    reasons = {n.origin: n.reason for n in discovery.not_checked}
    assert reasons["Service/api port http"] == (
        "it is in namespace elsewhere, and a Service selects pods of its own namespace only; its "
        f"selector app=api matches Deployment/api in namespace {ns}: no pod of the release "
        "serves it"
    )


def two_services(port: int) -> str:
    # The proxied Service's port is nginx's (no kube-proxy here to map one to the other); the
    # headless one declares port 82, which a client of a headless Service never dials.
    return textwrap.dedent(
        f"""
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
                  ports: [{{name: http, containerPort: {port}}}]
                  readinessProbe: {{httpGet: {{path: /healthz, port: http}}, periodSeconds: 1}}
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
        metadata: {{name: web-hl}}
        spec:
          clusterIP: None
          selector: {{app: web}}
          ports: [{{name: http, port: 82, targetPort: http}}]
        """
    )


HEALTHZ = 'if (!-f $document_root/healthy) { return 503 "broken\\n"; } return 200 "ok\\n";'


def test_each_route_of_a_probe_is_run_for_real(
    kube_env: KubeEnv, kube_namespace: str, tmp_path: Path
) -> None:
    """Rule 12 (``pkg/api/v1/pod/util.go`` ``FindPort`` per exposing Service port) end to end:
    discover from the live objects, then run the suite against nginx standing in for the pods
    (``--resolve`` maps both Service names to it). The headless route dials the container port,
    not the Service's 82; when the app breaks, both routes fail."""
    ns = kube_namespace
    with NginxServer(locations={"= /healthz": HEALTHZ}, files={"healthy": "yes"}) as nginx:
        port = nginx.port
        apply(kube_env, labelled(two_services(port)), ns)
        found = run_cli(
            "discover", "-l", "app.kubernetes.io/instance=shop", "-n", ns,
            "--kubeconfig", str(kube_env.kubeconfig),
            "--resolve", f"web.{ns}.svc.cluster.local:{port}:127.0.0.1",
            "--resolve", f"web-hl.{ns}.svc.cluster.local:{port}:127.0.0.1",
        )  # fmt: skip
        assert found.code == 0, found.text
        assert "- name: web-readiness\n" in found.out
        assert "- name: web-readiness[service=web-hl:http]\n" in found.out
        assert f"url: http://web-hl.{ns}.svc.cluster.local:{port}/healthz" in found.out
        assert "web-hl-port" not in found.out  # covered by the probe check: no tcp check
        suite = tmp_path / "discovered.yaml"
        suite.write_text(found.out)
        ok = run_cli("run", str(suite))
        assert ok.code == 0, ok.text
        assert "2 passed" in ok.text, ok.text
        (nginx.prefix / "html" / "healthy").unlink()
        broken = run_cli("run", str(suite))
        assert broken.code == 1, broken.text
        assert "2 failed" in broken.text, broken.text
