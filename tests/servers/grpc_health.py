"""A real gRPC health server for tests: grpcio-health-checking's asyncio ``HealthServicer`` on
a ``grpc.aio`` server in a background thread of the test process, on a free loopback port.

    with GrpcHealthServer(tls_cert=cert, tls_key=key, token="s3cret") as srv:
        srv.target                                  # "127.0.0.1:PORT"
        srv.set_status("orders", "NOT_SERVING")     # per-service status, settable at any time
        srv.deadlines                               # the deadline each Check arrived with

The overall server status (service ``""``) starts as SERVING. With ``token=``, every call must
carry ``authorization: Bearer <token>`` metadata or it fails with UNAUTHENTICATED, which is how
real deployments put auth in front of the health service; ``echo_token=True`` makes that error
quote the header it got (a careless server, for redaction tests).
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Self

# Failed client handshakes are what the TLS tests provoke; gRPC core would log each at INFO.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tests.servers.process import Lifecycle


class _RequireToken(grpc.aio.ServerInterceptor):
    def __init__(self, token: str, echo: bool) -> None:
        self._expected = f"Bearer {token}"
        self._echo = echo

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        metadata = dict(details.invocation_metadata or ())
        got = metadata.get("authorization")
        if got == self._expected:
            return await continuation(details)
        message = "missing or bad bearer token"
        if self._echo:  # like servers that quote the credential they rejected
            message += f": {got!r}"

        async def deny(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        return grpc.unary_unary_rpc_method_handler(deny)


class _RecordingServicer(health.aio.HealthServicer):
    """The standard servicer, noting the deadline each Check arrived with (``time_remaining``:
    seconds, None without one), as a server sees what the client asked for."""

    def __init__(self, deadlines: list[float | None]) -> None:
        super().__init__()
        self._deadlines = deadlines

    async def Check(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._deadlines.append(context.time_remaining())
        return await super().Check(request, context)


class GrpcHealthServer(Lifecycle):
    def __init__(
        self,
        *,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        token: str | None = None,
        echo_token: bool = False,
        services: dict[str, str] | None = None,
    ) -> None:
        self._tls = (tls_cert, tls_key) if tls_cert and tls_key else None
        self._token = token
        self._echo_token = echo_token
        self._initial = dict(services or {})
        self.host = "127.0.0.1"
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: grpc.aio.Server | None = None
        self._servicer: Any = None
        self.deadlines: list[float | None] = []
        """The deadline (seconds left) of every Check received, in order."""

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def tls(self) -> bool:
        return self._tls is not None

    def set_status(self, service: str, status: str) -> None:
        """Set ``service``'s status (SERVING, NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN)."""
        value = health_pb2.HealthCheckResponse.ServingStatus.Value(status)
        self._call(self._servicer.set(service, value))

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("GrpcHealthServer already started")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="grpc-health-server", daemon=True
        )
        self._thread.start()
        try:
            self._call(self._start())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._server is not None:
            self._call(self._server.stop(grace=None))
            self._server = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None

    # -- internals ----------------------------------------------------------------------------

    def _call(self, coro: Any, timeout: float = 15) -> Any:
        assert self._loop is not None
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    async def _start(self) -> None:
        interceptors = [_RequireToken(self._token, self._echo_token)] if self._token else []
        server = grpc.aio.server(interceptors=interceptors)
        # Created on the server's loop: the asyncio servicer keeps per-loop conditions.
        self._servicer = _RecordingServicer(self.deadlines)
        health_pb2_grpc.add_HealthServicer_to_server(self._servicer, server)
        for service, status in self._initial.items():
            await self._servicer.set(
                service, health_pb2.HealthCheckResponse.ServingStatus.Value(status)
            )
        address = f"{self.host}:0"
        if self._tls is not None:
            cert, key = (Path(p).read_bytes() for p in self._tls)
            self.port = server.add_secure_port(address, grpc.ssl_server_credentials([(key, cert)]))
        else:
            self.port = server.add_insecure_port(address)
        await server.start()
        self._server = server
