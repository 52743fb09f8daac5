"""The embedded demo service: a small JSON API, a TCP banner port, a TLS port and a DNS
responder, all on 127.0.0.1 with ports chosen by the OS. Only the demo uses it.

Minimal on purpose (stdlib asyncio + cryptography for a throwaway CA, dnspython for DNS
messages): ``smokegate demo`` must work right after ``pip install``, with no root and no cluster.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

VERSION = "1.4.2"


@dataclass
class DemoService:
    broken: bool = False
    ready_after: float = 1.5  # /ready answers 503 until then: shows retries and `recovered`
    ports: dict[str, int] = field(default_factory=dict)
    ca_file: str = ""
    _servers: list[asyncio.AbstractServer] = field(default_factory=list)
    _transports: list[asyncio.BaseTransport] = field(default_factory=list)
    _tmp: tempfile.TemporaryDirectory[str] | None = None
    _started: float = 0.0

    async def start(self) -> None:
        self._started = time.monotonic()
        self._tmp = tempfile.TemporaryDirectory(prefix="smokegate-demo-")
        cert, key, ca = _make_certs(Path(self._tmp.name))
        self.ca_file = str(ca)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert, key)
        http = await asyncio.start_server(self._http, "127.0.0.1", 0)
        banner = await asyncio.start_server(self._banner, "127.0.0.1", 0)
        https = await asyncio.start_server(self._http, "127.0.0.1", 0, ssl=tls)
        self._servers += [http, banner, https]
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Dns(self), local_addr=("127.0.0.1", 0)
        )
        self._transports.append(transport)
        self.ports = {
            "http": _port(http),
            "tcp": _port(banner),
            "https": _port(https),
            "dns": transport.get_extra_info("sockname")[1],
        }

    async def stop(self) -> None:
        for s in self._servers:
            s.close()
        for t in self._transports:
            t.close()
        for s in self._servers:
            await s.wait_closed()
        if self._tmp is not None:
            self._tmp.cleanup()

    # --- HTTP -------------------------------------------------------------------------------
    def _route(self, path: str) -> tuple[int, dict[str, object] | str]:
        if path == "/healthz":
            return (503, {"status": "degraded"}) if self.broken else (200, {"status": "ok"})
        if path == "/ready":
            ready = time.monotonic() - self._started >= self.ready_after
            return (200, {"ready": True}) if ready else (503, {"ready": False})
        if path == "/version":
            version = "1.4.1" if self.broken else VERSION
            return 200, {"version": version, "commit": "9f2c1e7", "replicas": 3}
        if path == "/api/items":
            items = [{"id": i, "name": f"item-{i}"} for i in range(1, 4)]
            return 200, {"items": items if not self.broken else [], "total": 3}
        return 404, {"error": "not found"}

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
                parts = request_line.split(" ")
                path = parts[1].split("?", 1)[0] if len(parts) > 1 else "/"
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip() or 0)
                if length:
                    await reader.readexactly(length)
                status, payload = self._route(path)
                body = json.dumps(payload).encode()
                if self.broken and path == "/version":
                    await asyncio.sleep(0.35)  # also slow, to trip the latency expectation
                writer.write(
                    f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                    f"X-Demo-Version: {VERSION}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, ValueError):
            pass
        finally:
            writer.close()

    async def _banner(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"+OK smokegate-demo ready\r\n")
        try:
            line = await reader.readline()
            if line.strip().upper() == b"PING":
                writer.write(b"+PONG\r\n")
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


class _Dns(asyncio.DatagramProtocol):
    """Answers A queries for *.demo.test with 127.0.0.1, NXDOMAIN for anything else."""

    def __init__(self, service: DemoService) -> None:
        self.service = service
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        import dns.message
        import dns.rcode
        import dns.rdatatype
        import dns.rrset

        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        reply = dns.message.make_response(query)
        q = query.question[0]
        name = q.name.to_text().rstrip(".")
        if name.endswith("demo.test") and q.rdtype == dns.rdatatype.A:
            reply.answer.append(dns.rrset.from_text(q.name, 30, "IN", "A", "127.0.0.1"))
        elif not name.endswith("demo.test"):
            reply.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(reply.to_wire(), addr)


def _port(server: asyncio.AbstractServer) -> int:
    # asyncio.start_server returns an asyncio.Server, which has `sockets`.
    return int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]


def _make_certs(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a localhost certificate valid for 90 days."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smokegate demo CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "cert.pem").write_bytes(cert.public_bytes(pem))
    (directory / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return directory / "cert.pem", directory / "key.pem", directory / "ca.pem"
