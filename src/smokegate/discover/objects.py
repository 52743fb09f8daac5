"""The Kubernetes objects discovery reads, parsed from rendered manifests or API objects into
small typed views: workloads (their pod template's containers, ports and probes), Services
and Ingresses. Everything else in a release is ignored.

Fields the API server would default are defaulted here the same way (``protocol: TCP``, probe
``periodSeconds: 10`` …), so rendered manifests (``helm template``) and live objects give the
same result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smokegate.errors import UsageError

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
PROBE_FIELDS = ("readinessProbe", "startupProbe", "livenessProbe")
"""The order checks are derived in: readiness is what "ready to serve" means."""


@dataclass(frozen=True, slots=True)
class ContainerPort:
    port: int
    name: str | None = None
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class Container:
    name: str
    ports: tuple[ContainerPort, ...] = ()
    probes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """``readinessProbe``/``startupProbe``/``livenessProbe`` -> the probe, when set."""
    sidecar: bool = False
    """A native sidecar: an init container with ``restartPolicy: Always``."""


@dataclass(frozen=True, slots=True)
class Workload:
    kind: str
    name: str
    namespace: str
    pod_labels: Mapping[str, str]
    containers: tuple[Container, ...]
    """Regular containers, in order."""
    sidecars: tuple[Container, ...] = ()
    """Native sidecar init containers, in order (plain init containers never serve)."""
    selector: Mapping[str, str] = field(default_factory=dict)
    """``spec.selector.matchLabels`` (finds the pods with ``--via pods``)."""

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def all_containers(self) -> tuple[Container, ...]:
        return self.containers + self.sidecars


@dataclass(frozen=True, slots=True)
class ServicePort:
    port: int
    name: str | None = None
    target_port: int | str | None = None
    """As written: a number, a container port name, or unset (= ``port``)."""
    protocol: str = "TCP"
    app_protocol: str | None = None

    @property
    def label(self) -> str:
        return self.name or str(self.port)


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    namespace: str
    selector: Mapping[str, str]
    """Empty: selects no pods (its Endpoints are managed by hand, or it has none)."""
    ports: tuple[ServicePort, ...]
    headless: bool = False
    type: str = "ClusterIP"

    @property
    def ref(self) -> str:
        return f"Service/{self.name}"

    def selects(self, workload: Workload) -> bool:
        """Does this Service's selector pick the workload's pods? A Service with no selector (or
        ``selector: {}``) selects nothing: Kubernetes manages no Endpoints for it."""
        if not self.selector or workload.namespace != self.namespace:
            return False
        return all(workload.pod_labels.get(k) == v for k, v in self.selector.items())


@dataclass(frozen=True, slots=True)
class IngressPath:
    host: str | None
    path: str
    tls: bool
    service: str | None
    service_port: int | str | None


@dataclass(frozen=True, slots=True)
class Ingress:
    name: str
    namespace: str
    paths: tuple[IngressPath, ...]

    @property
    def ref(self) -> str:
        return f"Ingress/{self.name}"


@dataclass(slots=True)
class Objects:
    workloads: list[Workload] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    ingresses: list[Ingress] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Objects that could not be read (malformed ports and the like), in words."""

    def __bool__(self) -> bool:
        return bool(self.workloads or self.services or self.ingresses)


# --- reading manifests -------------------------------------------------------------------------


def load_manifests(text: str, source: str = "manifests") -> list[dict[str, Any]]:
    """``---``-separated YAML (``helm template`` output, a release's ``manifest``, ``kubectl get
    -o yaml``) -> object dicts. ``List`` kinds are flattened; empty documents are skipped."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="safe", pure=True)
    try:
        docs = list(yaml.load_all(text))
    except YAMLError as exc:
        raise UsageError(f"{source}: not valid YAML: {exc}") from None
    out: list[dict[str, Any]] = []
    for doc in docs:
        if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List"):
            out.extend(item for item in doc.get("items") or () if isinstance(item, dict))
        elif isinstance(doc, dict):
            out.append(doc)
    return out


def collect(raw: Iterable[Mapping[str, Any]], default_namespace: str) -> Objects:
    """Typed views of the objects discovery uses. Objects without a namespace get
    ``default_namespace``, as Helm and kubectl apply them to the release's namespace."""
    found = Objects()
    for obj in raw:
        kind = obj.get("kind")
        meta = obj.get("metadata") or {}
        name = str(meta.get("name") or "")
        ns = str(meta.get("namespace") or default_namespace)
        try:
            if kind in WORKLOAD_KINDS:
                found.workloads.append(_workload(str(kind), name, ns, obj.get("spec") or {}))
            elif kind == "Service":
                found.services.append(_service(name, ns, obj.get("spec") or {}))
            elif kind == "Ingress":
                found.ingresses.append(_ingress(name, ns, obj.get("spec") or {}))
        except (TypeError, ValueError, AttributeError) as exc:
            found.problems.append(f"{kind}/{name}: cannot read it: {exc}")
    return found


def _int_or_str(value: Any) -> int | str | None:
    # IntOrString: YAML numbers are ints; "8080" in quotes stays a string, as the API keeps it.
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"port {value!r} is neither a number nor a name")
    return value if isinstance(value, int) else str(value)


def _container(c: Mapping[str, Any], *, sidecar: bool = False) -> Container:
    ports = tuple(
        ContainerPort(int(p["containerPort"]), p.get("name") or None, p.get("protocol") or "TCP")
        for p in c.get("ports") or ()
        if p.get("containerPort") is not None
    )
    probes = {f: c[f] for f in PROBE_FIELDS if isinstance(c.get(f), Mapping)}
    return Container(str(c.get("name") or ""), ports, probes, sidecar)


def _workload(kind: str, name: str, ns: str, spec: Mapping[str, Any]) -> Workload:
    template = spec.get("template") or {}
    pod = template.get("spec") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    containers = tuple(_container(c) for c in pod.get("containers") or ())
    sidecars = tuple(
        _container(c, sidecar=True)
        for c in pod.get("initContainers") or ()
        if c.get("restartPolicy") == "Always"
    )
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    return Workload(
        kind,
        name,
        ns,
        {str(k): str(v) for k, v in labels.items()},
        containers,
        sidecars,
        {str(k): str(v) for k, v in selector.items()},
    )


def _service(name: str, ns: str, spec: Mapping[str, Any]) -> Service:
    ports = tuple(
        ServicePort(
            int(p["port"]),
            p.get("name") or None,
            _int_or_str(p.get("targetPort")),
            p.get("protocol") or "TCP",
            p.get("appProtocol"),
        )
        for p in spec.get("ports") or ()
    )
    selector = spec.get("selector") or {}
    return Service(
        name,
        ns,
        {str(k): str(v) for k, v in selector.items()},
        ports,
        headless=spec.get("clusterIP") == "None",
        type=str(spec.get("type") or "ClusterIP"),
    )


def _ingress(name: str, ns: str, spec: Mapping[str, Any]) -> Ingress:
    tls_hosts: set[str] = set()
    tls_all = False
    for entry in spec.get("tls") or ():
        hosts = entry.get("hosts") or []
        tls_hosts.update(hosts)
        # A tls entry without hosts covers the controller's default (wildcard) host.
        tls_all = tls_all or not hosts
    paths: list[IngressPath] = []
    for rule in spec.get("rules") or ():
        host = rule.get("host") or None
        tls = tls_all or (host is not None and host in tls_hosts)
        for p in (rule.get("http") or {}).get("paths") or ():
            svc, port = _backend(p.get("backend") or {})
            paths.append(IngressPath(host, p.get("path") or "/", tls, svc, port))
    return Ingress(name, ns, tuple(paths))


def _backend(backend: Mapping[str, Any]) -> tuple[str | None, int | str | None]:
    service = backend.get("service")
    if isinstance(service, Mapping):  # networking.k8s.io/v1
        port = service.get("port") or {}
        return service.get("name"), port.get("number") or port.get("name")
    # extensions/v1beta1 and networking.k8s.io/v1beta1 (older charts, older clusters)
    return backend.get("serviceName"), _int_or_str(backend.get("servicePort"))
