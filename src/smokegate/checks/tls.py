"""``tls``: handshake with a server and check its certificate and protocol.

    - name: api-certificate
      tls:
        host: api.example.com          # port defaults to 443
        expect:
          daysRemaining: 14            # at least 14 days left; or a matcher {gte: 14}
          protocol: [TLSv1.2, TLSv1.3]
          minProtocol: TLSv1.2         # older versions must be refused
          issuer: "Let's Encrypt"

By default the chain must verify (against ``ca`` when given, else the system store) and the
certificate must be valid for ``serverName`` (default ``host``). When the chain does not
verify, a second, non-verifying handshake still fetches the certificate, so the report names
every problem at once: why the chain failed, the certificate's names, how long it has left.

Hostnames are matched against the subjectAltName extension only (as browsers and Python do:
the subject CN is ignored); ``*.`` wildcards cover exactly one leftmost label. A failed chain or
hostname expectation is reported with error kind ``tls``; the other expectations as
``expectation``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import ipaddress
import socket
import ssl
import warnings
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator

from smokegate.checks.base import (
    CheckContext,
    CheckFailed,
    ErrorKind,
    LocalPath,
    Mismatch,
    Outcome,
    Spec,
    failed,
    passed,
)
from smokegate.checks.expect import check_value, compiled_regex, is_matcher, render

Protocol = Literal["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_ORDER = list(_VERSIONS)


class TlsExpect(Spec):
    """What the certificate and the negotiated protocol must be; all are checked."""

    days_remaining: int | dict[str, Any] | None = None
    """Days until the certificate expires: an integer N means at least N, or a matcher such
    as {gte: 30}."""
    hostname_matches: bool = True
    """The certificate must (true) or must not (false) be valid for `serverName`."""
    chain_verifies: bool = True
    """The chain must (true) or must not (false) verify against `ca` or the system store."""
    protocol: Protocol | list[Protocol] | None = None
    """Negotiated protocol version(s) allowed."""
    min_protocol: Protocol | None = None
    """Versions below this must be refused by the server (probed with an extra handshake)."""
    subject: str | None = None
    """Regex searched in the certificate subject, RFC 4514 form (e.g. "CN=api.example.com")."""
    issuer: str | None = None
    """Regex searched in the certificate issuer, RFC 4514 form."""
    sans: list[str] = Field(default_factory=list)
    """Names and IP addresses that must all be in the certificate's subjectAltName."""

    @field_validator("days_remaining")
    @classmethod
    def _days(cls, v: int | dict[str, Any] | None) -> int | dict[str, Any] | None:
        if isinstance(v, dict) and not is_matcher(v):
            raise ValueError("use an integer (at least N days) or a matcher like {gte: 30}")
        return v

    @field_validator("subject", "issuer")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                compiled_regex(v)
            except Exception as exc:
                raise ValueError(f"invalid regex {v!r}: {exc}") from None
        return v


class TlsSpec(Spec):
    """A TLS handshake and what the server's certificate and protocol must be."""

    host: str = Field(min_length=1)
    port: int = Field(default=443, ge=1, le=65535)
    server_name: str | None = None
    """SNI to send and name the certificate must match (default: `host`)."""
    ca: LocalPath | None = None
    """CA bundle (file path, or PEM text) to verify against instead of the system store."""
    client_cert: LocalPath | None = None
    """Client certificate (PEM file) for servers that require mutual TLS."""
    client_key: LocalPath | None = None
    """Private key for `clientCert`, if not in the same file."""
    expect: TlsExpect = Field(default_factory=TlsExpect)


@dataclass(slots=True)
class Peer:
    der: bytes
    protocol: str
    cipher: str
    address: str


@functools.lru_cache(maxsize=64)
def _context(
    verify: bool,
    ca: str | None,
    cert: str | None,
    key: str | None,
    max_version: str | None = None,
) -> ssl.SSLContext:
    try:
        if ca and "-----BEGIN" in ca:
            ctx = ssl.create_default_context(cadata=ca)
        else:
            ctx = ssl.create_default_context(cafile=ca)
        # Hostname checking is done on the certificate afterwards, so a name mismatch never hides
        # a chain problem (OpenSSL stops at the first error it finds).
        ctx.check_hostname = False
        if not verify:
            ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise CheckFailed(f"cannot load TLS files: {exc}", kind=ErrorKind.CONFIG) from None
    if max_version is not None:
        # The downgrade probe must be able to offer versions this OpenSSL disables by default,
        # or it would report "refused" for every server.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        with warnings.catch_warnings():
            # Offering deprecated versions is the point of the probe.
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.maximum_version = _VERSIONS[max_version]
    return ctx


async def _handshake(address: tuple[str, int], ctx: ssl.SSLContext, sni: str, label: str) -> Peer:
    try:
        _, writer = await asyncio.open_connection(
            address[0], address[1], ssl=ctx, server_hostname=sni
        )
    except socket.gaierror as exc:
        raise CheckFailed(f"DNS: cannot resolve {address[0]}: {exc}", kind=ErrorKind.DNS) from None
    except ConnectionRefusedError:
        raise CheckFailed(
            f"connection refused by {label}", kind=ErrorKind.CONNECTION_REFUSED
        ) from None
    except ssl.SSLCertVerificationError:
        raise
    except ssl.SSLError as exc:
        raise CheckFailed(
            f"TLS handshake with {label} failed: {exc.reason or exc}", kind=ErrorKind.TLS
        ) from None
    except (ConnectionResetError, ConnectionAbortedError, EOFError) as exc:
        raise CheckFailed(
            f"{label} closed the connection during the TLS handshake ({exc or type(exc).__name__})",
            kind=ErrorKind.TLS,
        ) from None
    except OSError as exc:
        raise CheckFailed(
            f"cannot connect to {label}: {exc.strerror or exc}", kind=ErrorKind.CONNECTION_REFUSED
        ) from None
    try:
        sslobj = writer.get_extra_info("ssl_object")
        der = sslobj.getpeercert(binary_form=True)
        if not der:
            raise CheckFailed(f"{label} sent no certificate", kind=ErrorKind.TLS)
        peer = writer.get_extra_info("peername")
        return Peer(
            der,
            sslobj.version() or "",
            (sslobj.cipher() or ("",))[0],
            f"{peer[0]}:{peer[1]}" if peer else label,
        )
    finally:
        # abort, not close: we only wanted the handshake, and a graceful TLS close can stall.
        writer.transport.abort()


async def run(spec: TlsSpec, ctx: CheckContext) -> Outcome:
    address = ctx.connect_address(spec.host, spec.port) or (spec.host, spec.port)
    label = f"{spec.host}:{spec.port}"
    sni = spec.server_name or spec.host
    files = (spec.ca, spec.client_cert, spec.client_key)
    chain_error: str | None = None
    try:
        peer = await _handshake(address, _context(True, *files), sni, label)
    except ssl.SSLCertVerificationError as exc:
        chain_error = exc.verify_message or exc.reason or str(exc)
        peer = await _handshake(address, _context(False, *files), sni, label)
    refused_below = None
    if spec.expect.min_protocol is not None:
        refused_below = await _probe_below(spec.expect.min_protocol, address, files, sni, label)
    return _evaluate(spec.expect, peer, sni, chain_error, refused_below)


async def _probe_below(
    minimum: str, address: tuple[str, int], files: tuple[str | None, ...], sni: str, label: str
) -> str | None:
    """The version the server accepted below ``minimum``, or None if it refused them all."""
    below = _ORDER.index(minimum) - 1
    if below < 0:
        return None
    try:
        probe = _context(False, *files, max_version=_ORDER[below])
        peer = await _handshake(address, probe, sni, label)
    except CheckFailed as exc:
        if exc.kind == ErrorKind.TLS:
            return None
        raise
    return peer.protocol or _ORDER[below]


def _evaluate(
    expect: TlsExpect, peer: Peer, sni: str, chain_error: str | None, accepted_below: str | None
) -> Outcome:
    from cryptography import x509

    cert = x509.load_der_x509_certificate(peer.der)
    now = dt.datetime.now(dt.UTC)
    not_after = cert.not_valid_after_utc
    days = int((not_after - now).total_seconds() // 86400)
    sans = _sans(cert)
    subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
    details: dict[str, Any] = {
        "address": peer.address,
        "serverName": sni,
        "notBefore": cert.not_valid_before_utc.isoformat(),
        "notAfter": not_after.isoformat(),
        "daysRemaining": days,
        "subject": subject,
        "issuer": issuer,
        "sans": sans,
        "protocol": peer.protocol,
        "cipher": peer.cipher,
        "serialNumber": format(cert.serial_number, "x"),
        "chainVerified": chain_error is None,
    }
    if chain_error:
        details["chainError"] = chain_error
    misses: list[Mismatch] = []
    if expect.chain_verifies and chain_error:
        misses.append(Mismatch("chain", "verifies", f"does not verify: {chain_error}"))
    elif not expect.chain_verifies and not chain_error:
        misses.append(Mismatch("chain", "does not verify", "verifies"))
    matches = _hostname_matches(cert, sni)
    if matches != expect.hostname_matches:
        want = f"{'' if expect.hostname_matches else 'not '}valid for {sni}"
        misses.append(Mismatch("hostname", want, f"SANs: {', '.join(sans) or 'none'}"))
    tls_problem = bool(misses)
    if expect.days_remaining is not None:
        rule = expect.days_remaining
        rule = {"gte": rule} if isinstance(rule, int) else rule
        miss = check_value("daysRemaining", rule, [days])
        if miss:
            miss.actual = f"{days} (expires {not_after.isoformat()})"
            misses.append(miss)
    if expect.protocol is not None:
        allowed = [expect.protocol] if isinstance(expect.protocol, str) else expect.protocol
        if peer.protocol not in allowed:
            misses.append(Mismatch("protocol", " or ".join(allowed), peer.protocol or "unknown"))
    if expect.min_protocol is not None and accepted_below:
        misses.append(
            Mismatch(
                "minProtocol",
                f"versions below {expect.min_protocol} refused",
                f"{accepted_below} accepted",
            )
        )
    for field, text in (("subject", subject), ("issuer", issuer)):
        pattern = getattr(expect, field)
        if pattern is not None and not compiled_regex(pattern).search(text):
            misses.append(Mismatch(field, f"matching /{pattern}/", render(text)))
    lowered = {s.lower() for s in sans}
    for name in expect.sans:
        if _san_text(name).lower() not in lowered:
            misses.append(Mismatch("sans", f"containing {render(name)}", render(sans)))
    if not misses:
        return passed(details=details)
    outcome = failed(misses, details=details)
    if tls_problem:
        outcome.error_kind = ErrorKind.TLS
    return outcome


def _sans(cert: Any) -> list[str]:
    from cryptography import x509

    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = [str(n) for n in ext.get_values_for_type(x509.DNSName)]
    return names + [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]


def _san_text(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.rstrip(".")


def _hostname_matches(cert: Any, hostname: str) -> bool:
    from cryptography import x509

    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        ip = ipaddress.ip_address(hostname)
    except ValueError:
        name = hostname.rstrip(".").lower()
        return any(_dns_match(p, name) for p in ext.get_values_for_type(x509.DNSName))
    return ip in ext.get_values_for_type(x509.IPAddress)


def _dns_match(pattern: str, name: str) -> bool:
    pattern = pattern.rstrip(".").lower()
    if not pattern.startswith("*."):
        return pattern == name
    # RFC 6125: the wildcard is the whole leftmost label and stands for exactly one label; it
    # never covers a bare public suffix ("*.com").
    rest = pattern[2:]
    first, _, tail = name.partition(".")
    return bool(first) and "." in rest and tail == rest


SPEC = TlsSpec
# Imported by the engine before the run starts (see engine.runner._run_fns).
PRELOAD = ("cryptography.x509",)
