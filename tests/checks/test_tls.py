"""The ``tls`` check against loopback TLS servers presenting trustme certificates."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from tests.helpers import free_port
from tests.servers.tls import Certs, SilentServer, StreamServer, TlsServer

from smokegate.checks import tls
from smokegate.checks.base import CheckContext, CheckFailed, ErrorKind, Outcome


def spec(**fields: Any) -> tls.TlsSpec:
    return tls.TlsSpec.model_validate(fields)


async def run(ctx: CheckContext, **fields: Any) -> Outcome:
    return await tls.run(spec(**fields), ctx)


# --- through the CLI ---------------------------------------------------------------------------


def test_cli_valid_expired_wrong_host_expiring(run_suite, certs: Certs, tmp_path: Path) -> None:
    certs.write_ca(tmp_path)  # the suite names it relative to itself: `ca: ca.pem`
    with (
        TlsServer(certs.valid) as good,
        TlsServer(certs.expired) as expired,
        TlsServer(certs.other_host) as other,
        TlsServer(certs.expiring) as expiring,
    ):
        res = run_suite(
            f"""
            - name: good
              tls: {{host: localhost, port: {good.port}, ca: ca.pem,
                    expect: {{daysRemaining: 30, protocol: TLSv1.3}}}}
            - name: expired
              tls: {{host: localhost, port: {expired.port}, ca: ca.pem,
                    expect: {{daysRemaining: 14}}}}
            - name: other-host
              tls: {{host: localhost, port: {other.port}, ca: ca.pem}}
            - name: expiring
              tls: {{host: localhost, port: {expiring.port}, ca: ca.pem,
                    expect: {{daysRemaining: {{gte: 14}}}}}}
            """
        )
    assert res.code == 1, res.cli.text

    good_r = res.result("good")
    assert good_r["status"] == "passed", res.cli.text
    d = good_r["details"]
    assert d["sans"] == ["localhost", "127.0.0.1"]
    assert d["protocol"] == "TLSv1.3" and d["cipher"]
    assert d["daysRemaining"] > 300 and d["chainVerified"] is True
    assert "CN=localhost" in d["subject"] and "smokegate test CA" in d["issuer"]
    assert dt.datetime.fromisoformat(d["notAfter"]) > dt.datetime.now(dt.UTC)

    exp = res.result("expired")
    assert exp["status"] == "failed"
    assert exp["errorKind"] == ErrorKind.TLS
    by_subject = {e["subject"]: e for e in exp["evidence"]}
    assert by_subject["chain"]["actual"] == "does not verify: certificate has expired"
    # The non-verifying fallback still read the certificate: expiry is reported precisely.
    assert by_subject["daysRemaining"]["expected"] == "≥ 14"
    assert by_subject["daysRemaining"]["actual"].startswith("-")
    assert exp["details"]["daysRemaining"] < 0
    assert exp["details"]["chainError"] == "certificate has expired"

    oth = res.result("other-host")
    assert oth["errorKind"] == ErrorKind.TLS
    [ev] = oth["evidence"]
    assert ev == {
        "subject": "hostname",
        "expected": "valid for localhost",
        "actual": "SANs: other.test, *.other.test",
    }

    soon = res.result("expiring")
    assert soon["errorKind"] == ErrorKind.EXPECTATION
    [ev] = soon["evidence"]
    assert ev["subject"] == "daysRemaining" and ev["actual"].startswith("5 ")


def test_cli_resolve_keeps_sni_and_timeout(run_suite, certs: Certs, tmp_path: Path) -> None:
    ca = certs.write_ca(tmp_path / "..")  # an absolute path outside the suite's directory
    with TlsServer(certs.other_host) as srv, SilentServer() as silent:
        res = run_suite(
            f"""
            - name: via-resolve
              tls:
                host: api.other.test
                port: {srv.port}
                ca: {ca}
                expect: {{sans: [other.test]}}
            - name: hangs
              timeout: 500ms
              tls: {{host: 127.0.0.1, port: {silent.port}}}
            """,
            "--resolve",
            f"api.other.test:{srv.port}:127.0.0.1",
        )
    assert res.code == 1, res.cli.text
    ok = res.result("via-resolve")
    assert ok["status"] == "passed", res.cli.text
    assert ok["details"]["serverName"] == "api.other.test"  # matched by *.other.test
    assert ok["details"]["address"] == f"127.0.0.1:{srv.port}"
    hang = res.result("hangs")
    assert hang["errorKind"] == ErrorKind.TIMEOUT
    assert "timed out after 500ms" in hang["message"]


# --- run() directly ----------------------------------------------------------------------------


async def test_protocol_and_min_protocol(ctx, certs: Certs) -> None:
    with TlsServer(certs.valid, max_version=ssl.TLSVersion.TLSv1_2) as old:
        outcome = await run(
            ctx,
            host="127.0.0.1",
            port=old.port,
            ca=certs.ca_pem,
            expect={"protocol": "TLSv1.3", "minProtocol": "TLSv1.3"},
        )
        assert not outcome.ok
        assert outcome.error_kind == ErrorKind.EXPECTATION
        assert [(m.subject, m.actual) for m in outcome.evidence] == [
            ("protocol", "TLSv1.2"),
            ("minProtocol", "TLSv1.2 accepted"),
        ]
        assert (
            await run(
                ctx,
                host="127.0.0.1",
                port=old.port,
                ca=certs.ca_pem,
                expect={"protocol": ["TLSv1.2", "TLSv1.3"], "minProtocol": "TLSv1.2"},
            )
        ).ok
    with TlsServer(certs.valid, min_version=ssl.TLSVersion.TLSv1_3) as modern:
        outcome = await run(
            ctx,
            host="127.0.0.1",
            port=modern.port,
            ca=certs.ca_pem,
            expect={"minProtocol": "TLSv1.3"},
        )
        assert outcome.ok, outcome.message
        assert modern.connections == 2  # the check itself, and the refused downgrade probe


async def test_inverted_expectations_and_names(ctx, certs: Certs) -> None:
    with TlsServer(certs.other_host) as srv:
        # No `ca`: the system store does not know the test CA.
        outcome = await run(
            ctx,
            host="127.0.0.1",
            port=srv.port,
            expect={
                "chainVerifies": False,
                "hostnameMatches": False,
                "issuer": "smokegate test CA",
                "sans": ["*.other.test", "OTHER.test."],
            },
        )
        assert outcome.ok, outcome.message
        assert "unable to get local issuer certificate" in outcome.details["chainError"]

        outcome = await run(
            ctx,
            host="127.0.0.1",
            port=srv.port,
            serverName="x.other.test",
            ca=certs.ca_pem,
            expect={
                "chainVerifies": False,
                "hostnameMatches": False,
                "subject": "CN=nope",
                "sans": ["localhost"],
            },
        )
    assert not outcome.ok
    assert [m.subject for m in outcome.evidence] == ["chain", "hostname", "subject", "sans"]
    assert outcome.error_kind == ErrorKind.TLS


async def test_server_name_overrides_host(ctx, certs: Certs) -> None:
    with TlsServer(certs.other_host) as srv:
        outcome = await run(
            ctx, host="127.0.0.1", port=srv.port, serverName="deep.other.test", ca=certs.ca_pem
        )
        assert outcome.ok, outcome.message
        # A wildcard covers one label only.
        outcome = await run(
            ctx, host="127.0.0.1", port=srv.port, serverName="a.b.other.test", ca=certs.ca_pem
        )
    assert not outcome.ok
    assert outcome.evidence[0].subject == "hostname"


async def test_mutual_tls(ctx, certs: Certs, tmp_path: Path) -> None:
    client_pem = certs.write_client(tmp_path)
    # TLS 1.2: the server's demand for a client certificate is part of the handshake.
    with TlsServer(certs.valid, client_ca=certs.ca, max_version=ssl.TLSVersion.TLSv1_2) as srv:
        with pytest.raises(CheckFailed) as err:
            await run(ctx, host="localhost", port=srv.port, ca=certs.ca_pem)
        assert err.value.kind == ErrorKind.TLS
        assert "handshake" in err.value.message
        outcome = await run(
            ctx, host="localhost", port=srv.port, ca=certs.ca_pem, clientCert=str(client_pem)
        )
    assert outcome.ok, outcome.message


async def test_connection_failures(ctx) -> None:
    port = free_port()
    with pytest.raises(CheckFailed) as err:
        await run(ctx, host="127.0.0.1", port=port)
    assert err.value.kind == ErrorKind.CONNECTION_REFUSED
    with pytest.raises(CheckFailed) as err:
        await run(ctx, host="no-such-host.invalid", port=443)
    assert err.value.kind == ErrorKind.DNS
    with (
        StreamServer(banner=b"220 plain text, not TLS\r\n") as plain,
        pytest.raises(CheckFailed) as err,
    ):
        await run(ctx, host="127.0.0.1", port=plain.port)
    assert err.value.kind == ErrorKind.TLS
    assert "handshake" in err.value.message


async def test_silent_server_is_left_to_the_attempt_timeout(ctx) -> None:
    with SilentServer() as silent, pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await run(ctx, host="127.0.0.1", port=silent.port)


async def test_unreadable_ca_is_a_config_error(ctx, tmp_path: Path) -> None:
    with pytest.raises(CheckFailed) as err:
        await run(ctx, host="127.0.0.1", port=free_port(), ca=str(tmp_path / "missing.pem"))
    assert err.value.kind == ErrorKind.CONFIG


def test_spec_validation() -> None:
    assert spec(host="h").port == 443
    assert spec(host="h", expect={"daysRemaining": 7}).expect.days_remaining == 7
    with pytest.raises(ValidationError, match="matcher"):
        spec(host="h", expect={"daysRemaining": {"min": 3}})
    with pytest.raises(ValidationError):
        spec(host="h", expect={"protocol": "SSLv3"})
    with pytest.raises(ValidationError, match="invalid regex"):
        spec(host="h", expect={"issuer": "["})
