"""``grpc``: the standard gRPC health check, ``grpc.health.v1.Health/Check``, and its status.

    - name: payments-grpc
      grpc:
        target: payments.shop.svc:50051
        service: payments.v1.Payments      # "" (default) asks about the server as a whole
        tls: {ca: certs/internal-ca.pem}   # or `tls: true` for the system CAs; default plaintext
        metadata:
          authorization: "Bearer ${secret:payments-smoke/token}"
        deadline: 3s
        expect:
          status: SERVING

Driver: grpcio's asyncio API with the health stubs from grpcio-health-checking (the ``grpc``
extra), both maintained by the gRPC project. Each attempt gets its own channel with its own
subchannel pool, so a retry reconnects instead of reusing a connection in backoff.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from smokegate.checks._protocol import failure, hostport, override, scrub, via
from smokegate.checks.base import (
    CheckContext,
    CheckFailed,
    ErrorKind,
    LocalPath,
    Mismatch,
    Outcome,
    Spec,
    Text,
    failed,
    passed,
    reveal,
)
from smokegate.suite.model import Duration

ServingStatus = Literal["SERVING", "NOT_SERVING", "UNKNOWN", "SERVICE_UNKNOWN"]

# Metadata keys whose values are credentials: registered with the redactor.
_CREDENTIAL_KEY = re.compile(r"auth|token|key|secret|password|cookie", re.IGNORECASE)


class GrpcTls(Spec):
    ca: LocalPath | None = None
    """CA bundle (file path or PEM text) to verify the server; default: gRPC's bundled roots."""
    cert: LocalPath | None = None
    """Client certificate for mutual TLS (file path or PEM text)."""
    key: LocalPath | None = None
    """Private key for `cert` (file path or PEM text)."""
    server_name: str | None = None
    """Name to verify in the server certificate (and send as SNI/authority) when it differs
    from the target's host, e.g. when `target` is an IP address."""


class GrpcExpect(Spec):
    status: ServingStatus = "SERVING"
    """The serving status the health service must report."""


class GrpcSpec(Spec):
    """Ask a gRPC server's health service about itself or one of its services."""

    target: str
    """`host:port` (`[::1]:50051` for IPv6)."""
    service: str = ""
    """Service name to ask about; "" (default) is the server's overall health."""
    tls: bool | GrpcTls = False
    """`false` (default): plaintext; `true`: TLS with gRPC's bundled roots; or `{ca, cert, key,
    serverName}`."""
    metadata: dict[str, Text] = Field(default_factory=dict)
    """Request headers (`authorization: Bearer …`); credential-looking values are redacted."""
    deadline: Duration | None = None
    """RPC deadline, connection included (default: the check's attempt timeout)."""
    expect: GrpcExpect = Field(default_factory=GrpcExpect)

    @field_validator("target")
    @classmethod
    def _target_valid(cls, v: str) -> str:
        split_target(v)
        return v

    @field_validator("metadata")
    @classmethod
    def _metadata_keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if not re.fullmatch(r"[0-9a-z_.\-]+", key):
                raise ValueError(f"metadata key {key!r}: use lowercase letters, digits, _ . -")
        return v


def split_target(target: str) -> tuple[str, int]:
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^\s:/\[\]]+):(\d+)", target)
    if not m:
        raise ValueError(f"target {target!r} must be host:port (or [ipv6]:port)")
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"target {target!r}: port must be 1-65535")
    return host, int(port)


def _pem(value: str | None, what: str) -> bytes | None:
    if not value:
        return None
    if "-----BEGIN" in value:
        return value.encode()
    try:
        return Path(value).read_bytes()
    except OSError as exc:
        raise CheckFailed(
            f"tls.{what}: cannot read {value}: {exc.strerror}", kind=ErrorKind.CONFIG
        ) from None


# What UNAVAILABLE's details say, in gRPC core's words (first match wins).
_UNAVAILABLE = tuple(
    (kind, re.compile(rx, re.IGNORECASE))
    for kind, rx in (
        (
            ErrorKind.DNS,
            r"DNS resolution failed|errors resolving|lookup failed|Domain name not found"
            r"|name resolution|not known",
        ),
        (ErrorKind.TLS, r"handshake|\bSSL|\bTLS|certificate|tsi_|TSI|verification check failed"),
        (ErrorKind.CONNECTION_REFUSED, r"Connection refused|No route to host|unreachable"),
        (ErrorKind.TIMEOUT, r"timed out|timeout|Deadline"),
    )
)


# The other status codes a person can act on: kind, message, and the evidence's subject,
# expectation and actual value, as templates of {target}, {reason}, {what} and {service}.
_STATUS_FAILURES: dict[str, tuple[str, str, str, str, str]] = {
    "DEADLINE_EXCEEDED": (
        ErrorKind.TIMEOUT,
        "health check of {target} timed out: {reason}",
        "deadline",
        "an answer",
        "{reason}",
    ),
    "UNAUTHENTICATED": (
        ErrorKind.AUTH,
        "authentication failed at {target}: {reason}",
        "authentication",
        "credentials accepted",
        "{reason}",
    ),
    "PERMISSION_DENIED": (
        ErrorKind.FORBIDDEN,
        "permission denied at {target}: {reason}",
        "access",
        "allowed",
        "{reason}",
    ),
    "NOT_FOUND": (
        ErrorKind.NOT_FOUND,
        "the health service of {target} does not know {what}",
        "service",
        "{service!r} registered with the health service",
        "unknown service (NOT_FOUND)",
    ),
    "UNIMPLEMENTED": (
        ErrorKind.PROTOCOL,
        "{target} does not implement grpc.health.v1.Health (register the health service)",
        "health service",
        "grpc.health.v1.Health implemented",
        "{reason}",
    ),
}


def _quiet_core() -> None:
    """gRPC core logs every failed TLS handshake at INFO on stderr, garbling the console report
    of a failure this check already reports. Core reads GRPC_VERBOSITY once, when grpc is first
    imported, so this runs just before that (never merely because this module is loaded, as
    listing or linting all kinds does): ERROR keeps real core errors visible, and a
    GRPC_VERBOSITY the user set wins."""
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def _grpc() -> Any:
    _quiet_core()
    import grpc

    return grpc


def _core_details(details: str) -> str:
    """gRPC core wraps the one useful reason in boilerplate; keep the reason."""
    details = re.sub(
        r"^failed to connect to all addresses; last error: [A-Z_]+: (?:ipv[46]:\S+: )?",
        "",
        details.strip(),
    )
    return re.sub(r": OK$", "", details)


def _failure(code: Any, details: str, target: str, service: str) -> CheckFailed:
    grpc = _grpc()

    what = f"service {service!r}" if service else "the server"
    reason = f"{code.name}: {details}" if details else code.name
    if code == grpc.StatusCode.UNAVAILABLE:
        kind = next((k for k, rx in _UNAVAILABLE if rx.search(details)), None)
        if kind is None and re.search(r"Socket closed|Connection reset|EOF", details):
            kind = ErrorKind.PROTOCOL
            reason += " (plaintext to a TLS port, or TLS to a plaintext one?)"
        kind = kind or ErrorKind.CONNECTION_REFUSED
        subject, expected = {
            ErrorKind.DNS: ("host", "a resolvable name"),
            ErrorKind.TLS: ("tls", "a verified TLS session"),
            ErrorKind.TIMEOUT: ("connect", "an answer"),
            ErrorKind.PROTOCOL: ("connection", "an HTTP/2 gRPC session"),
        }.get(kind, ("connection", "a server accepting connections"))
        return failure(kind, f"cannot reach {target}: {reason}", subject, expected, reason)
    named = _STATUS_FAILURES.get(code.name)
    if named is None:
        return failure(ErrorKind.PROTOCOL, f"health check failed: {reason}", "rpc", "OK", reason)
    kind, *texts = named
    values = {"target": target, "reason": reason, "what": what, "service": service}
    message, subject, expected, actual = (text.format(**values) for text in texts)
    return failure(kind, message, subject, expected, actual)


def _channel(spec: GrpcSpec, address: str | None) -> Any:
    """A channel for one attempt. Under a ``--resolve`` override (``address``) it dials the
    address and keeps the target's host as the name to verify (and send as SNI) and the target
    as the ``:authority``, as if the name had resolved there."""
    grpc = _grpc()

    host, port = split_target(spec.target)
    dial = hostport(address, port) if address else spec.target
    options: list[tuple[str, Any]] = [
        ("grpc.primary_user_agent", "smokegate"),
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.enable_retries", 0),  # the engine owns retries and reports each attempt
    ]
    tls = spec.tls if isinstance(spec.tls, GrpcTls) else GrpcTls() if spec.tls else None
    if tls is not None and tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
        options.append(("grpc.default_authority", tls.server_name))
    elif address:
        if tls is not None:
            options.append(("grpc.ssl_target_name_override", host))
        options.append(("grpc.default_authority", spec.target))
    if tls is None:
        return grpc.aio.insecure_channel(dial, options=options)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_pem(tls.ca, "ca"),
        private_key=_pem(tls.key, "key") if tls.cert else None,
        certificate_chain=_pem(tls.cert, "cert"),
    )
    return grpc.aio.secure_channel(dial, credentials, options=options)


async def run(spec: GrpcSpec, ctx: CheckContext) -> Outcome:
    grpc = _grpc()
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    metadata = tuple((k, reveal(v)) for k, v in spec.metadata.items())  # for the RPC
    for key, value in metadata:
        if _CREDENTIAL_KEY.search(key):
            ctx.redactor.add(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.lower() in ("bearer", "basic", "token"):
                ctx.redactor.add(token)
    address = override(ctx, *split_target(spec.target))
    target = via(spec.target, address)
    started = time.perf_counter()
    channel = _channel(spec, address)
    try:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=spec.service),
            # No deadline of its own: the attempt's, which gRPC also tells the server.
            timeout=spec.deadline if spec.deadline is not None else ctx.time_left(),
            metadata=metadata or None,
            wait_for_ready=False,  # fail fast on a refused connection instead of waiting
        )
    except grpc.aio.AioRpcError as exc:
        details = scrub(_core_details(exc.details() or ""), ctx)
        raise _failure(exc.code(), details, target, spec.service) from None
    finally:
        await channel.close()
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    info = {
        "target": target,
        "service": spec.service,
        "status": status,
        "tls": spec.tls is not False,
        "latency": round(time.perf_counter() - started, 6),
    }
    if status != spec.expect.status:
        what = f"service {spec.service!r}" if spec.service else "server"
        return failed([Mismatch(f"{what} status", spec.expect.status, status)], details=info)
    return passed(details=info)


SPEC = GrpcSpec
_PRELOAD = ("grpc", "grpc_health.v1.health_pb2_grpc")


def __getattr__(name: str) -> Any:
    # ``PRELOAD``: the modules the engine imports before the run starts (see
    # engine.runner._run_fns). Computed on access, which only the engine does right before
    # importing them, so that the grpc import it triggers happens with core quietened.
    if name == "PRELOAD":
        _quiet_core()
        return _PRELOAD
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
