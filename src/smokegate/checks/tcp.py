"""``tcp``: connect to a port, optionally send something, and check what the server says.

    - name: redis-answers
      tcp:
        host: redis.cache.svc
        port: 6379
        send: "PING\\r\\n"          # double quotes: YAML turns \\r\\n into CR LF
        expect:
          banner: '^\\+PONG'
          latency: {max: 200ms}

    - name: smtp-greets
      tcp: {host: mail.example.com, port: 465, tls: true, expect: {banner: '^220 '}}

Without ``expect`` the check passes once the connection is established (and ``send`` written).
With content expectations it reads until they all hold, the server closes the connection,
64 KiB have arrived or ``readTimeout`` runs out; in the last three cases it fails and shows what
was received.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
import time
from collections.abc import Callable

from pydantic import Field, field_validator, model_validator

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
from smokegate.checks.expect import compiled_regex, render
from smokegate.core.durations import format_duration
from smokegate.suite.model import Duration

READ_LIMIT = 64 * 1024
SNIPPET_CHARS = 512


class TcpTls(Spec):
    """TLS settings for a `tcp` check (`tls: true` means all defaults)."""

    verify: bool = True
    """Verify the server certificate chain and hostname."""
    ca: LocalPath | None = None
    """CA bundle (file path, or PEM text) to verify against instead of the system store."""
    server_name: str | None = None
    """SNI and the name the certificate must match (default: `host`)."""


class LatencyExpect(Spec):
    """Bound on the connection time."""

    max: Duration
    """Longest acceptable time to establish the connection (TCP plus TLS handshake)."""


class TcpExpect(Spec):
    """What the server must send back (all given expectations must hold)."""

    banner: str | None = None
    """Regex (Python syntax, searched anywhere) the received text must match."""
    contains: str | list[str] | None = None
    """Text(s) the received data must contain."""
    not_contains: str | list[str] | None = None
    """Text(s) that must not appear in what was received before the other expectations held
    (or the read ended)."""
    latency: LatencyExpect | None = None

    @field_validator("banner")
    @classmethod
    def _regex_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                compiled_regex(v)
            except Exception as exc:
                raise ValueError(f"invalid banner regex {v!r}: {exc}") from None
        return v

    @property
    def reads(self) -> bool:
        return self.banner is not None or bool(self.contains) or bool(self.not_contains)


class TcpSpec(Spec):
    """A TCP (or TLS) connection, optionally a message, and what the server must answer."""

    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    send: Text | None = None
    """Text to send after connecting, UTF-8 encoded. Use a double-quoted YAML string for
    escapes: "PING\\r\\n" sends CR LF."""
    send_hex: str | None = None
    """Bytes to send, as hex ("0d0a", spaces allowed), for binary protocols."""
    tls: bool | TcpTls = False
    """Wrap the connection in TLS (`true`, or settings)."""
    read_timeout: Duration = 5.0
    """How long to wait for the expected data once connected. Keep it below the check's
    `timeout`, so a wrong answer is reported with what was received rather than as a timeout."""
    expect: TcpExpect = Field(default_factory=TcpExpect)

    @field_validator("send_hex")
    @classmethod
    def _hex_valid(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                bytes.fromhex(v)
            except ValueError as exc:
                raise ValueError(f"sendHex is not valid hex: {exc}") from None
        return v

    @model_validator(mode="after")
    def _one_payload(self) -> TcpSpec:
        if self.send is not None and self.send_hex is not None:
            raise ValueError("give either `send` or `sendHex`, not both")
        return self

    def payload(self) -> bytes | None:
        if self.send_hex is not None:
            return bytes.fromhex(self.send_hex)
        return None if self.send is None else reveal(self.send).encode()


@functools.lru_cache(maxsize=64)
def _ssl_context(verify: bool, ca: str | None) -> ssl.SSLContext:
    try:
        if ca and "-----BEGIN" in ca:
            ctx = ssl.create_default_context(cadata=ca)
        else:
            ctx = ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise CheckFailed(f"cannot load CA {ca!r}: {exc}", kind=ErrorKind.CONFIG) from None
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def run(spec: TcpSpec, ctx: CheckContext) -> Outcome:
    target = f"{spec.host}:{spec.port}"
    address = ctx.connect_address(spec.host, spec.port) or (spec.host, spec.port)
    tls = TcpTls() if spec.tls is True else spec.tls or None
    ssl_ctx = _ssl_context(tls.verify, tls.ca) if tls else None
    t0 = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(
            address[0],
            address[1],
            ssl=ssl_ctx,
            server_hostname=(tls.server_name or spec.host) if tls else None,
        )
    except socket.gaierror as exc:
        raise CheckFailed(f"DNS: cannot resolve {address[0]}: {exc}", kind=ErrorKind.DNS) from None
    except ssl.SSLError as exc:
        raise CheckFailed(f"TLS handshake with {target}: {exc}", kind=ErrorKind.TLS) from None
    except ConnectionRefusedError:
        raise CheckFailed(
            f"connection refused by {_where(target, address)}", kind=ErrorKind.CONNECTION_REFUSED
        ) from None
    except TimeoutError as exc:  # the OS gave up (SYN unanswered), not our deadline
        raise CheckFailed(f"connect to {target} timed out: {exc}", kind=ErrorKind.TIMEOUT) from None
    except OSError as exc:  # unreachable network/host, reset during handshake...
        raise CheckFailed(
            f"cannot connect to {_where(target, address)}: {exc.strerror or exc}",
            kind=ErrorKind.CONNECTION_REFUSED,
        ) from None
    connect_time = time.perf_counter() - t0
    peer = writer.get_extra_info("peername")
    details: dict[str, object] = {
        "address": f"{peer[0]}:{peer[1]}" if peer else target,
        "connectTime": round(connect_time, 6),
    }
    try:
        payload = spec.payload()
        if payload:
            # drain() normally returns once the buffer is below a high-water mark; with no mark
            # it waits until everything is handed to the kernel, so abort() below loses nothing.
            writer.transport.set_write_buffer_limits(high=0)
            writer.write(payload)
            await writer.drain()
        data, ended = b"", None
        if spec.expect.reads:
            data, ended = await _read(reader, spec.expect, spec.read_timeout)
            details["received"] = len(data)
    except ssl.SSLError as exc:
        raise CheckFailed(f"TLS error on {target}: {exc}", kind=ErrorKind.TLS) from None
    except ConnectionError as exc:
        raise CheckFailed(
            f"connection to {target} broke while sending: {exc}", kind=ErrorKind.PROTOCOL
        ) from None
    finally:
        # abort, not close: a graceful close can wait on a TLS close_notify the peer never sends.
        writer.transport.abort()
    return _evaluate(spec, data, ended, connect_time, details, ctx.redactor.redact)


def _where(target: str, address: tuple[str, int]) -> str:
    via = f"{address[0]}:{address[1]}"
    return target if via == target else f"{target} (via {via})"


async def _read(
    reader: asyncio.StreamReader, expect: TcpExpect, read_timeout: float
) -> tuple[bytes, str | None]:
    """Read until the expectations hold. Returns the data and why reading stopped early
    (``None`` when they held)."""
    buf = bytearray()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + read_timeout
    while True:
        if _satisfied(expect, _text(buf)):
            return bytes(buf), None
        if len(buf) >= READ_LIMIT:
            return bytes(buf), f"read limit of {READ_LIMIT} bytes reached"
        try:
            async with asyncio.timeout_at(deadline):
                chunk = await reader.read(READ_LIMIT - len(buf))
        except TimeoutError:
            # Silence is only a timeout when we wait for something; `notContains` alone is
            # satisfied by it.
            if not buf and (expect.banner is not None or expect.contains):
                raise CheckFailed(
                    f"connected, but nothing received within {format_duration(read_timeout)}",
                    kind=ErrorKind.TIMEOUT,
                ) from None
            return bytes(buf), f"nothing more within {format_duration(read_timeout)}"
        except ConnectionResetError:
            return bytes(buf), "connection reset by peer"
        if not chunk:
            return bytes(buf), "connection closed by peer"
        buf += chunk


def _text(data: bytes | bytearray) -> str:
    return bytes(data).decode("utf-8", "replace")


def _as_list(v: str | list[str] | None) -> list[str]:
    return [] if v is None else [v] if isinstance(v, str) else v


def _satisfied(expect: TcpExpect, text: str) -> bool:
    # notContains is judged on whatever arrived once reading stops; it never ends the read early
    # unless it is the only expectation, in which case we must wait for the whole answer.
    if expect.banner is None and not expect.contains:
        return False
    if expect.banner is not None and not compiled_regex(expect.banner).search(text):
        return False
    return all(needle in text for needle in _as_list(expect.contains))


def _evaluate(
    spec: TcpSpec,
    data: bytes,
    ended: str | None,
    connect_time: float,
    details: dict[str, object],
    redact: Callable[[str], str],
) -> Outcome:
    """The outcome. What was received is matched as is, and shown redacted before it is
    shortened: the report's own redaction comes too late for a secret already cut in half."""
    expect = spec.expect
    misses: list[Mismatch] = []
    text = _text(data)
    shown = redact(text)
    got = render(_truncate(shown, total=len(text)))
    if ended:
        got = f"{got} ({ended})"
    if not data and ended:
        got = f"nothing ({ended})"
    if expect.banner is not None and not compiled_regex(expect.banner).search(text):
        misses.append(Mismatch("banner", f"matching /{expect.banner}/", got))
    for needle in _as_list(expect.contains):
        if needle not in text:
            misses.append(Mismatch("received", f"containing {render(redact(needle))}", got))
    for needle in _as_list(expect.not_contains):
        if needle in text:
            misses.append(Mismatch("received", f"not containing {render(redact(needle))}", got))
    if expect.latency is not None and connect_time > expect.latency.max:
        misses.append(
            Mismatch(
                "latency",
                f"≤ {format_duration(expect.latency.max)}",
                format_duration(connect_time),
            )
        )
    if not misses:
        return passed(details=details)
    snippet = _truncate(shown, SNIPPET_CHARS, total=len(text)) if data else None
    return failed(misses, snippet=snippet, details=details)


def _truncate(text: str, limit: int = 120, *, total: int | None = None) -> str:
    """The start of ``text``; ``total`` is the length to report (that of the text as received,
    when ``text`` is its redacted form)."""
    total = len(text) if total is None else total
    return text if len(text) <= limit else text[:limit] + f"… ({total} chars)"


SPEC = TcpSpec
