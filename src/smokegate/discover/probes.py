"""Container probes, read the way the kubelet reads them.

Each container's probes are merged only when they would make the very same check: the same
request (after the API server's defaults: ``SetDefaults_HTTPGetAction`` path ``/`` and scheme
``HTTP``; a named port and its number are the same port) *and* the same budget
(``timeoutSeconds``, ``periodSeconds``, ``failureThreshold`` after ``SetDefaults_Probe``). A
readiness and a liveness probe that both ``GET /healthz`` with default timing (``helm create``)
are one check, named after the first field in ``PROBE_FIELDS`` order (readiness, startup,
liveness); the same request with a different ``failureThreshold`` (ingress-nginx) is two
checks, each with its own budget.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from smokegate.discover.objects import PROBE_FIELDS, Container, Workload
from smokegate.discover.ports import PortError, resolve_probe_port

# API server defaults for a probe (pkg/apis/core/v1/defaults.go: SetDefaults_Probe and
# SetDefaults_HTTPGetAction), so rendered manifests behave like stored objects.
DEFAULT_TIMEOUT = 1
DEFAULT_PERIOD = 10
DEFAULT_FAILURE_THRESHOLD = 3

HANDLERS = ("httpGet", "tcpSocket", "grpc", "exec")


@dataclass(frozen=True, slots=True)
class Budget:
    """What the kubelet allows: ``timeoutSeconds`` per attempt, ``periodSeconds`` apart,
    ``failureThreshold`` consecutive failures before it gives up."""

    timeout: int = DEFAULT_TIMEOUT
    period: int = DEFAULT_PERIOD
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD

    @classmethod
    def of(cls, probe: Mapping[str, Any]) -> Budget:
        return cls(
            int(probe.get("timeoutSeconds") or DEFAULT_TIMEOUT),
            int(probe.get("periodSeconds") or DEFAULT_PERIOD),
            int(probe.get("failureThreshold") or DEFAULT_FAILURE_THRESHOLD),
        )

    def check_fields(self) -> dict[str, Any]:
        """``timeout`` and ``retry`` of the derived check: as many attempts as the kubelet
        makes, as far apart, within the time it allows before declaring the probe failed."""
        return {
            "timeout": f"{self.timeout}s",
            "retry": {
                "attempts": self.failure_threshold,
                "interval": f"{self.period}s",
                "within": f"{self.failure_threshold * self.period}s",
            },
        }


@dataclass(frozen=True, slots=True)
class Probe:
    """One distinct probe of one container (possibly several probe fields doing the same)."""

    workload: Workload
    container: Container
    fields: tuple[str, ...]
    """``readinessProbe``, ``livenessProbe``…: the probe fields that do this."""
    handler: str
    """``httpGet``, ``tcpSocket``, ``grpc``, ``exec`` or ``""`` (none)."""
    action: Mapping[str, Any]
    budget: Budget
    port: int | None = None
    error: str | None = None
    """Why the probe's port does not resolve (the kubelet reports such a probe as errored)."""

    @property
    def origin(self) -> str:
        """``Deployment/podinfo container podinfo readinessProbe`` (the source comment)."""
        what = "sidecar" if self.container.sidecar else "container"
        return f"{self.workload.ref} {what} {self.container.name} {', '.join(self.fields)}"

    @property
    def short(self) -> str:
        return self.fields[0].removesuffix("Probe")

    @property
    def identity(self) -> tuple[Any, ...]:
        """Everything the derived check is made of (not where it came from): probes with the
        same identity are one check."""
        port = self.port if self.port is not None else str(self.action.get("port"))
        request: tuple[Any, ...] = (self.handler, port)
        if self.handler == "httpGet":
            request += (self.scheme, self.path, self.host, tuple(sorted(self.headers.items())))
        elif self.handler == "tcpSocket":
            request += (self.host,)
        elif self.handler == "grpc":
            request += (self.grpc_service,)
        elif self.handler == "exec":
            request += (self.command,)
        return (*request, self.budget)

    # httpGet
    @property
    def scheme(self) -> str:
        return str(self.action.get("scheme") or "HTTP").lower()

    @property
    def path(self) -> str:
        path = str(self.action.get("path") or "/")
        return path if path.startswith("/") else f"/{path}"

    @property
    def host(self) -> str | None:
        return self.action.get("host") or None

    @property
    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for h in self.action.get("httpHeaders") or ():
            name, value = str(h.get("name") or ""), str(h.get("value") or "")
            # An empty value tells the kubelet to *remove* its default header (User-Agent,
            # Accept); smokegate sends neither, so there is nothing to send or remove.
            if name and value:
                out[name] = f"{out[name]}, {value}" if name in out else value
        return out

    # grpc
    @property
    def grpc_service(self) -> str | None:
        return self.action.get("service") or None

    # exec
    @property
    def command(self) -> str:
        return shlex.join(str(a) for a in self.action.get("command") or ())


def _handler(probe: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    for h in HANDLERS:
        if isinstance(probe.get(h), Mapping):
            return h, probe[h]
    return "", {}


def _probe(workload: Workload, container: Container, name: str, spec: Mapping[str, Any]) -> Probe:
    handler, action = _handler(spec)
    port: int | None = None
    error: str | None = None
    if handler == "grpc" and not isinstance(action.get("port"), int):
        # API validation: gRPC probes take a number; named ports are not supported.
        error = f"grpc probe port {action.get('port')!r} is not a number (named ports are "
        error += "not supported for gRPC probes)"
    elif handler in ("httpGet", "tcpSocket", "grpc"):
        try:
            port = resolve_probe_port(container, action.get("port"), name)
        except PortError as exc:
            error = str(exc)
    return Probe(workload, container, (name,), handler, action, Budget.of(spec), port, error)


def container_probes(workload: Workload, container: Container) -> list[Probe]:
    groups: dict[tuple[Any, ...], list[Probe]] = {}
    for f in PROBE_FIELDS:
        spec = container.probes.get(f)
        if spec is not None:
            probe = _probe(workload, container, f, spec)
            groups.setdefault(probe.identity, []).append(probe)
    return [replace(same[0], fields=tuple(p.fields[0] for p in same)) for same in groups.values()]


def workload_probes(workload: Workload) -> list[Probe]:
    return [p for c in workload.all_containers for p in container_probes(workload, c)]
