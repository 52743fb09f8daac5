"""From a release's objects to a smokegate suite: which checks, reached how, and where each
came from.

* Every probe of every Deployment/StatefulSet/DaemonSet container becomes an ``http``, ``tcp``
  or ``grpc`` check through *each* Service port that selects those pods and exposes the probed
  port (ClusterIP Services are proxied: the Service port; headless ones are not: the container
  port behind the Service name), so every path a client can take is verified. ``exec`` probes,
  probes whose port does not resolve, probes with an explicit ``host`` (the kubelet dials it
  from the node) and probes no Service exposes are listed as not checked, with the reason,
  never dropped silently.
* Every Service port no probe check went through becomes a ``tcp`` connect check, when a pod
  of the release can serve it (``FindPort``); one no pod can serve (no selector, a selector
  matching no pod template, a named ``targetPort`` no container declares) is listed as not
  checked, with the reason.
* Every Ingress host and path becomes an ``http`` check (``https`` when a ``tls`` entry covers
  the host).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from smokegate.discover.objects import Ingress, IngressPath, Objects, Service, ServicePort, Workload
from smokegate.discover.ports import service_target, unserved_target
from smokegate.discover.probes import Probe, workload_probes

if TYPE_CHECKING:
    from smokegate.helm.release import HelmReleaseRecord, ReleaseRef

API_VERSION = "smokegate.io/v1"
DISCOVERED_TAG = "discovered"
# Service and Ingress checks have no probe to take a budget from: endpoints and ingress
# controllers catch up within seconds of a rollout, so retry briefly before failing.
SUITE_DEFAULTS: dict[str, Any] = {"timeout": "5s", "retry": {"interval": "2s", "within": "30s"}}
PROBE_STATUS = "200-399"
"""What the kubelet counts as a passing HTTP probe (and an Ingress check, for the same app)."""
_REGEX_PATH = re.compile(r"[()\[\]*+?$^|\\{}]")

Via = Literal["services", "pods"]


@dataclass(frozen=True, slots=True)
class PodAddress:
    name: str
    ip: str


@dataclass(frozen=True, slots=True)
class BuildOptions:
    cluster_domain: str = "cluster.local"
    via: Via = "services"
    """``pods``: probes no Service exposes are checked on each pod's IP, like the kubelet."""
    resolve: Sequence[str] = ()
    """curl-style ``host:port:address`` overrides, written into the checks (running outside
    the cluster)."""
    pods: Mapping[str, Sequence[PodAddress]] | None = None
    """``namespace/Kind/name`` -> its pods' addresses; None when unknown (offline manifests)."""


@dataclass(slots=True)
class DiscoveredCheck:
    name: str
    kind: str
    spec: dict[str, Any]
    origin: str
    """``Deployment/podinfo container podinfo readinessProbe``: what the check came from."""
    via: str
    """How it is reached: ``via Service podinfo port http (9898 -> container port 9898)``."""
    tags: list[str]
    address: tuple[str, int]
    timing: dict[str, Any] = field(default_factory=dict)
    """``timeout``/``retry`` of the check (probe budgets); empty: the suite defaults."""
    notes: list[str] = field(default_factory=list)

    def entry(self) -> dict[str, Any]:
        """The check as a suite entry (plain data)."""
        return {
            "name": self.name,
            "description": f"from {self.origin}",
            "tags": list(self.tags),
            **self.timing,
            self.kind: self.spec,
        }


@dataclass(frozen=True, slots=True)
class NotChecked:
    origin: str
    reason: str

    def __str__(self) -> str:
        return f"{self.origin}: {self.reason}"


@dataclass(slots=True)
class Discovery:
    """What discovery found, where from, and the suite it makes."""

    checks: list[DiscoveredCheck]
    not_checked: list[NotChecked]
    source: str
    """Where the objects came from, in words (a release Secret, labels, a file)."""
    namespace: str
    suite_name: str = "discovered"
    release: ReleaseRef | None = None
    record: HelmReleaseRecord | None = None
    notes: list[str] = field(default_factory=list)
    """Problems met on the way (a fallback taken, an unreadable object)."""
    command: str | None = None

    def suite(self) -> dict[str, Any]:
        """The suite as plain data (``apiVersion: smokegate.io/v1``, ``kind: Suite``)."""
        spec: dict[str, Any] = {}
        if self.release is not None and self.release.helmrelease:
            spec["release"] = {
                "helmRelease": self.release.helmrelease,
                "namespace": self.release.helmrelease_namespace,
            }
        spec["defaults"] = SUITE_DEFAULTS
        spec["checks"] = [c.entry() for c in self.checks]
        return {
            "apiVersion": API_VERSION,
            "kind": "Suite",
            "metadata": {"name": self.suite_name, "labels": {"smokegate.io/discovered": "true"}},
            "spec": spec,
        }

    def without(self, names: set[str]) -> Discovery:
        """A copy without the checks named in ``names`` (a user suite's checks win)."""
        from dataclasses import replace

        return replace(self, checks=[c for c in self.checks if c.name not in names])

    def yaml(self) -> str:
        from smokegate.discover.render import render_yaml

        return render_yaml(self)

    def summary(self) -> str:
        n = len(self.checks)
        text = f"discovered {n} check{'s' if n != 1 else ''} from {self.source}"
        if self.not_checked:
            text += f"; {len(self.not_checked)} not checkable (listed in the suite)"
        return text


# --- building ----------------------------------------------------------------------------------


def build_checks(
    objects: Objects, options: BuildOptions | None = None
) -> tuple[list[DiscoveredCheck], list[NotChecked]]:
    """Derive the checks (in the order: probes, Service ports, Ingresses) and what could not
    be checked, with reasons."""
    options = options or BuildOptions()
    builder = _Builder(objects, options)
    for w in objects.workloads:
        for probe in workload_probes(w):
            builder.probe(probe)
    for svc in objects.services:
        for sp in svc.ports:
            builder.service_port(svc, sp)
    for ing in objects.ingresses:
        for path in ing.paths:
            builder.ingress_path(ing, path)
    for problem in objects.problems:
        builder.skipped.append(NotChecked(problem.partition(":")[0], problem.partition(": ")[2]))
    _apply_resolve(builder.checks, options.resolve)
    return builder.checks, builder.skipped


class _Builder:
    def __init__(self, objects: Objects, options: BuildOptions) -> None:
        self.objects = objects
        self.options = options
        self.checks: list[DiscoveredCheck] = []
        self.skipped: list[NotChecked] = []
        self.covered: set[tuple[str, str, int]] = set()
        self._names: set[str] = set()

    def dns(self, svc: Service) -> str:
        return f"{svc.name}.{svc.namespace}.svc.{self.options.cluster_domain}"

    def add(self, check: DiscoveredCheck) -> None:
        name, n = check.name, 1
        while name in self._names:
            n += 1
            name = f"{check.name}-{n}"
        check.name = name
        self._names.add(name)
        self.checks.append(check)

    # --- probes ----------------------------------------------------------------------------

    def probe(self, probe: Probe) -> None:
        origin = probe.origin
        if probe.handler == "exec":
            self.skipped.append(
                NotChecked(
                    origin,
                    f"exec probe (`{probe.command}`) runs inside the container: it cannot be "
                    "checked from outside the pod",
                )
            )
            return
        if not probe.handler:
            self.skipped.append(NotChecked(origin, "probe has no handler"))
            return
        if probe.error is not None or probe.port is None:
            self.skipped.append(NotChecked(origin, probe.error or "probe has no port"))
            return
        w = probe.workload
        if probe.host and probe.handler in ("httpGet", "tcpSocket"):
            # pkg/probe/http/request.go (and the kubelet's TCP prober): the host, else the pod
            # IP, dialled from the node. From anywhere else that address is another machine.
            self.skipped.append(
                NotChecked(
                    origin,
                    f"{probe.handler}.host {probe.host!r}: the kubelet connects to it from the "
                    "pod's node; from anywhere else it is another address (a loopback host "
                    "would be smokegate itself), so it cannot be checked from outside the node",
                )
            )
            return
        routes = self._routes(w, probe.port)
        for i, (svc, sp, port) in enumerate(routes):
            self.covered.add((svc.namespace, svc.name, sp.port))
            target = f"{sp.port} -> container port {probe.port}"
            how = "headless, not proxied: the container port" if svc.headless else target
            via = f"via Service {svc.name} port {sp.label} ({how})"
            check = self._probe_check(probe, self.dns(svc), port, via)
            if i:
                # The first route (proxied before headless, manifest order) keeps the plain
                # name; every other one says which Service port it goes through.
                check.name = f"{check.name}[service={svc.name}:{sp.label}]"
            self.add(check)
        if routes:
            return
        reason = f"no Service selects the pods of {w.ref} and exposes container port {probe.port}"
        if self.options.via != "pods":
            self.skipped.append(
                NotChecked(origin, f"{reason} (--via pods checks the pods' IPs directly)")
            )
            return
        pods = None if self.options.pods is None else self.options.pods.get(_key(w))
        if pods is None:
            self.skipped.append(
                NotChecked(origin, f"{reason}; --via pods needs the cluster to find pod IPs")
            )
        elif not pods:
            self.skipped.append(NotChecked(origin, f"{reason}; no running pod with an IP"))
        for pod in pods or ():
            check = self._probe_check(probe, pod.ip, probe.port, f"on pod {pod.name} (--via pods)")
            check.name = f"{check.name}[pod={pod.name}]"
            self.add(check)

    def _routes(self, w: Workload, port: int) -> list[tuple[Service, ServicePort, int]]:
        """Every Service port that carries traffic to ``port`` of ``w``'s pods, with the port a
        client connects to: proxied (ClusterIP) Services first, then headless ones, each in
        manifest order."""
        found: list[tuple[Service, ServicePort, int]] = []
        for svc in self.objects.services:
            if not svc.selects(w) or svc.type == "ExternalName":
                continue
            for sp in svc.ports:
                if sp.protocol != "TCP":  # probes are TCP (HTTP and gRPC ride on TCP)
                    continue
                target = service_target(w, sp)
                if target is not None and target.port == port:
                    found.append((svc, sp, port if svc.headless else sp.port))
        found.sort(key=lambda f: f[0].headless)
        return found

    def _probe_check(self, probe: Probe, host: str, port: int, via: str) -> DiscoveredCheck:
        w, c = probe.workload, probe.container
        single = len(w.all_containers) == 1
        name = f"{w.name}-{probe.short}" if single else f"{w.name}-{c.name}-{probe.short}"
        timing = probe.budget.check_fields()
        tags = [DISCOVERED_TAG, "probe"]
        notes: list[str] = []
        if probe.handler == "httpGet":
            spec: dict[str, Any] = {"url": f"{probe.scheme}://{_hostport(host, port)}{probe.path}"}
            if probe.headers:
                spec["headers"] = probe.headers
            if probe.scheme == "https":
                # The kubelet does not verify probe certificates (self-signed is the norm).
                spec["tls"] = {"verify": False}
            spec["expect"] = {"status": PROBE_STATUS}
            kind = "http"
        elif probe.handler == "grpc" and grpc_available():
            # Plaintext, like the kubelet's gRPC probe (it has no TLS option).
            spec = {"target": _hostport(host, port)}
            if probe.grpc_service:
                spec["service"] = probe.grpc_service
            kind = "grpc"
        elif probe.handler == "grpc":
            # Without the grpc kind a suite using it would not load at all: check what can be.
            spec = {"host": host, "port": port}
            kind = "tcp"
            notes.append(
                "the grpc check kind is not available (pip install 'smokegate[grpc]'): "
                "TCP connect only"
            )
        else:
            spec = {"host": host, "port": port}
            kind = "tcp"
        return DiscoveredCheck(
            name, kind, spec, probe.origin, via, tags, (host, port), timing, notes
        )

    # --- Service ports ---------------------------------------------------------------------

    def service_port(self, svc: Service, sp: ServicePort) -> None:
        if (svc.namespace, svc.name, sp.port) in self.covered:
            return
        origin = f"{svc.ref} port {sp.label}"
        if svc.type == "ExternalName":
            self.skipped.append(NotChecked(origin, "ExternalName Service: a DNS alias, no pods"))
            return
        if sp.protocol != "TCP":
            self.skipped.append(NotChecked(origin, f"{sp.protocol} port: only TCP is checked"))
            return
        unserved = self._unserved(svc, sp)
        if unserved is not None:
            self.skipped.append(NotChecked(origin, f"{unserved}: no pod of the release serves it"))
            return
        selected = [w for w in self.objects.workloads if svc.selects(w)]
        targets = {t.port for w in selected if (t := service_target(w, sp)) is not None}
        if svc.headless:
            # Not proxied: clients connect to the container port on the pod IPs the name
            # resolves to.
            ports = sorted(targets)
            how = "headless, not proxied: the container port"
        else:
            ports = [sp.port]
            how = f"{sp.port} -> container port {', '.join(map(str, sorted(targets)))}"
        for port in ports:
            host = self.dns(svc)
            suffix = sp.label if len(ports) == 1 else f"{sp.label}-{port}"
            self.add(
                DiscoveredCheck(
                    f"{svc.name}-port-{suffix}",
                    "tcp",
                    {"host": host, "port": port},
                    origin,
                    f"no probe covers it; TCP connect ({how})",
                    [DISCOVERED_TAG, "service"],
                    (host, port),
                )
            )

    def _unserved(self, svc: Service, sp: ServicePort) -> str | None:
        """Why no pod of the release can serve this Service port, or None when one can: the
        EndpointSlice controller's view (pods selected in the Service's namespace, FindPort on
        each)."""
        if not svc.selector:
            return (
                "no selector: Kubernetes manages no endpoints for it (they are written by hand "
                "or by another controller)"
            )
        selected = [w for w in self.objects.workloads if svc.selects(w)]
        if not selected:
            labels = ",".join(f"{k}={v}" for k, v in svc.selector.items())
            elsewhere = [
                w
                for w in self.objects.workloads
                if all(w.pod_labels.get(k) == v for k, v in svc.selector.items())
            ]
            if elsewhere:
                found = ", ".join(f"{w.ref} in namespace {w.namespace}" for w in elsewhere)
                return (
                    f"it is in namespace {svc.namespace}, and a Service selects pods of its own "
                    f"namespace only; its selector {labels} matches {found}"
                )
            return f"its selector {labels} matches the pod template of no workload"
        if any(service_target(w, sp) is not None for w in selected):
            return None
        return "; ".join(unserved_target(w, sp) for w in selected)

    # --- Ingresses -------------------------------------------------------------------------

    def ingress_path(self, ing: Ingress, p: IngressPath) -> None:
        origin = f"{ing.ref} host {p.host or '*'} path {p.path}"
        if p.host is None:
            self.skipped.append(
                NotChecked(
                    origin,
                    "rule without a host: its address is the ingress controller's, which the "
                    "release does not name",
                )
            )
            return
        if p.host.startswith("*"):
            self.skipped.append(NotChecked(origin, "wildcard host: no single name to request"))
            return
        if _REGEX_PATH.search(p.path):
            self.skipped.append(NotChecked(origin, "path is a regular expression"))
            return
        scheme = "https" if p.tls else "http"
        label = p.path.strip("/").replace("/", "-")
        name = f"ingress-{ing.name}-{p.host}" + (f"-{label}" if label else "")
        backend = f"{p.service}:{p.service_port}" if p.service else "default backend"
        self.add(
            DiscoveredCheck(
                name,
                "http",
                {"url": f"{scheme}://{p.host}{p.path}", "expect": {"status": PROBE_STATUS}},
                origin,
                f"backend {backend}" + (", TLS from the Ingress's tls section" if p.tls else ""),
                [DISCOVERED_TAG, "ingress"],
                (p.host, 443 if p.tls else 80),
            )
        )


def _key(w: Workload) -> str:
    return f"{w.namespace}/{w.kind}/{w.name}"


def workload_key(w: Workload) -> str:
    """The key of ``BuildOptions.pods``."""
    return _key(w)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _apply_resolve(checks: list[DiscoveredCheck], resolve: Sequence[str]) -> None:
    """Write ``--resolve`` overrides into the checks, so the suite runs outside the cluster:
    ``http`` checks keep the URL (Host header and SNI unchanged) and get a ``resolve`` entry;
    ``tcp``/``grpc`` checks (plain connections, no name to preserve) connect to the address."""
    if not resolve:
        return
    from smokegate.checks.http import parse_resolve

    table = {}
    for item in resolve:
        host, port, addr = parse_resolve(item)
        table[(host, port)] = (item, addr)
    for check in checks:
        hit = table.get((check.address[0].lower(), check.address[1]))
        if hit is None:
            continue
        item, addr = hit
        if check.kind == "http":
            check.spec["resolve"] = [item]
        elif check.kind == "grpc":
            check.spec["target"] = _hostport(addr, check.address[1])
        else:
            check.spec["host"] = addr
        check.notes.append(f"--resolve: connects to {addr} for {_hostport(*check.address)}")


def grpc_available() -> bool:
    """Is the ``grpc`` check kind registered, with its driver installed?"""
    from smokegate.checks import available_kinds

    kind = next((k for k in available_kinds() if k.name == "grpc"), None)
    return kind is not None and not kind.missing_modules()
