"""Discovery read exactly as Kubernetes reads the objects (issue 17, rules 9-12): which Service
ports a pod can serve, when two probes are one check, probes the kubelet dials from the node,
and one probe check per Service port a client can take.

Tables of manifests written from the upstream function each test's docstring names, through
``build_checks`` (pure); then ``smokegate discover -f`` end to end. The same manifests are read
from a real apiserver in tests/kube/discover/test_discovery_rules_cluster.py.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from smokegate.discover import build as build_mod
from smokegate.discover.build import build_checks
from smokegate.discover.manifests import load_manifests
from smokegate.discover.objects import collect
from tests.helpers import run_cli


@pytest.fixture(autouse=True)
def grpc_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build_mod, "grpc_available", lambda: True)


def deployment(containers: str, *, init: str = "", name: str = "web", labels: str = "app: web"):
    init_block = f"      initContainers:\n{textwrap.indent(init, '        ')}" if init else ""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  selector: {{matchLabels: {{{labels}}}}}
  template:
    metadata: {{labels: {{{labels}}}}}
    spec:
{init_block}      containers:
{textwrap.indent(containers, "        ")}"""


def service(name: str, ports: str, *, selector: str | None = "{app: web}", extra: str = "") -> str:
    lines = [f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}{extra}}}\nspec:"]
    if selector is not None:
        lines.append(f"  selector: {selector}")
    lines.append(f"  ports: {ports}")
    return "\n".join(lines) + "\n"


def discover(*docs: str, ns: str = "apps") -> tuple[list[Any], list[tuple[str, str]]]:
    checks, skipped = build_checks(collect(load_manifests("\n---\n".join(docs)), ns))
    return checks, [(s.origin, s.reason) for s in skipped]


WEB = """\
- name: web
  ports:
    - {name: http, containerPort: 8080}
    - {name: dns, containerPort: 5353, protocol: UDP}
"""


# --- rule 9: Service ports no pod can serve ----------------------------------------------------

UNSERVED = [
    (
        "no selector",
        service("ext", "[{port: 5432}]", selector=None),
        "no selector: Kubernetes manages no endpoints for it (they are written by hand or by "
        "another controller): no pod of the release serves it",
    ),
    (
        "empty selector",
        service("ext", "[{port: 5432}]", selector="{}"),
        "no selector: Kubernetes manages no endpoints for it",
    ),
    (
        "selector matching no pod template",
        service("ext", "[{port: 80, targetPort: 8080}]", selector="{app: api}"),
        "its selector app=api matches the pod template of no workload: no pod of the release "
        "serves it",
    ),
    (
        "another namespace",
        service("ext", "[{port: 80, targetPort: 8080}]", extra=", namespace: other"),
        "it is in namespace other, and a Service selects pods of its own namespace only; its "
        "selector app=web matches Deployment/web in namespace apps",
    ),
    (
        "named targetPort no container declares",
        service("ext", "[{port: 80, targetPort: web}]"),
        "targetPort 'web' is not a container port name of Deployment/web (its named ports: "
        "http=8080, dns=5353): no pod of the release serves it",
    ),
    (
        "name with another protocol",
        service("ext", "[{port: 53, targetPort: dns}]"),
        "targetPort 'dns' names a UDP port of container 'web' of Deployment/web, not a TCP one "
        "(FindPort needs the name and the protocol to match)",
    ),
    (
        "port named only in a plain init container",
        service("ext", "[{port: 9000, targetPort: setup}]"),
        "targetPort 'setup' is declared only by init container 'migrate' of Deployment/web, "
        "which runs to completion before the pod serves",
    ),
]


@pytest.mark.parametrize(("svc", "reason"), [u[1:] for u in UNSERVED], ids=[u[0] for u in UNSERVED])
def test_rule9_service_ports_no_pod_can_serve_are_listed_never_checked(svc: str, reason: str):
    """kubernetes ``pkg/controller/endpointslice/endpointslice_controller.go`` ``syncService``
    (a Service without a selector gets no EndpointSlices; pods are listed in the Service's own
    namespace by its selector; ``selector: {}`` is stored as no selector) and
    ``pkg/api/v1/pod/util.go`` ``FindPort`` (a named ``targetPort`` needs a port of that name
    *and* protocol in the containers or ``restartPolicy: Always`` init containers). Such a port
    gets no check: it is listed as not checked, with the reason."""
    web = deployment(WEB, init="- name: migrate\n  ports: [{name: setup, containerPort: 9000}]\n")
    checks, skipped = discover(web, svc)
    assert [c.name for c in checks] == []  # never a tcp check
    assert len(skipped) == 1
    origin, why = skipped[0]
    assert origin.startswith("Service/ext port ")
    assert reason in why


def test_rule9_a_port_a_pod_serves_is_still_checked_next_to_one_none_serves() -> None:
    """``FindPort`` per Service port: the served port of the same Service keeps its tcp check."""
    checks, skipped = discover(
        deployment(WEB),
        service(
            "web",
            "[{name: http, port: 80, targetPort: http}, {name: x, port: 81, targetPort: nope}]",
        ),
    )
    assert [(c.name, c.spec) for c in checks] == [
        ("web-port-http", {"host": "web.apps.svc.cluster.local", "port": 80})
    ]
    assert [o for o, _ in skipped] == ["Service/web port x"]


# --- rule 10: probes are merged only when the checks would be equal ----------------------------

HTTP = "httpGet: {path: /healthz, port: http}"

MERGING = [
    # (readiness, liveness, check names, their retry budgets)
    ("same action, default timing", f"{{{HTTP}}}", f"{{{HTTP}}}", ["web-readiness"], [(3, "10s")]),
    (
        "explicit defaults equal omitted ones",
        f"{{{HTTP}}}",
        "{httpGet: {path: /healthz, port: 8080, scheme: HTTP}, timeoutSeconds: 1, "
        "periodSeconds: 10, failureThreshold: 3, successThreshold: 1}",
        ["web-readiness"],
        [(3, "10s")],
    ),
    (
        "path defaults to /",
        "{httpGet: {port: http}}",
        "{httpGet: {path: /, port: http}}",
        ["web-readiness"],
        [(3, "10s")],
    ),
    (
        "initialDelaySeconds does not change the check",
        f"{{{HTTP}, initialDelaySeconds: 5}}",
        f"{{{HTTP}}}",
        ["web-readiness"],
        [(3, "10s")],
    ),
    (
        "failureThreshold differs",
        f"{{{HTTP}}}",
        f"{{{HTTP}, failureThreshold: 5}}",
        ["web-readiness", "web-liveness"],
        [(3, "10s"), (5, "10s")],
    ),
    (
        "periodSeconds differs",
        f"{{{HTTP}, periodSeconds: 5}}",
        f"{{{HTTP}}}",
        ["web-readiness", "web-liveness"],
        [(3, "5s"), (3, "10s")],
    ),
    (
        "timeoutSeconds differs",
        f"{{{HTTP}, timeoutSeconds: 3}}",
        f"{{{HTTP}}}",
        ["web-readiness", "web-liveness"],
        [(3, "10s"), (3, "10s")],
    ),
]


@pytest.mark.parametrize(
    ("readiness", "liveness", "names", "budgets"),
    [m[1:] for m in MERGING],
    ids=[m[0] for m in MERGING],
)
def test_rule10_probes_merge_only_when_everything_but_the_origin_is_equal(
    readiness: str, liveness: str, names: list[str], budgets: list[tuple[int, str]]
) -> None:
    """kubernetes ``pkg/apis/core/v1/defaults.go`` ``SetDefaults_Probe`` (timeoutSeconds 1,
    periodSeconds 10, failureThreshold 3) and ``SetDefaults_HTTPGetAction`` (path ``/``, scheme
    ``HTTP``) are applied first; two probes are one check only when request *and* timing are
    equal; otherwise each is a check with its own timing."""
    container = (
        "- name: web\n  ports: [{name: http, containerPort: 8080}]\n"
        f"  readinessProbe: {readiness}\n  livenessProbe: {liveness}\n"
    )
    checks, skipped = discover(
        deployment(container), service("web", "[{name: http, port: 80, targetPort: http}]")
    )
    assert skipped == []
    assert [c.name for c in checks] == names
    assert [
        (c.timing["retry"]["attempts"], c.timing["retry"]["interval"]) for c in checks
    ] == budgets
    assert all(c.spec["url"].startswith("http://web.apps.svc.cluster.local:80/") for c in checks)
    if len(checks) == 1:
        assert checks[0].origin == "Deployment/web container web readinessProbe, livenessProbe"
    else:
        assert [c.origin.rsplit(" ", 1)[1] for c in checks] == ["readinessProbe", "livenessProbe"]
        if "timeoutSeconds" in readiness:
            assert [c.timing["timeout"] for c in checks] == ["3s", "1s"]


def test_rule10_three_probes_two_equal() -> None:
    """``SetDefaults_Probe``: startup and liveness equal after defaults are one check (named
    after the first field, readiness-startup-liveness order); readiness differs: its own."""
    container = f"""\
- name: web
  ports: [{{name: http, containerPort: 8080}}]
  readinessProbe: {{{HTTP}, periodSeconds: 2}}
  startupProbe: {{{HTTP}, failureThreshold: 3}}
  livenessProbe: {{{HTTP}}}
"""
    checks, _ = discover(
        deployment(container), service("web", "[{name: http, port: 80, targetPort: http}]")
    )
    assert [(c.name, c.origin.split(" web ")[-1]) for c in checks] == [
        ("web-readiness", "readinessProbe"),
        ("web-startup", "startupProbe, livenessProbe"),
    ]


# --- rule 11: a probe host is the node's business ------------------------------------------------

HOSTS = [
    (
        "loopback on hostNetwork",
        "httpGet: {host: 127.0.0.1, path: /healthz, port: 10256}",
        "httpGet.host '127.0.0.1'",
    ),
    (
        "a name",
        "httpGet: {host: status.example.net, path: /, port: 8080}",
        "httpGet.host 'status.example.net'",
    ),
    ("tcpSocket", "tcpSocket: {host: 10.0.0.1, port: 8080}", "tcpSocket.host '10.0.0.1'"),
]


@pytest.mark.parametrize(("probe", "fragment"), [h[1:] for h in HOSTS], ids=[h[0] for h in HOSTS])
def test_rule11_a_probe_with_an_explicit_host_is_not_checkable(probe: str, fragment: str) -> None:
    """kubernetes ``pkg/probe/http/request.go`` ``NewRequestForHTTPGetAction`` (``httpGet.host``,
    else the pod IP; the kubelet's TCP prober does the same with ``tcpSocket.host``): the
    kubelet dials that address from the pod's node. smokegate runs elsewhere, so it lists the
    probe as not checkable and never connects to that address (its own loopback, for one)."""
    container = (
        "- name: proxy\n  ports: [{name: http, containerPort: 8080}]\n"
        f"  readinessProbe: {{{probe}}}\n"
    )
    web = deployment(container, name="proxy").replace(
        "    spec:\n", "    spec:\n      hostNetwork: true\n"
    )
    checks, skipped = discover(web, service("proxy", "[{port: 8080}]"))
    host = probe.split("host: ")[1].split(",")[0]
    assert not any(host in json.dumps(c.spec) for c in checks)
    assert skipped[0][0] == "Deployment/proxy container proxy readinessProbe"
    assert skipped[0][1].startswith(fragment + ": the kubelet connects to it from the pod's node")
    # The Service port is still checked on its own (no probe check went through it).
    assert [c.name for c in checks] == ["proxy-port-8080"]


# --- rule 12: one probe check per exposing Service port --------------------------------

PROBED = (
    f"- name: web\n  ports: [{{name: http, containerPort: 8080}}]\n  readinessProbe: {{{HTTP}}}\n"
)
SVC = "apps.svc.cluster.local"

ROUTES = [
    (
        "one Service port: the plain name",
        [service("web", "[{name: http, port: 80, targetPort: http}]")],
        [("web-readiness", f"http://web.{SVC}:80/healthz")],
    ),
    (
        "two Services",
        [
            service("web", "[{name: http, port: 80, targetPort: http}]"),
            service("web-alt", "[{port: 8080}]"),
        ],
        [
            ("web-readiness", f"http://web.{SVC}:80/healthz"),
            ("web-readiness[service=web-alt:8080]", f"http://web-alt.{SVC}:8080/healthz"),
        ],
    ),
    (
        "one Service, two ports to the same target",
        [
            service(
                "web",
                "[{name: http, port: 80, targetPort: http},"
                " {name: alt, port: 8000, targetPort: 8080}]",
            )
        ],
        [
            ("web-readiness", f"http://web.{SVC}:80/healthz"),
            ("web-readiness[service=web:alt]", f"http://web.{SVC}:8000/healthz"),
        ],
    ),
    (
        "headless listed first: proxied keeps the plain name",
        [
            service("web-hl", "[{name: http, port: 80, targetPort: http}]", extra="").replace(
                "spec:", "spec:\n  clusterIP: None"
            ),
            service("web", "[{name: http, port: 80, targetPort: http}]"),
        ],
        [
            ("web-readiness", f"http://web.{SVC}:80/healthz"),
            ("web-readiness[service=web-hl:http]", f"http://web-hl.{SVC}:8080/healthz"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("services", "expected"), [r[1:] for r in ROUTES], ids=[r[0] for r in ROUTES]
)
def test_rule12_one_probe_check_per_exposing_service_port(
    services: list[str], expected: list[tuple[str, str]]
) -> None:
    """kubernetes ``pkg/api/v1/pod/util.go`` ``FindPort`` run for every Service port that
    selects the pods: each one whose target is the probed port is a path a client can take, so
    each gets the probe's check (a headless one at the container port: not proxied). The first
    route (proxied before headless, then manifest order) keeps the plain name; the others add
    ``[service=NAME:PORT]``. No tcp check is added for a port a probe check went through."""
    checks, skipped = discover(deployment(PROBED), *services)
    assert [(c.name, c.spec["url"]) for c in checks] == expected
    assert skipped == []
    assert all(c.timing == checks[0].timing for c in checks)  # the probe's own budget, each
    # Deterministic: the same objects give the same names, run after run.
    assert [c.name for c in discover(deployment(PROBED), *services)[0]] == [n for n, _ in expected]


# --- end to end: smokegate discover -f --------------------------------------------------------

RELEASE = "\n---\n".join(
    [
        deployment(
            WEB.replace("- name: web\n", "- name: web\n")
            + "  readinessProbe: {httpGet: {path: /ready, port: http}, periodSeconds: 5}\n"
            + "  livenessProbe: {httpGet: {path: /ready, port: 8080}}\n",
            init="- name: migrate\n  ports: [{name: setup, containerPort: 9000}]\n",
        ),
        deployment(
            "- name: proxy\n  ports: [{name: admin, containerPort: 10256}]\n"
            "  livenessProbe: {httpGet: {host: 127.0.0.1, path: /healthz, port: admin}}\n",
            name="proxy",
            labels="app: proxy",
        ),
        service(
            "web",
            "[{name: http, port: 80, targetPort: http},"
            " {name: setup, port: 9000, targetPort: setup}]",
        ),
        service("web-direct", "[{name: direct, port: 8080}]"),
        service("db-external", "[{name: pg, port: 5432}]", selector=None),
    ]
)


def test_discover_command_applies_the_rules_end_to_end(tmp_path: Path) -> None:
    """``smokegate discover -f`` on one release with every rule in play: the YAML suite holds
    the probe checks (rule 10: readiness and liveness differ in periodSeconds; rule 12: each
    through both Services), and its "Not checked" section (the same list ``-o json`` gives as
    ``notChecked``) lists the probe with a host (rule 11) and the ports no pod serves (rule 9)."""
    manifests = tmp_path / "release.yaml"
    manifests.write_text(RELEASE)
    r = run_cli("discover", "-f", str(manifests), "-n", "shop")
    assert r.code == 0, r.text
    names = [line.split("- name: ")[1] for line in r.out.splitlines() if "- name: " in line]
    assert names == [
        "web-readiness",
        "web-readiness[service=web-direct:direct]",
        "web-liveness",
        "web-liveness[service=web-direct:direct]",
    ]
    assert "# from Deployment/web container web livenessProbe\n" in r.out
    assert "    # via Service web-direct port direct (8080 -> container port 8080)\n" in r.out
    assert "127.0.0.1" not in r.out.split("# Not checked")[0]
    tail = r.out.split("# Not checked (3):\n")[1]
    assert "# - Deployment/proxy container proxy livenessProbe: httpGet.host '127.0.0.1':" in tail
    assert (
        "# - Service/web port setup: targetPort 'setup' is declared only by init container" in tail
    )
    assert "# - Service/db-external port pg: no selector:" in tail
    assert r.err.startswith("smokegate: discovered 4 checks from ")
    assert "3 not checkable" in r.err

    as_json = run_cli("discover", "-f", str(manifests), "-n", "shop", "-o", "json")
    data = json.loads(as_json.out)
    assert [n["origin"] for n in data["notChecked"]] == [
        "Deployment/proxy container proxy livenessProbe",
        "Service/web port setup",
        "Service/db-external port pg",
    ]
    # The suite loads and lints: the names are valid check names.
    suite = tmp_path / "discovered.yaml"
    suite.write_text(r.out)
    lint = run_cli("lint", str(suite))
    assert lint.code == 0, lint.text
