"""Discovery on rendered manifests: no cluster. The same charts are read from a real API server
in tests/kube/discover/."""

from __future__ import annotations

import base64
import gzip
import json
import sys
import textwrap
from pathlib import Path

import pytest

from smokegate.api import plan_run, plan_suites
from smokegate.core.errors import SuiteError, UsageError
from smokegate.discover import build as build_mod
from smokegate.discover.build import BuildOptions, PodAddress, build_checks
from smokegate.discover.manifests import load_manifests
from smokegate.discover.objects import (
    Container,
    ContainerPort,
    ServicePort,
    Workload,
    collect,
)
from smokegate.discover.ports import PortError, resolve_probe_port, service_target
from smokegate.discover.request import DiscoverRequest, discover_suite, merge_discovered
from smokegate.discover.selector import parse_selector
from smokegate.helm.release import (
    HelmReleaseRecord,
    ReleaseDecodeError,
    decode_release,
    encode_release,
    pick_latest,
    release_ref,
    shorten_name,
)
from smokegate.suite.loader import parse_suites
from tests.discover import charts
from tests.helpers import run_cli, write_suite

REAL_GRPC_AVAILABLE = build_mod.grpc_available


@pytest.fixture(autouse=True)
def grpc_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    # The grpc check kind ships separately; these tests assert the shape discovery emits for it.
    monkeypatch.setattr(build_mod, "grpc_available", lambda: True)


def discover(text: str, ns: str = "apps", **options: object) -> tuple[list[dict], list]:
    checks, skipped = build_checks(collect(load_manifests(text), ns), BuildOptions(**options))
    return [c.entry() for c in checks], skipped


def without_description(entries: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "description"} for e in entries]


# --- the charts, check by check ----------------------------------------------------------------


def test_charts_give_every_expected_check_field_by_field() -> None:
    entries, skipped = discover(charts.ALL)
    expected = charts.expected_checks("apps")
    assert [e["name"] for e in entries] == [e["name"] for e in expected]
    for got, want in zip(without_description(entries), expected, strict=True):
        assert got == want, got["name"]
    got_skipped = [(s.origin, s.reason) for s in skipped]
    for (origin, fragment), (got_origin, reason) in zip(
        charts.expected_not_checked(), got_skipped, strict=True
    ):
        assert got_origin == origin
        assert fragment in reason


def test_descriptions_say_where_each_check_came_from() -> None:
    entries, _ = discover(charts.ALL)
    by_name = {e["name"]: e["description"] for e in entries}
    # Its liveness probe sends the same request with another failureThreshold: a check of its own.
    assert by_name["ingress-nginx-controller-readiness"] == (
        "from Deployment/ingress-nginx-controller container controller readinessProbe"
    )
    assert by_name["greeter-port-metrics"] == "from Service/greeter port metrics"
    assert by_name["ingress-podinfo-podinfo.example.com"] == (
        "from Ingress/podinfo host podinfo.example.com path /"
    )


def test_yaml_output_has_source_comments_and_loads_as_a_suite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loaded for real: the grpc kind is used only where it is installed.
    monkeypatch.setattr(build_mod, "grpc_available", REAL_GRPC_AVAILABLE)
    discovery = discover_suite(
        DiscoverRequest(files=["-"], stdin_text=charts.ALL, command="smokegate discover -f -")
    )
    text = discovery.yaml()
    assert text.startswith("# Discovered by smokegate from stdin.\n# Regenerate: smokegate")
    assert (
        "    # from Deployment/ingress-nginx-controller container controller readinessProbe\n"
        "    # via Service ingress-nginx-controller-metrics port metrics "
        "(10254 -> container port 10254)\n"
        "    - name: ingress-nginx-controller-readiness\n"
    ) in text
    assert "      retry: {attempts: 3, interval: 10s, within: 30s}\n" in text
    assert "# Not checked (4):\n" in text
    assert "# - Deployment/podinfo container podinfo readinessProbe: exec probe" in text
    path = tmp_path / "discovered.yaml"
    path.write_text(text)
    plan = plan_run([str(path)], lint=True)
    assert len(plan.checks) == len(discovery.checks) == 17
    first = plan.checks[0]
    assert (first.timeout, first.retry.attempts, first.retry.interval, first.retry.within) == (
        1.0,
        3,
        10.0,
        30.0,
    )
    service_check = next(c for c in plan.checks if c.name == "podinfo-port-http")
    assert (service_check.timeout, service_check.retry.within) == (5.0, 30.0)


def test_grpc_probes_fall_back_to_tcp_without_the_grpc_kind(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(build_mod, "grpc_available", lambda: False)
    checks, _ = build_checks(collect(load_manifests(charts.GREETER), "apps"))
    readiness = checks[0]
    assert (readiness.name, readiness.kind, readiness.spec) == (
        "greeter-readiness",
        "tcp",
        {"host": "greeter.apps.svc.cluster.local", "port": 9090},
    )
    assert "pip install 'smokegate[grpc]'" in readiness.notes[0]


# --- Kubernetes' port rules --------------------------------------------------------------------


def _container(name: str, *ports: tuple[str | None, int, str]) -> Container:
    return Container(name, tuple(ContainerPort(p, n, proto) for n, p, proto in ports))


def test_probe_port_names_resolve_only_in_their_own_container() -> None:
    own = _container("proxy", ("http", 4180, "TCP"))
    assert resolve_probe_port(own, "http", "readinessProbe") == 4180
    assert resolve_probe_port(own, 9090, "readinessProbe") == 9090
    with pytest.raises(PortError, match="'metrics' is not a port name of container 'proxy'"):
        resolve_probe_port(own, "metrics", "livenessProbe")
    # Port names contain a letter (API validation): a numeric string is no name, and there is
    # no "maybe it is a number" fallback.
    with pytest.raises(PortError, match="'4180' is not a port name"):
        resolve_probe_port(own, "4180", "readinessProbe")
    with pytest.raises(PortError, match="outside 1-65535"):
        resolve_probe_port(own, 70000, "readinessProbe")


def test_service_target_ports_follow_find_port() -> None:
    app = _container("app", ("dns", 5353, "UDP"), ("web", 8080, "TCP"))
    side = _container("sidecar", ("dns", 53, "TCP"), ("web", 9000, "TCP"))
    native = Container("native", (ContainerPort(7000, "extra"),), sidecar=True)
    w = Workload("Deployment", "w", "ns", {"app": "w"}, (app, side), (native,))
    # name *and* protocol: the UDP `dns` of the first container does not match a TCP port
    assert service_target(w, ServicePort(53, target_port="dns")).port == 53
    assert service_target(w, ServicePort(53, target_port="dns", protocol="UDP")).port == 5353
    # first container in order wins
    assert service_target(w, ServicePort(80, target_port="web")).port == 8080
    # native sidecars are searched after the regular containers
    assert service_target(w, ServicePort(70, target_port="extra")).port == 7000
    # unset targetPort = port; a number is used as given (declared or not)
    assert service_target(w, ServicePort(8080)).port == 8080
    assert service_target(w, ServicePort(80, target_port=1234)).port == 1234
    assert service_target(w, ServicePort(80, target_port="nope")) is None


SELECTORLESS = """
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
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /ready, port: http}}
---
apiVersion: v1
kind: Service
metadata: {name: api-empty}
spec:
  selector: {}
  ports: [{port: 8080}]
"""


def test_a_service_without_selector_selects_nothing() -> None:
    entries, skipped = discover(SELECTORLESS)
    # No pod of the release can serve the selector-less port: listed, not a tcp check.
    assert entries == []
    assert skipped[0].origin == "Deployment/api container api readinessProbe"
    assert "no Service selects the pods of Deployment/api and exposes container port 8080" in (
        skipped[0].reason
    )
    assert skipped[1].origin == "Service/api-empty port 8080"
    assert skipped[1].reason.startswith("no selector: Kubernetes manages no endpoints for it")


HEADLESS_ONLY = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: data}
spec:
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
        - name: db
          ports: [{name: pg, containerPort: 5432}]
          readinessProbe: {tcpSocket: {port: pg}, periodSeconds: 3, failureThreshold: 4}
---
apiVersion: v1
kind: Service
metadata: {name: db-hl, namespace: data}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: pg, port: 15432, targetPort: pg}]
"""


def test_headless_services_are_not_proxied_checks_use_the_container_port() -> None:
    entries, skipped = discover(HEADLESS_ONLY)
    assert without_description(entries) == [
        {
            "name": "db-readiness",
            "tags": ["discovered", "probe"],
            "timeout": "1s",
            "retry": {"attempts": 4, "interval": "3s", "within": "12s"},
            "tcp": {"host": "db-hl.data.svc.cluster.local", "port": 5432},
        }
    ]
    assert skipped == []


HTTPS_PROBES = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      initContainers:
        - name: setup
          ports: [{name: https, containerPort: 1}]
        - name: proxy
          restartPolicy: Always
          ports: [{name: admin, containerPort: 15000}]
          startupProbe: {httpGet: {path: ready, port: admin}, failureThreshold: 30}
      containers:
        - name: agent
          ports: [{name: https, containerPort: 8443}]
          readinessProbe:
            httpGet:
              scheme: HTTPS
              path: /healthz?verbose=1
              port: https
              httpHeaders:
                - {name: Host, value: agent.internal}
                - {name: User-Agent, value: ""}
                - {name: X-Token, value: a}
                - {name: X-Token, value: b}
          livenessProbe:
            httpGet: {host: status.example.net, path: /live, port: 8081}
---
apiVersion: v1
kind: Service
metadata: {name: agent}
spec:
  selector: {app: agent}
  ports:
    - {name: https, port: 443, targetPort: https}
    - {name: admin, port: 15000, targetPort: admin}
"""


def test_https_probe_headers_host_and_native_sidecars() -> None:
    entries, skipped = discover(HTTPS_PROBES)
    assert without_description(entries) == [
        {
            "name": "agent-agent-readiness",
            "tags": ["discovered", "probe"],
            "timeout": "1s",
            "retry": {"attempts": 3, "interval": "10s", "within": "30s"},
            "http": {
                "url": "https://agent.apps.svc.cluster.local:443/healthz?verbose=1",
                # An empty value only removes a kubelet default header: nothing to send.
                "headers": {"Host": "agent.internal", "X-Token": "a, b"},
                "tls": {"verify": False},
                "expect": {"status": "200-399"},
            },
        },
        {
            "name": "agent-proxy-startup",
            "tags": ["discovered", "probe"],
            "timeout": "1s",
            "retry": {"attempts": 30, "interval": "10s", "within": "300s"},
            "http": {
                "url": "http://agent.apps.svc.cluster.local:15000/ready",
                "expect": {"status": "200-399"},
            },
        },
    ]
    # httpGet.host is dialled by the kubelet from the node: not checkable from elsewhere.
    assert [(s.origin, s.reason.split(":")[0]) for s in skipped] == [
        ("DaemonSet/agent container agent livenessProbe", "httpGet.host 'status.example.net'")
    ]
    assert entries[1]["description"] == "from DaemonSet/agent sidecar proxy startupProbe"


def test_unexposed_probes_use_pod_ips_only_with_via_pods() -> None:
    objects = collect(load_manifests(charts.DASHBOARD), "apps")
    pods = {"apps/Deployment/dashboard": [PodAddress("dashboard-7d9-abc", "10.1.2.3")]}
    checks, skipped = build_checks(objects, BuildOptions(via="pods", pods=pods))
    by_name = {c.name: c for c in checks}
    pod_check = by_name["dashboard-dashboard-readiness[pod=dashboard-7d9-abc]"]
    assert pod_check.spec == {
        "url": "http://10.1.2.3:8080/healthz",
        "headers": {"X-Probe": "kubelet"},
        "expect": {"status": "200-399"},
    }
    assert pod_check.via == "on pod dashboard-7d9-abc (--via pods)"
    # The proxy's probe still goes through its Service; the broken one is still reported.
    assert "dashboard-oauth2-proxy-readiness" in by_name
    assert [s.origin for s in skipped] == [
        "Deployment/dashboard container oauth2-proxy livenessProbe"
    ]
    # Offline (no cluster): no pod IPs to use, and it says so.
    _, skipped = build_checks(objects, BuildOptions(via="pods"))
    assert "--via pods needs the cluster to find pod IPs" in skipped[1].reason


def test_resolve_overrides_are_written_into_the_checks() -> None:
    checks, _ = build_checks(
        collect(load_manifests(charts.ALL), "apps"),
        BuildOptions(
            resolve=(
                "ingress-nginx-controller-metrics.apps.svc.cluster.local:10254:127.0.0.1",
                "podinfo.apps.svc.cluster.local:9898:127.0.0.2",
                "podinfo.example.com:443:[::1]",
                "greeter.apps.svc.cluster.local:9090:127.0.0.3",
            )
        ),
    )
    by_name = {c.name: c for c in checks}
    http = by_name["ingress-nginx-controller-readiness"]
    assert http.spec["url"].startswith("http://ingress-nginx-controller-metrics.apps.svc")
    assert http.spec["resolve"] == [
        "ingress-nginx-controller-metrics.apps.svc.cluster.local:10254:127.0.0.1"
    ]
    assert by_name["podinfo-port-http"].spec == {"host": "127.0.0.2", "port": 9898}
    assert by_name["ingress-podinfo-podinfo.example.com"].spec["resolve"] == [
        "podinfo.example.com:443:[::1]"
    ]
    assert "resolve" not in by_name["podinfo-port-grpc"].spec
    assert by_name["greeter-readiness"].spec == {
        "target": "127.0.0.3:9090",
        "service": "greeter.v1.Greeter",
    }
    assert by_name["greeter-readiness"].notes == [
        "--resolve: connects to 127.0.0.3 for greeter.apps.svc.cluster.local:9090"
    ]


INGRESS_EDGE_CASES = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: edge}
spec:
  tls: [{secretName: wildcard}]
  rules:
    - http:
        paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]
    - host: "*.example.com"
      http:
        paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]
    - host: app.example.com
      http:
        paths:
          - {path: "/api(/|$)(.*)", pathType: ImplementationSpecific,
             backend: {service: {name: web, port: {number: 80}}}}
          - {path: /docs/v1, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"""


def test_ingress_edge_cases() -> None:
    entries, skipped = discover(INGRESS_EDGE_CASES)
    # a tls entry without hosts covers every host
    assert without_description(entries) == [
        {
            "name": "ingress-edge-app.example.com-docs-v1",
            "tags": ["discovered", "ingress"],
            "http": {"url": "https://app.example.com/docs/v1", "expect": {"status": "200-399"}},
        }
    ]
    assert [(s.origin, s.reason.split(":")[0]) for s in skipped] == [
        ("Ingress/edge host * path /", "rule without a host"),
        ("Ingress/edge host *.example.com path /", "wildcard host"),
        ("Ingress/edge host app.example.com path /api(/|$)(.*)", "path is a regular expression"),
    ]


def test_names_stay_unique() -> None:
    # A Deployment and a StatefulSet of the same name: same derived names, made unique.
    text = charts.GREETER + "---" + charts.GREETER.replace("kind: Deployment", "kind: StatefulSet")
    names = [e["name"] for e in discover(text)[0]]
    assert len(names) == len(set(names))
    assert "greeter-readiness-2" in names


# --- Helm release records ----------------------------------------------------------------------


def test_release_names_follow_flux() -> None:
    hr = {"metadata": {"name": "podinfo", "namespace": "flux-system"}, "spec": {}}
    ref = release_ref(hr)
    assert (ref.name, ref.namespace, ref.storage_namespace) == (
        "podinfo",
        "flux-system",
        "flux-system",
    )
    hr["spec"] = {"targetNamespace": "apps", "storageNamespace": "helm-state"}
    ref = release_ref(hr)
    assert (ref.name, ref.namespace, ref.storage_namespace) == (
        "apps-podinfo",
        "apps",
        "helm-state",
    )
    assert ref.secret_name(3) == "sh.helm.release.v1.apps-podinfo.v3"
    hr["spec"]["releaseName"] = "custom"
    assert release_ref(hr).name == "custom"
    long = "a-very-long-target-namespace-name-for-the-tests-x"
    hr["spec"] = {"targetNamespace": long}
    full = f"{long}-podinfo"
    assert len(full) > 53
    shortened = release_ref(hr).name
    import hashlib

    assert shortened == f"{full[:40]}-{hashlib.sha256(full.encode()).hexdigest()[:12]}"
    assert len(shortened) == 53
    assert shorten_name("x" * 53) == "x" * 53


RELEASE = {
    "name": "podinfo",
    "namespace": "apps",
    "version": 2,
    "info": {"status": "deployed", "description": "Upgrade complete"},
    "chart": {"metadata": {"name": "podinfo", "version": "6.6.1", "appVersion": "6.6.1"}},
    "config": {"replicaCount": 2},
    "manifest": charts.PODINFO,
    "hooks": [
        {
            "name": "podinfo-grpc-test-x",
            "kind": "Pod",
            "path": "podinfo/templates/tests/grpc.yaml",
            "manifest": "apiVersion: v1\nkind: Pod\n",
            "events": ["test"],
            "last_run": {"phase": "Succeeded"},
            "weight": 0,
            "delete_policies": ["before-hook-creation"],
        },
        {"name": "pre", "kind": "Job", "path": "p", "manifest": "", "events": ["pre-install"]},
    ],
}


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "plain-json (old Helm)"])
def test_release_payloads_decode(compress: bool) -> None:
    payload = encode_release(RELEASE, compress=compress)
    assert (base64.b64decode(payload)[:3] == b"\x1f\x8b\x08") is compress
    assert decode_release(payload) == RELEASE
    secret = {
        "metadata": {"name": "sh.helm.release.v1.podinfo.v2", "namespace": "apps"},
        "data": {"release": base64.b64encode(payload.encode()).decode()},
    }
    record = HelmReleaseRecord.from_secret(secret)
    assert (record.name, record.namespace, record.version, record.status) == (
        "podinfo",
        "apps",
        2,
        "deployed",
    )
    assert (record.chart.name, record.chart.version, record.chart.app_version) == (
        "podinfo",
        "6.6.1",
        "6.6.1",
    )
    assert record.manifest == charts.PODINFO
    assert record.config == {"replicaCount": 2}
    assert [h.name for h in record.test_hooks] == ["podinfo-grpc-test-x"]
    assert record.hooks[0].last_run == {"phase": "Succeeded"}
    assert record.hooks[0].delete_policies == ("before-hook-creation",)
    assert record.secret == "apps/sh.helm.release.v1.podinfo.v2"


def test_bad_release_payloads_say_what_is_wrong() -> None:
    with pytest.raises(ReleaseDecodeError, match="not base64"):
        decode_release("%%%")
    with pytest.raises(ReleaseDecodeError, match="not valid gzip"):
        decode_release(base64.b64encode(b"\x1f\x8b\x08garbage"))
    with pytest.raises(ReleaseDecodeError, match="not JSON"):
        decode_release(base64.b64encode(gzip.compress(b"{nope")))
    with pytest.raises(ReleaseDecodeError, match=r"has no data\.release"):
        HelmReleaseRecord.from_secret({"metadata": {"name": "x", "namespace": "y"}, "data": {}})


def test_the_latest_deployed_revision_is_picked() -> None:
    def secret(version: int, status: str, release: str = "web") -> dict:
        labels = {"owner": "helm", "name": release, "status": status, "version": str(version)}
        return {"metadata": {"name": f"sh.helm.release.v1.{release}.v{version}", "labels": labels}}

    secrets = [
        secret(9, "superseded"),
        secret(10, "deployed"),
        secret(11, "failed"),
        secret(12, "deployed", "web-other"),
    ]
    assert pick_latest(secrets, "web")["metadata"]["name"] == "sh.helm.release.v1.web.v10"
    assert pick_latest(secrets, "web", None)["metadata"]["name"] == "sh.helm.release.v1.web.v11"
    assert pick_latest(secrets[:1], "web") is None


# --- selectors, the command, merging -----------------------------------------------------------


def test_label_selectors_parse_like_kubectl() -> None:
    sel = parse_selector("app=web, tier!=cache,env in (prod, staging),!legacy,team")
    labels = {"app": "web", "env": "prod", "team": "a"}
    assert sel.matches(labels)
    assert not sel.matches({**labels, "legacy": "1"})
    assert not sel.matches({**labels, "env": "dev"})
    assert not sel.matches({**labels, "tier": "cache"})
    assert [k for k, _ in sel.lightkube()] == ["app", "tier", "env", "legacy", "team"]
    with pytest.raises(UsageError, match="cannot parse"):
        parse_selector("app=(")


def test_manifests_are_filtered_by_selector() -> None:
    discovery = discover_suite(
        DiscoverRequest(files=["-"], stdin_text=charts.ALL, selector="app=greeter")
    )
    # the greeter objects carry no metadata labels; pod template labels do not count
    assert discovery.checks == []
    labelled = charts.GREETER.replace(
        "metadata:\n  name: greeter\n", "metadata:\n  name: greeter\n  labels: {team: g}\n"
    )
    discovery = discover_suite(DiscoverRequest(files=["-"], stdin_text=labelled, selector="team"))
    assert [c.name for c in discovery.checks] == [
        "greeter-readiness",
        "greeter-liveness",
        "greeter-port-metrics",
    ]


def test_discover_command_reads_manifests_from_stdin(tmp_path: Path) -> None:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "smokegate", "discover", "-f", "-", "-n", "shop"],
        input=charts.PODINFO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "- name: podinfo-port-http\n" in proc.stdout
    assert "host: podinfo.shop.svc.cluster.local\n" in proc.stdout
    assert proc.stderr.startswith("smokegate: discovered 4 checks from stdin; 2 not checkable")
    proc = subprocess.run(
        [sys.executable, "-m", "smokegate", "discover", "-f", "-", "-o", "json"],
        input=charts.PODINFO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    data = json.loads(proc.stdout)
    assert data["suite"]["kind"] == "Suite"
    assert [n["origin"] for n in data["notChecked"]] == [
        "Deployment/podinfo container podinfo readinessProbe",
        "Deployment/podinfo container podinfo livenessProbe",
    ]


def test_discover_needs_something_to_discover() -> None:
    with pytest.raises(UsageError, match="say what to discover"):
        discover_suite(DiscoverRequest())
    with pytest.raises(UsageError, match="not valid YAML"):
        discover_suite(DiscoverRequest(files=["-"], stdin_text="a: [b"))


def test_user_checks_win_on_name_clashes(tmp_path: Path) -> None:
    user = write_suite(
        tmp_path,
        """
        - name: podinfo-port-http
          tcp: {host: 127.0.0.1, port: 1}
        """,
        name="mine",
    )
    discovery = discover_suite(DiscoverRequest(files=["-"], stdin_text=charts.PODINFO))
    suites = merge_discovered(parse_suites([str(user)]), discovery)
    assert suites[0].doc.file == str(user)
    plan = plan_suites(suites, lint=True)
    ids = [c.id for c in plan.checks]
    assert ids == [
        "mine/podinfo-port-http",
        "discovered/podinfo-port-grpc",
        "discovered/ingress-podinfo-podinfo.example.com",
        "discovered/ingress-podinfo-podinfo-internal.example.com-api",
    ]


def test_collect_reports_unreadable_objects() -> None:
    bad = textwrap.dedent(
        """
        apiVersion: v1
        kind: Service
        metadata: {name: broken}
        spec:
          ports: [{name: x, port: not-a-number}]
        """
    )
    _, skipped = discover(bad)
    assert skipped[0].origin == "Service/broken"
    assert skipped[0].reason == (
        "cannot read it: spec.ports[0].port: expected a number, got a string ('not-a-number')"
    )


def test_discovered_suite_alone_needs_no_user_suite() -> None:
    """Merged in memory: no file is written, the suite is named after the discovery."""
    discovery = discover_suite(DiscoverRequest(files=["-"], stdin_text=charts.PODINFO))
    suites = merge_discovered([], discovery)
    assert len(suites) == 1 and suites[0].doc.file == "<discovered>"
    names = [c.name for c in plan_suites(suites, lint=True).checks]
    assert names == [c.name for c in discovery.checks]


def test_merging_with_a_suite_read_from_stdin_by_the_caller() -> None:
    """The gate reads stdin before it waits and parses it then; discovery joins later."""
    user = (
        "apiVersion: smokegate.io/v1\nkind: Suite\nmetadata: {name: mine}\nspec:\n  checks:\n"
        "    - {name: podinfo-port-grpc, tcp: {host: 127.0.0.1, port: 1}}\n"
    )
    discovery = discover_suite(DiscoverRequest(files=["-"], stdin_text=charts.PODINFO))
    suites = merge_discovered(parse_suites(["-"], stdin_text=user), discovery)
    assert suites[0].doc.file == "-"
    ids = [c.id for c in plan_suites(suites, lint=True).checks]
    assert ids[0] == "mine/podinfo-port-grpc"
    assert "discovered/podinfo-port-grpc" not in ids
    assert "discovered/podinfo-port-http" in ids


def test_a_user_suite_named_like_the_discovered_one_is_a_suite_error(tmp_path: Path) -> None:
    user = write_suite(tmp_path, "- {name: x, tcp: {host: 127.0.0.1, port: 1}}", name="discovered")
    discovery = discover_suite(DiscoverRequest(files=["-"], stdin_text=charts.PODINFO))
    with pytest.raises(SuiteError) as caught:
        merge_discovered(parse_suites([str(user)]), discovery)
    (problem,) = caught.value.problems
    assert problem.file == str(user) and problem.line is not None
    assert "duplicate suite name 'discovered' (also the discovered suite)" in problem.message


# --- malformed manifests: a clear message, exit 2, never a traceback --------------------------

SERVICE = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n"
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: %s
"""


def discover_file(tmp_path: Path, content: str | bytes, *args: str) -> tuple[int, str, str]:
    path = tmp_path / "manifests.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    r = run_cli("discover", "-f", str(path), *args)
    assert "Traceback" not in r.text, r.text
    return r.code, r.out, r.err.strip()


def test_a_list_where_an_object_is_expected(tmp_path: Path) -> None:
    listed = "- apiVersion: v1\n  kind: Service\n  metadata: {name: db}\n"
    code, out, err = discover_file(tmp_path, f"{SERVICE}---\n{listed}")
    assert code == 2 and out == ""
    assert err == (
        f"smokegate: {tmp_path}/manifests.yaml, document 2: expected a Kubernetes object "
        "(a mapping with apiVersion and kind), got a list (one object per `---` document, or "
        "kind: List)"
    )
    # Deeper down: a list where a mapping belongs, named by its path.
    code, _, err = discover_file(tmp_path, DEPLOYMENT % "[{name: api, ports: [[8080]]}]")
    assert code == 2
    assert err == (
        f"smokegate: cannot derive checks from these manifests: {tmp_path}/manifests.yaml, "
        "document 1 (Deployment/api): spec.template.spec.containers[0].ports[0]: expected a "
        "mapping, got a list"
    )


def test_containers_as_a_string(tmp_path: Path) -> None:
    text = f"{SERVICE}---\n# a comment\n---\n{DEPLOYMENT % 'api:1.0'}"
    code, out, err = discover_file(tmp_path, text)
    assert code == 2 and out == ""
    assert err == (
        f"smokegate: cannot derive checks from these manifests: {tmp_path}/manifests.yaml, "
        "document 3 (Deployment/api): spec.template.spec.containers: expected a list, got a "
        "string ('api:1.0')"
    )
    # Every unreadable object is listed, not just the first.
    bad_probe = "[{name: api, readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: x}}]"
    text = f"{DEPLOYMENT % bad_probe}---\napiVersion: v1\nkind: Service\nmetadata: {{name: s}}\n"
    code, _, err = discover_file(tmp_path, text + "spec: {ports: [{name: http}]}\n")
    assert code == 2
    assert err.splitlines()[1:] == [
        f"  {tmp_path}/manifests.yaml, document 1 (Deployment/api): spec.template.spec."
        "containers[0].readinessProbe.periodSeconds: expected a number, got a string ('x')",
        f"  {tmp_path}/manifests.yaml, document 2 (Service/s): spec.ports[0].port: missing "
        "(a number is required)",
    ]


def test_yaml_syntax_errors_say_where(tmp_path: Path) -> None:
    code, out, err = discover_file(tmp_path, f"{SERVICE}---\nkind: Service\nmetadata: {{name: x\n")
    assert code == 2 and out == ""
    assert err.startswith(f"smokegate: {tmp_path}/manifests.yaml:8:1: not valid YAML: ")
    assert "\n" not in err and "unicode string" not in err


def test_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    latin1 = SERVICE.replace("name: web", "name: caf\xe9").encode("latin-1")
    code, out, err = discover_file(tmp_path, latin1)
    assert code == 2 and out == ""
    assert err == (
        f"smokegate: {tmp_path}/manifests.yaml:3:21: not UTF-8 text (byte 0xe9); manifests "
        "must be UTF-8 YAML"
    )
    # The same on stdin (bytes: what a pipe gives).
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "smokegate", "discover", "-f", "-"],
        input=latin1,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.decode().strip() == (
        "smokegate: stdin:3:21: not UTF-8 text (byte 0xe9); manifests must be UTF-8 YAML"
    )


def test_live_objects_that_cannot_be_read_are_listed_not_fatal() -> None:
    """From a cluster (a release's manifest), one odd object does not stop discovery."""
    text = charts.PODINFO + "---\n" + DEPLOYMENT % "oops"
    checks, skipped = discover(text)
    assert checks  # podinfo's checks are still derived
    assert skipped[-1].origin == "Deployment/api"
    assert skipped[-1].reason == (
        "cannot read it: spec.template.spec.containers: expected a list, got a string ('oops')"
    )
