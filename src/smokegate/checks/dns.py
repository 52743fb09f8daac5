"""``dns``: resolve a name and check the rcode and the answers.

    - name: api-resolves
      dns:
        name: api.example.com
        type: A
        expect:
          contains: [203.0.113.10]

    - name: srv-published
      dns:
        name: _grpc._tcp.api.svc.cluster.local
        type: SRV
        nameserver: 10.96.0.10          # ask this server directly (port 53 unless `port`)
        expect:
          equals: ["0 100 8443 api.svc.cluster.local"]

    - name: old-name-gone
      dns: {name: legacy.example.com, expect: {rcode: NXDOMAIN}}

Without ``nameserver`` the system resolver configuration is used (resolv.conf nameservers and
search domains, retries). With it, exactly one question goes to that server (UDP, retried over
TCP when the answer is truncated) and its answer is judged as is, which is what you want when
checking one particular server.

Answers are compared in a normalized text form: A/AAAA the address, CNAME/NS/PTR the target
without trailing dot, MX "preference exchange", SRV "priority weight port target", TXT the
strings joined, CAA/SOA as in zone files. Names compare case-insensitively.

With the default expectations (``rcode: NOERROR`` and nothing about the answers) at least one
record of the type is required: a name with no A record does not "resolve". An unexpected
rcode is reported with error kind ``dns``, wrong answers as ``expectation``.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import Field, field_validator

from smokegate.checks.base import (
    CheckContext,
    CheckFailed,
    ErrorKind,
    Mismatch,
    Outcome,
    Spec,
    failed,
    passed,
)
from smokegate.checks.expect import check_value, is_matcher, render
from smokegate.core.durations import format_duration
from smokegate.suite.model import Duration

RecordType = Literal["A", "AAAA", "CNAME", "SRV", "TXT", "MX", "NS", "PTR", "CAA", "SOA"]
Rcode = Literal["NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", "FORMERR", "NOTIMP"]


class DnsExpect(Spec):
    """What the answer must be; every expectation given is checked."""

    rcode: Rcode = "NOERROR"
    """The response code the answer must carry."""
    contains: list[str] = Field(default_factory=list)
    """Values that must all be among the answers (others may be present too)."""
    equals: list[str] | None = None
    """The exact set of answers, in any order."""
    count: int | dict[str, Any] | None = None
    """Number of answers: an integer, or a matcher such as {gte: 2}."""
    empty: bool | None = None
    """true: no answer of the type (NODATA or NXDOMAIN); false: at least one."""
    ttl: int | dict[str, Any] | None = None
    """TTL of the answer set: an integer, or a matcher such as {lte: 300}."""

    @field_validator("count", "ttl")
    @classmethod
    def _matcher(cls, v: int | dict[str, Any] | None) -> int | dict[str, Any] | None:
        if isinstance(v, dict) and not is_matcher(v):
            raise ValueError("use an integer or a matcher like {gte: 1}")
        return v


class DnsSpec(Spec):
    """A DNS question and what its answer must be."""

    name: str = Field(min_length=1)
    """The name to query. For `type: PTR` an IP address is turned into its reverse name."""
    type: RecordType = "A"
    nameserver: str | None = None
    """IP address of a server to ask directly instead of the system resolver."""
    port: int = Field(default=53, ge=1, le=65535)
    """Port of `nameserver`."""
    tcp: bool = False
    """Ask over TCP instead of UDP."""
    timeout: Duration = 5.0
    """How long to wait for the answer (all retries included)."""
    expect: DnsExpect = Field(default_factory=DnsExpect)

    @field_validator("nameserver")
    @classmethod
    def _ip(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ipaddress.ip_address(v)
            except ValueError:
                raise ValueError(f"nameserver must be an IP address, got {v!r}") from None
        return v

    @field_validator("name")
    @classmethod
    def _name_valid(cls, v: str) -> str:
        import dns.name

        try:
            dns.name.from_text(v)
        except Exception as exc:
            raise ValueError(f"invalid DNS name {v!r}: {exc}") from None
        return v


async def run(spec: DnsSpec, ctx: CheckContext) -> Outcome:
    import dns.exception
    import dns.rcode

    qname = _qname(spec)
    server = f"{spec.nameserver}:{spec.port}" if spec.nameserver else "system resolver"
    transport = "tcp" if spec.tcp else "udp"
    try:
        if spec.nameserver:
            response, transport = await _ask_server(spec, qname)
        else:
            response = await _ask_system(spec, qname)
    except dns.exception.Timeout:
        raise CheckFailed(
            f"no DNS answer from {server} within {format_duration(spec.timeout)}",
            kind=ErrorKind.TIMEOUT,
        ) from None
    except ConnectionRefusedError:
        raise CheckFailed(
            f"DNS server {server} refused the connection", kind=ErrorKind.CONNECTION_REFUSED
        ) from None
    except (OSError, dns.exception.DNSException) as exc:
        raise CheckFailed(f"DNS query to {server} failed: {exc}", kind=ErrorKind.DNS) from None
    rcode = dns.rcode.to_text(response.rcode())
    answers, ttl, cnames = _answers(response, spec.type)
    details: dict[str, Any] = {
        "query": f"{qname} {spec.type}",
        "server": server,
        "transport": transport,
        "rcode": rcode,
        "answers": answers,
    }
    if cnames:
        details["cnames"] = cnames
    if ttl is not None:
        details["ttl"] = ttl
    misses = _evaluate(spec.expect, spec.type, rcode, answers, ttl)
    if not misses:
        return passed(details=details)
    outcome = failed(misses, snippet=_zone_text(response), details=details)
    if rcode != spec.expect.rcode:
        # The name does not resolve (or resolves when it should not): a DNS problem, reported
        # under the same kind as an HTTP check's unresolvable host.
        outcome.error_kind = ErrorKind.DNS
    return outcome


def _qname(spec: DnsSpec) -> str:
    if spec.type == "PTR":
        try:
            import dns.reversename

            return dns.reversename.from_address(spec.name).to_text()
        except Exception:  # not an IP address: the name is already a reverse name
            pass
    return spec.name


async def _ask_server(spec: DnsSpec, qname: str) -> tuple[Any, str]:
    """The server's response and the transport that carried it."""
    import dns.asyncquery
    import dns.message

    assert spec.nameserver is not None
    query = dns.message.make_query(qname, spec.type)
    if spec.tcp:
        return await dns.asyncquery.tcp(query, spec.nameserver, spec.timeout, spec.port), "tcp"
    response, used_tcp = await dns.asyncquery.udp_with_fallback(
        query, spec.nameserver, spec.timeout, spec.port
    )
    return response, "tcp" if used_tcp else "udp"


def _system_resolver() -> Any:
    # A seam for tests: they point this at a local server to exercise the resolver path.
    import dns.asyncresolver

    return dns.asyncresolver.Resolver()


async def _ask_system(spec: DnsSpec, qname: str) -> Any:
    import dns.resolver

    resolver = _system_resolver()
    # No cache: a smoke check must see what the servers say now, not what they said last time.
    resolver.cache = None
    try:
        answer = await resolver.resolve(
            qname, spec.type, tcp=spec.tcp, raise_on_no_answer=False, lifetime=spec.timeout
        )
    except dns.resolver.NXDOMAIN as exc:
        return exc.response(exc.qnames()[-1])
    except dns.resolver.NoNameservers as exc:
        # Every server answered badly (SERVFAIL, REFUSED...): that answer is still the result
        # to judge; only when none answered at all is it an error.
        for *_, response in reversed(exc.kwargs.get("errors", [])):
            if response is not None:
                return response
        raise
    return answer.response


def _answers(response: Any, rtype: str) -> tuple[list[str], int | None, list[str]]:
    import dns.rdatatype

    try:
        chain = response.resolve_chaining()
    except Exception:  # malformed chain or no question: judge the answer section as is
        rrsets = [r for r in response.answer if dns.rdatatype.to_text(r.rdtype) == rtype]
        rrset = rrsets[0] if rrsets else None
        cnames: list[str] = []
    else:
        rrset = chain.answer
        cnames = [_name(rd.target) for rs in chain.cnames for rd in rs]
        if rtype == "CNAME":
            # Asking for CNAME: the alias record itself is the answer, not something to follow.
            rrset = next((r for r in response.answer if r.rdtype == dns.rdatatype.CNAME), None)
            cnames = []
    if rrset is None:
        return [], None, cnames
    return [_render_rdata(rd, rtype) for rd in rrset], rrset.ttl, cnames


def _name(n: Any) -> str:
    return n.to_text(omit_final_dot=True).lower()


def _render_rdata(rd: Any, rtype: str) -> str:
    if rtype in ("A", "AAAA"):
        return str(ipaddress.ip_address(rd.address))
    if rtype in ("CNAME", "NS", "PTR"):
        return _name(rd.target)
    if rtype == "MX":
        return f"{rd.preference} {_name(rd.exchange)}"
    if rtype == "SRV":
        return f"{rd.priority} {rd.weight} {rd.port} {_name(rd.target)}"
    if rtype == "TXT":
        return b"".join(rd.strings).decode("utf-8", "replace")
    return rd.to_text()


def _normalize(value: str, rtype: str) -> str:
    """User-written values in the same form as rendered answers."""
    value = str(value).strip()
    if rtype in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value
    if rtype in ("CNAME", "NS", "PTR"):
        return value.rstrip(".").lower()
    if rtype in ("MX", "SRV"):
        *nums, target = value.split() or [""]
        return " ".join([*nums, target.rstrip(".").lower()])
    return value


def _evaluate(
    expect: DnsExpect, rtype: str, rcode: str, answers: list[str], ttl: int | None
) -> list[Mismatch]:
    misses: list[Mismatch] = []
    shown = render(answers) if answers else "no answers"
    if rcode != expect.rcode:
        misses.append(Mismatch("rcode", expect.rcode, f"{rcode} ({shown})"))
    have = set(answers)
    for value in expect.contains:
        if _normalize(value, rtype) not in have:
            misses.append(Mismatch(f"{rtype} answers", f"containing {render(value)}", shown))
    if expect.equals is not None:
        want = {_normalize(v, rtype) for v in expect.equals}
        if want != have:
            misses.append(Mismatch(f"{rtype} answers", render(sorted(want)), shown))
    if expect.count is not None:
        miss = check_value(f"{rtype} answer count", expect.count, [len(answers)])
        if miss:
            misses.append(miss)
    if expect.ttl is not None:
        miss = check_value("ttl", expect.ttl, [] if ttl is None else [ttl])
        if miss:
            misses.append(miss)
    empty = expect.empty
    bare = not expect.contains and expect.equals is None and expect.count is None
    if empty is None and expect.rcode == "NOERROR" and bare:
        # A bare "does it resolve" check: NOERROR with no record of the type is not enough.
        empty = False
    if empty is True and answers:
        misses.append(Mismatch(f"{rtype} answers", "none", shown))
    elif empty is False and not answers and rcode == expect.rcode:
        misses.append(Mismatch(f"{rtype} answers", "at least one", "none (NODATA)"))
    return misses


def _zone_text(response: Any) -> str:
    """The answer as dig would show it, for the report's snippet."""
    lines = [rrset.to_text() for rrset in response.answer]
    if not lines:
        lines = [rrset.to_text() for rrset in response.authority]
    return "\n".join(lines)[:1024]


SPEC = DnsSpec
# Imported by the engine before the run starts (see engine.runner._run_fns).
PRELOAD = ("dns.asyncquery", "dns.asyncresolver", "dns.message", "dns.rdatatype", "dns.rcode")
