"""Port resolution, exactly as Kubernetes does it.

*Probe ports* (``kubernetes/kubernetes`` ``pkg/probe/util.go`` ``ResolveContainerPort``): a
number is used as given; a name is looked up only among the ports of the container the probe
belongs to. A name that container does not declare makes the probe error in the kubelet
("probe errored and resulted in unknown state"): we report that, we never guess another port.
There is no numeric-string fallback: API validation requires port names to contain a letter.

*Service target ports* (``pkg/api/v1/pod/util.go`` ``FindPort``): an unset ``targetPort`` equals
``port``; a number is used as given; a name is looked up across the pod's containers (regular
ones in order, then native sidecars, as Kubernetes 1.32+ does), each container's ports in
order, and the first port with that name *and* the Service port's protocol wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from smokegate.discover.objects import Container, ServicePort, Workload


class PortError(ValueError):
    """A port that does not resolve; the message says why, in Kubernetes' terms."""


def resolve_probe_port(container: Container, port: int | str | None, probe: str) -> int:
    """The port number a probe of ``container`` connects to. Raises ``PortError``."""
    if port is None or port == "":
        raise PortError(f"{probe} has no port")
    if isinstance(port, int):
        return _valid(port, f"{probe} port")
    for p in container.ports:
        if p.name == port:
            return _valid(p.port, f"container port {port!r}")
    declared = ", ".join(f"{p.name}={p.port}" for p in container.ports if p.name) or "none"
    raise PortError(
        f"{probe} port {port!r} is not a port name of container {container.name!r} "
        f"(its named ports: {declared}); the kubelet reports this probe as errored "
        "and never looks in other containers"
    )


def _valid(number: int, what: str) -> int:
    if not 1 <= number <= 65535:
        raise PortError(f"{what} {number} is outside 1-65535")
    return number


@dataclass(frozen=True, slots=True)
class Target:
    """Where a Service port lands on a workload's pods."""

    port: int
    container: str | None
    """The container that declares the port, when known (a numeric targetPort need not be
    declared by any container to work)."""


def service_target(workload: Workload, sp: ServicePort) -> Target | None:
    """The container port a Service port sends traffic to on ``workload``'s pods, or None
    when a named ``targetPort`` matches no container port (name and protocol)."""
    target = sp.port if sp.target_port is None else sp.target_port
    if isinstance(target, int):
        owner = next(
            (
                c.name
                for c in workload.all_containers
                for p in c.ports
                if p.port == target and p.protocol == sp.protocol
            ),
            None,
        )
        return Target(target, owner)
    for c in workload.all_containers:
        for p in c.ports:
            if p.name == target and p.protocol == sp.protocol:
                return Target(p.port, c.name)
    return None


def unserved_target(workload: Workload, sp: ServicePort) -> str:
    """Why a named ``targetPort`` (``service_target`` gave None) reaches no port of ``workload``'s
    pods, in FindPort's terms."""
    name = sp.target_port
    other_protocol = [
        f"{p.protocol} port of container {c.name!r}"
        for c in workload.all_containers
        for p in c.ports
        if p.name == name
    ]
    if other_protocol:
        return (
            f"targetPort {name!r} names a {', '.join(other_protocol)} of {workload.ref}, not a "
            f"{sp.protocol} one (FindPort needs the name and the protocol to match)"
        )
    init_only = [c.name for c in workload.init_containers for p in c.ports if p.name == name]
    if init_only:
        return (
            f"targetPort {name!r} is declared only by init container {init_only[0]!r} of "
            f"{workload.ref}, which runs to completion before the pod serves (FindPort looks "
            "in the containers and restartPolicy: Always sidecars only)"
        )
    declared = ", ".join(
        f"{p.name}={p.port}" for c in workload.all_containers for p in c.ports if p.name
    )
    return (
        f"targetPort {name!r} is not a container port name of {workload.ref} "
        f"(its named ports: {declared or 'none'})"
    )
