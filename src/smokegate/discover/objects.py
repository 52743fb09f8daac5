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

from smokegate.core.errors import UsageError

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
    init_containers: tuple[Container, ...] = ()
    """Plain init containers (they run to completion first and never serve): only read to say
    why a Service port naming one of their ports has no endpoint."""

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


@dataclass(frozen=True, slots=True)
class ObjectProblem:
    """A workload, Service or Ingress that cannot be read: which one, where it was written,
    the field that is wrong and how."""

    ref: str
    """``Deployment/web`` (``Deployment/?`` when the name itself cannot be read)."""
    where: str | None
    """``manifests.yaml, document 2``: where the object was read from, when known."""
    path: str
    """``spec.template.spec.containers``: the field that is wrong."""
    message: str

    def __str__(self) -> str:
        origin = f"{self.where} ({self.ref})" if self.where else self.ref
        return f"{origin}: {self.path}: {self.message}"


@dataclass(slots=True)
class Objects:
    workloads: list[Workload] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    ingresses: list[Ingress] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Objects that could not be read (malformed ports and the like), in words."""
    errors: list[ObjectProblem] = field(default_factory=list)
    """The same, structured (``problems`` is what the discovered suite lists)."""

    def __bool__(self) -> bool:
        return bool(self.workloads or self.services or self.ingresses)


class ManifestError(ValueError):
    """A field of an object that does not have the shape Kubernetes gives it."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class Manifest(dict[str, Any]):
    """An object read from manifest text: a plain dict that remembers where it was written."""

    __slots__ = ("where",)

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        super().__init__(data)
        self.where = where


# --- reading manifests -------------------------------------------------------------------------


def load_manifests(text: str, source: str = "manifests") -> list[dict[str, Any]]:
    """``---``-separated YAML (``helm template`` output, a release's ``manifest``, ``kubectl get
    -o yaml``) -> object dicts (``Manifest``: each knows its document). ``List`` kinds are
    flattened; empty documents are skipped. Text that is not YAML, or a document that is not an
    object, is a ``UsageError`` naming the file and the line or document."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="safe", pure=True)
    try:
        docs = list(yaml.load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = "; ".join(str(x).strip() for x in (exc.context, exc.problem) if x) or "syntax"
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise UsageError(f"{where}: not valid YAML: {' '.join(what.split())}") from None
    except YAMLError as exc:
        raise UsageError(_reader_error(exc, text, source)) from None
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, doc in enumerate(docs, 1):
        where = f"{source}, document {number}"
        if doc is None:
            continue
        if not isinstance(doc, dict):
            hint = (
                " (one object per `---` document, or kind: List)" if isinstance(doc, list) else ""
            )
            problems.append(
                f"{where}: expected a Kubernetes object (a mapping with apiVersion and kind), "
                f"got {_what(doc)}{hint}"
            )
            continue
        if isinstance(doc.get("kind"), str) and doc["kind"].endswith("List"):
            items = doc.get("items")
            if items is not None and not isinstance(items, list):
                problems.append(
                    f"{where} ({doc['kind']}): items: expected a list, got {_what(items)}"
                )
                continue
            for i, item in enumerate(items or ()):
                if not isinstance(item, dict):
                    problems.append(
                        f"{where} ({doc['kind']}): items[{i}]: expected a Kubernetes object "
                        f"(a mapping), got {_what(item)}"
                    )
                    continue
                out.append(Manifest(item, f"{where}, items[{i}]"))
        else:
            out.append(Manifest(doc, where))
    if problems:
        raise UsageError(
            problems[0]
            if len(problems) == 1
            else f"{len(problems)} problems:\n  " + "\n  ".join(problems)
        )
    return out


def _reader_error(exc: Exception, text: str, source: str) -> str:
    """A character YAML refuses (a control character, a lone surrogate standing for a byte that
    is not UTF-8), said with its line and column instead of a character offset."""
    position = getattr(exc, "position", None)
    character = getattr(exc, "character", None)
    if not isinstance(position, int):
        return f"{source}: not valid YAML: {' '.join(str(exc).split())}"
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    code = ord(character) if isinstance(character, str) else character
    if isinstance(code, int) and 0xDC80 <= code <= 0xDCFF:
        return f"{source}:{line}:{column}: not UTF-8 text (byte 0x{code - 0xDC00:02x})"
    shown = f"character U+{code:04X}" if isinstance(code, int) else "a character"
    return f"{source}:{line}:{column}: not valid YAML: {shown} is not allowed"


def collect(raw: Iterable[Mapping[str, Any]], default_namespace: str) -> Objects:
    """Typed views of the objects discovery uses. Objects without a namespace get
    ``default_namespace``, as Helm and kubectl apply them to the release's namespace.

    A workload, Service or Ingress whose fields do not have the shape Kubernetes gives them is
    not used: it is listed in ``problems``/``errors`` with the field that is wrong."""
    found = Objects()
    for obj in raw:
        kind = obj.get("kind") if isinstance(obj, Mapping) else None
        if kind not in (*WORKLOAD_KINDS, "Service", "Ingress"):
            continue
        where = getattr(obj, "where", None)
        name = "?"
        try:
            meta = _map(obj, "metadata", "")
            name = _text(meta, "name", "metadata") or ""
            ns = _text(meta, "namespace", "metadata") or default_namespace
            spec = _map(obj, "spec", "")
            if kind in WORKLOAD_KINDS:
                found.workloads.append(_workload(str(kind), name, ns, spec))
            elif kind == "Service":
                found.services.append(_service(name, ns, spec))
            else:
                found.ingresses.append(_ingress(name, ns, spec))
        except ManifestError as exc:
            problem = ObjectProblem(f"{kind}/{name}", where, exc.path, exc.message)
            found.errors.append(problem)
            found.problems.append(f"{problem.ref}: cannot read it: {exc.path}: {exc.message}")
    return found


# --- typed access: every wrong shape is a ManifestError naming its path --------------------------


def _what(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value[:40] + '…' if len(value) > 40 else value!r})"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _at(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _map(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ManifestError(_at(path, key), f"expected a mapping, got {_what(value)}")
    return value


def _maps(obj: Mapping[str, Any], key: str, path: str) -> list[tuple[str, Mapping[str, Any]]]:
    """A list of mappings, each with its path."""
    value = obj.get(key)
    if value is None:
        return []
    where = _at(path, key)
    if not isinstance(value, list):
        raise ManifestError(where, f"expected a list, got {_what(value)}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise ManifestError(_at(where, i), f"expected a mapping, got {_what(item)}")
        out.append((_at(where, i), item))
    return out


def _text(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ManifestError(_at(path, key), f"expected a string, got {_what(value)}")
    return str(value)


def _texts(obj: Mapping[str, Any], key: str, path: str) -> list[str]:
    value = obj.get(key)
    if value is None:
        return []
    where = _at(path, key)
    if not isinstance(value, list):
        raise ManifestError(where, f"expected a list, got {_what(value)}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ManifestError(_at(where, i), f"expected a string, got {_what(item)}")
        out.append(str(item))
    return out


def _labels(obj: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
    where = _at(path, key)
    out = {}
    for k, v in _map(obj, key, path).items():
        if isinstance(v, Mapping | list):
            raise ManifestError(_at(where, str(k)), f"expected a string, got {_what(v)}")
        out[str(k)] = "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
    return out


def _number(obj: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> int | None:
    """An integer field (a quoted number is accepted, as before)."""
    value = obj.get(key)
    if value is None:
        if required:
            raise ManifestError(_at(path, key), "missing (a number is required)")
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ManifestError(_at(path, key), f"expected a number, got {_what(value)}")


def _int_or_name(obj: Mapping[str, Any], key: str, path: str) -> int | str | None:
    # IntOrString: YAML numbers are ints; "8080" in quotes stays a string, as the API keeps it.
    value = obj.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ManifestError(_at(path, key), f"expected a port number or name, got {_what(value)}")
    return value


PROBE_NUMBERS = (
    "initialDelaySeconds",
    "timeoutSeconds",
    "periodSeconds",
    "successThreshold",
    "failureThreshold",
    "terminationGracePeriodSeconds",
)


def _probe(c: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
    """A probe, checked field by field where discovery reads it."""
    if c.get(key) is None:
        return None
    probe = _map(c, key, path)
    where = _at(path, key)
    for number in PROBE_NUMBERS:
        _number(probe, number, where)
    if "httpGet" in probe:
        action, at = _map(probe, "httpGet", where), _at(where, "httpGet")
        for text in ("path", "host", "scheme"):
            _text(action, text, at)
        _int_or_name(action, "port", at)
        for header_at, header in _maps(action, "httpHeaders", at):
            _text(header, "name", header_at)
            _text(header, "value", header_at)
    if "tcpSocket" in probe:
        at = _at(where, "tcpSocket")
        _int_or_name(_map(probe, "tcpSocket", where), "port", at)
    if "grpc" in probe:
        action, at = _map(probe, "grpc", where), _at(where, "grpc")
        _int_or_name(action, "port", at)
        _text(action, "service", at)
    if "exec" in probe:
        _texts(_map(probe, "exec", where), "command", _at(where, "exec"))
    return probe


def _container(c: Mapping[str, Any], path: str, *, sidecar: bool = False) -> Container:
    ports = []
    for port_at, p in _maps(c, "ports", path):
        number = _number(p, "containerPort", port_at)
        if number is not None:
            name = _text(p, "name", port_at) or None
            ports.append(ContainerPort(number, name, _text(p, "protocol", port_at) or "TCP"))
    probes = {f: probe for f in PROBE_FIELDS if (probe := _probe(c, f, path)) is not None}
    return Container(_text(c, "name", path) or "", tuple(ports), probes, sidecar)


def _workload(kind: str, name: str, ns: str, spec: Mapping[str, Any]) -> Workload:
    template = _map(spec, "template", "spec")
    pod = _map(template, "spec", "spec.template")
    labels = _labels(
        _map(template, "metadata", "spec.template"), "labels", "spec.template.metadata"
    )
    pod_at = "spec.template.spec"
    containers = tuple(_container(c, at) for at, c in _maps(pod, "containers", pod_at))
    init = [
        (at, c, _text(c, "restartPolicy", at) == "Always")
        for at, c in _maps(pod, "initContainers", pod_at)
    ]
    sidecars = tuple(_container(c, at, sidecar=True) for at, c, always in init if always)
    plain = tuple(_container(c, at) for at, c, always in init if not always)
    selector = _labels(_map(spec, "selector", "spec"), "matchLabels", "spec.selector")
    return Workload(kind, name, ns, labels, containers, sidecars, selector, plain)


def _service(name: str, ns: str, spec: Mapping[str, Any]) -> Service:
    ports = tuple(
        ServicePort(
            _number(p, "port", at, required=True) or 0,
            _text(p, "name", at) or None,
            _int_or_name(p, "targetPort", at),
            _text(p, "protocol", at) or "TCP",
            _text(p, "appProtocol", at),
        )
        for at, p in _maps(spec, "ports", "spec")
    )
    return Service(
        name,
        ns,
        _labels(spec, "selector", "spec"),
        ports,
        headless=_text(spec, "clusterIP", "spec") == "None",
        type=_text(spec, "type", "spec") or "ClusterIP",
    )


def _ingress(name: str, ns: str, spec: Mapping[str, Any]) -> Ingress:
    tls_hosts: set[str] = set()
    tls_all = False
    for at, entry in _maps(spec, "tls", "spec"):
        hosts = _texts(entry, "hosts", at)
        tls_hosts.update(hosts)
        # A tls entry without hosts covers the controller's default (wildcard) host.
        tls_all = tls_all or not hosts
    paths: list[IngressPath] = []
    for rule_at, rule in _maps(spec, "rules", "spec"):
        host = _text(rule, "host", rule_at) or None
        tls = tls_all or (host is not None and host in tls_hosts)
        http_at = _at(rule_at, "http")
        for at, p in _maps(_map(rule, "http", rule_at), "paths", http_at):
            svc, port = _backend(_map(p, "backend", at), _at(at, "backend"))
            paths.append(IngressPath(host, _text(p, "path", at) or "/", tls, svc, port))
    return Ingress(name, ns, tuple(paths))


def _backend(backend: Mapping[str, Any], path: str) -> tuple[str | None, int | str | None]:
    if backend.get("service") is not None:  # networking.k8s.io/v1
        service = _map(backend, "service", path)
        at = _at(path, "service")
        port = _map(service, "port", at)
        number = _number(port, "number", _at(at, "port"))
        return _text(service, "name", at), number or _text(port, "name", _at(at, "port"))
    # extensions/v1beta1 and networking.k8s.io/v1beta1 (older charts, older clusters)
    return _text(backend, "serviceName", path), _int_or_name(backend, "servicePort", path)
