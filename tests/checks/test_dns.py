"""The ``dns`` check against a real dnsmasq on a loopback port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from tests.servers.dnsmasq import DnsmasqServer

from smokegate.checks import dns as dnscheck
from smokegate.checks.base import CheckContext, CheckFailed, ErrorKind, Outcome

# Enough A records that the answer exceeds 512 bytes: UDP comes back truncated.
BIG = [f"10.1.0.{i}" for i in range(1, 61)]


@pytest.fixture(scope="module")
def dnsmasq() -> Iterator[DnsmasqServer]:
    with DnsmasqServer(
        hosts={
            "a.test": ["10.0.0.1", "10.0.0.2", "fd00::1"],
            "mail.test": ["10.0.0.25"],
            "big.test": BIG,
        },
        cnames={"alias.test": "a.test", "alias2.test": "alias.test"},
        srv=[
            ("_http._tcp.svc.test", "a.test", 8080, 10, 20),
            ("_http._tcp.svc.test", "mail.test", 8081, 20, 5),
        ],
        txt={"txt.test": ["v=spf1 ", "-all"]},
        mx=[("mx.test", "mail.test", 10)],
        ttl=120,
    ) as server:
        yield server


def spec(server: DnsmasqServer | None, **fields: Any) -> dnscheck.DnsSpec:
    if server is not None:
        fields = {"nameserver": "127.0.0.1", "port": server.port, **fields}
    return dnscheck.DnsSpec.model_validate(fields)


async def run(ctx: CheckContext, server: DnsmasqServer | None, **fields: Any) -> Outcome:
    return await dnscheck.run(spec(server, **fields), ctx)


# --- through the CLI ---------------------------------------------------------------------------


def test_cli_record_types_and_failures(run_suite, dnsmasq: DnsmasqServer) -> None:
    ns = f"nameserver: 127.0.0.1, port: {dnsmasq.port}"
    res = run_suite(
        f"""
        - name: a
          dns: {{name: a.test, {ns}, expect: {{contains: [10.0.0.1, 10.0.0.2], count: 2}}}}
        - name: aaaa
          dns: {{name: a.test, type: AAAA, {ns}, expect: {{equals: ["fd00:0:0::1"]}}}}
        - name: cname
          dns: {{name: alias.test, type: CNAME, {ns}, expect: {{equals: [A.TEST.]}}}}
        - name: a-via-cname
          dns: {{name: alias2.test, {ns}, expect: {{equals: [10.0.0.2, 10.0.0.1]}}}}
        - name: srv
          dns:
            name: _http._tcp.svc.test
            type: SRV
            nameserver: 127.0.0.1
            port: {dnsmasq.port}
            expect:
              equals: ["20 5 8081 mail.test", "10 20 8080 a.test."]
              ttl: {{lte: 120}}
        - name: txt
          dns: {{name: txt.test, type: TXT, {ns}, expect: {{equals: ["v=spf1 -all"]}}}}
        - name: mx
          dns: {{name: mx.test, type: MX, {ns}, expect: {{contains: ["10 mail.test"]}}}}
        - name: ptr
          dns: {{name: 10.0.0.25, type: PTR, {ns}, expect: {{equals: [mail.test]}}}}
        - name: gone
          dns: {{name: nothing.test, {ns}, expect: {{rcode: NXDOMAIN}}}}
        - name: wrong-address
          dns: {{name: a.test, {ns}, expect: {{contains: [10.9.9.9]}}}}
        - name: missing-name
          dns: {{name: missing.test, {ns}}}
        - name: no-mx
          dns: {{name: a.test, type: MX, {ns}}}
        - name: too-few
          dns: {{name: a.test, {ns}, expect: {{count: {{gte: 3}}}}}}
        """
    )
    assert res.code == 1, res.cli.text
    statuses = {r["name"]: r["status"] for r in res.results}
    assert statuses == {
        "a": "passed",
        "aaaa": "passed",
        "cname": "passed",
        "a-via-cname": "passed",
        "srv": "passed",
        "txt": "passed",
        "mx": "passed",
        "ptr": "passed",
        "gone": "passed",
        "wrong-address": "failed",
        "missing-name": "failed",
        "no-mx": "failed",
        "too-few": "failed",
    }, res.cli.text

    a = res.result("a")["details"]
    assert sorted(a["answers"]) == ["10.0.0.1", "10.0.0.2"]
    assert a["rcode"] == "NOERROR" and a["ttl"] == 120
    assert a["server"] == f"127.0.0.1:{dnsmasq.port}"
    assert res.result("a-via-cname")["details"]["cnames"] == ["alias.test", "a.test"]
    assert sorted(res.result("srv")["details"]["answers"]) == [
        "10 20 8080 a.test",
        "20 5 8081 mail.test",
    ]

    wrong = res.result("wrong-address")
    assert wrong["errorKind"] == ErrorKind.EXPECTATION
    [ev] = wrong["evidence"]
    assert ev["expected"] == 'containing "10.9.9.9"'
    assert "10.0.0.1" in ev["actual"] and "10.0.0.2" in ev["actual"]
    assert "10.0.0.1" in wrong["snippet"]  # the answer section, dig style

    missing = res.result("missing-name")
    assert missing["errorKind"] == ErrorKind.DNS
    [ev] = missing["evidence"]
    assert ev == {"subject": "rcode", "expected": "NOERROR", "actual": "NXDOMAIN (no answers)"}
    [ev] = res.result("no-mx")["evidence"]
    assert ev["expected"] == "at least one" and "NODATA" in ev["actual"]
    [ev] = res.result("too-few")["evidence"]
    assert ev["subject"] == "A answer count" and ev["actual"] == "2"


# --- run() directly ----------------------------------------------------------------------------


async def test_truncated_udp_answer_is_retried_over_tcp(ctx, dnsmasq) -> None:
    outcome = await run(ctx, dnsmasq, name="big.test", expect={"count": len(BIG)})
    assert outcome.ok, outcome.message
    assert outcome.details["transport"] == "tcp"
    assert set(outcome.details["answers"]) == set(BIG)


async def test_tcp_only(ctx, dnsmasq) -> None:
    outcome = await run(ctx, dnsmasq, name="a.test", tcp=True, expect={"contains": ["10.0.0.1"]})
    assert outcome.ok, outcome.message
    assert outcome.details["transport"] == "tcp"


async def test_every_mismatch_reported(ctx, dnsmasq) -> None:
    outcome = await run(
        ctx,
        dnsmasq,
        name="a.test",
        expect={"equals": ["10.0.0.1"], "count": 1, "ttl": {"lte": 30}, "contains": ["10.0.0.3"]},
    )
    assert not outcome.ok
    assert [m.subject for m in outcome.evidence] == [
        "A answers",
        "A answers",
        "A answer count",
        "ttl",
    ]


async def test_empty_expectation(ctx, dnsmasq) -> None:
    assert (await run(ctx, dnsmasq, name="mx.test", type="A", expect={"empty": True})).ok
    outcome = await run(ctx, dnsmasq, name="a.test", expect={"empty": True})
    assert not outcome.ok
    assert outcome.evidence[0].expected == "none"


async def test_rcode_refused_for_names_it_does_not_serve(ctx, dnsmasq) -> None:
    # dnsmasq forwards nothing: outside its local domain it refuses.
    outcome = await run(ctx, dnsmasq, name="example.com")
    assert not outcome.ok
    assert outcome.details["rcode"] == "REFUSED"
    assert (await run(ctx, dnsmasq, name="example.com", expect={"rcode": "REFUSED"})).ok


async def test_timeout_when_server_never_answers(ctx) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mute:
        mute.bind(("127.0.0.1", 0))
        port = mute.getsockname()[1]
        with pytest.raises(CheckFailed) as err:
            await dnscheck.run(
                dnscheck.DnsSpec(name="a.test", nameserver="127.0.0.1", port=port, timeout=0.3),
                ctx,
            )
    assert err.value.kind == ErrorKind.TIMEOUT
    assert f"127.0.0.1:{port} within 300ms" in err.value.message


@pytest.fixture
def system_resolver(monkeypatch: pytest.MonkeyPatch, dnsmasq: DnsmasqServer) -> None:
    """Point the "system resolver" path at dnsmasq (the real resolv.conf is not ours)."""
    import dns.asyncresolver

    def factory() -> Any:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = dnsmasq.port
        return resolver

    monkeypatch.setattr(dnscheck, "_system_resolver", factory)


async def test_system_resolver_path(ctx, system_resolver) -> None:
    ok = await run(ctx, None, name="alias.test", expect={"equals": ["10.0.0.1", "10.0.0.2"]})
    assert ok.ok, ok.message
    assert ok.details["server"] == "system resolver"
    assert ok.details["cnames"] == ["a.test"]

    nx = await run(ctx, None, name="nothing.test")
    assert not nx.ok
    assert nx.details["rcode"] == "NXDOMAIN"
    assert (await run(ctx, None, name="nothing.test", expect={"rcode": "NXDOMAIN"})).ok

    nodata = await run(ctx, None, name="mx.test", type="AAAA")
    assert not nodata.ok and nodata.details["rcode"] == "NOERROR"

    # Every server refusing is still an answer to judge, not an error.
    refused = await run(ctx, None, name="example.com", expect={"rcode": "REFUSED"})
    assert refused.ok, refused.message


def test_spec_validation() -> None:
    with pytest.raises(ValidationError, match="nameserver must be an IP address"):
        dnscheck.DnsSpec(name="a.test", nameserver="dns.google")
    with pytest.raises(ValidationError, match="matcher"):
        dnscheck.DnsSpec.model_validate({"name": "a.test", "expect": {"count": {"atLeast": 1}}})
    with pytest.raises(ValidationError, match="invalid DNS name"):
        dnscheck.DnsSpec(name="a..test")
    with pytest.raises(ValidationError):
        dnscheck.DnsSpec.model_validate({"name": "a.test", "type": "ANY"})
