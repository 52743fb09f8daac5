"""The ``tcp`` check against loopback servers: through the CLI (exit code and JSON report) and by
calling ``run`` directly for the finer cases."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError
from tests.helpers import free_port
from tests.servers.tls import Certs, SilentServer, StreamServer, TlsServer

from smokegate.checks import tcp
from smokegate.checks.base import CheckContext, CheckFailed, ErrorKind, Outcome


def spec(**fields: Any) -> tcp.TcpSpec:
    return tcp.TcpSpec.model_validate(fields)


async def run(ctx: CheckContext, **fields: Any) -> Outcome:
    return await tcp.run(spec(**fields), ctx)


# --- through the CLI ---------------------------------------------------------------------------


def test_cli_reports_pass_and_each_failure_kind(run_suite) -> None:
    refused = free_port()
    with (
        StreamServer(banner=b"220 mail.test ESMTP ready\r\n") as smtp,
        SilentServer() as silent,
    ):
        res = run_suite(
            f"""
            - name: greets
              tcp: {{host: 127.0.0.1, port: {smtp.port}, expect: {{banner: '^220 .*ESMTP'}}}}
            - name: wrong-banner
              tcp:
                host: 127.0.0.1
                port: {smtp.port}
                readTimeout: 300ms
                expect: {{banner: '^554 '}}
            - name: refused
              tcp: {{host: 127.0.0.1, port: {refused}}}
            - name: silent
              tcp: {{host: 127.0.0.1, port: {silent.port}, readTimeout: 300ms,
                    expect: {{banner: '^220'}}}}
            - name: unresolvable
              tcp: {{host: no-such-host.invalid, port: 25}}
            """
        )
    assert res.code == 1, res.cli.text
    ok = res.result("greets")
    assert ok["status"] == "passed"
    assert ok["details"]["received"] == len(b"220 mail.test ESMTP ready\r\n")
    assert ok["details"]["address"] == f"127.0.0.1:{smtp.port}"

    bad = res.result("wrong-banner")
    assert bad["status"] == "failed"
    assert bad["errorKind"] == ErrorKind.EXPECTATION
    [ev] = bad["evidence"]
    assert ev["subject"] == "banner"
    assert ev["expected"] == "matching /^554 /"
    assert "220 mail.test ESMTP ready" in ev["actual"]
    assert "nothing more within 300ms" in ev["actual"]
    assert bad["snippet"].startswith("220 mail.test")

    assert res.result("refused")["errorKind"] == ErrorKind.CONNECTION_REFUSED
    assert f"127.0.0.1:{refused}" in res.result("refused")["message"]
    silent_r = res.result("silent")
    assert silent_r["errorKind"] == ErrorKind.TIMEOUT
    assert "nothing received within 300ms" in silent_r["message"]
    assert res.result("unresolvable")["errorKind"] == ErrorKind.DNS
    # The console names the failures too.
    assert "wrong-banner" in res.cli.out and "expected matching /^554 /" in res.cli.out


def test_cli_send_uses_yaml_escapes_and_resolve_override(run_suite) -> None:
    # Double-quoted YAML turns \r\n into CR LF; the server answers only the exact line "PING".
    with StreamServer(replies={b"PING": b"+PONG\r\n"}) as redis:
        res = run_suite(
            f"""
            - name: ping
              tcp:
                host: redis.example.test
                port: {redis.port}
                send: "PING\\r\\n"
                expect: {{banner: '^\\+PONG\\r\\n$'}}
            """,
            "--resolve",
            f"redis.example.test:{redis.port}:127.0.0.1",
        )
    assert res.code == 0, res.cli.text
    assert res.result("ping")["details"]["address"] == f"127.0.0.1:{redis.port}"


def test_cli_check_timeout_shorter_than_read_timeout(run_suite) -> None:
    with SilentServer() as silent:
        res = run_suite(
            f"""
            - name: hangs
              timeout: 400ms
              tcp: {{host: 127.0.0.1, port: {silent.port}, expect: {{banner: x}}}}
            """
        )
    assert res.code == 1
    r = res.result("hangs")
    assert r["errorKind"] == ErrorKind.TIMEOUT
    assert "timed out after 400ms" in r["message"]
    assert r["duration"] < 3


# --- run() directly ----------------------------------------------------------------------------


async def test_connect_only_passes_without_reading(ctx: CheckContext) -> None:
    with SilentServer() as silent:
        outcome = await asyncio.wait_for(run(ctx, host="127.0.0.1", port=silent.port), 2)
    assert outcome.ok
    assert "received" not in outcome.details


async def test_closed_connection_reports_what_arrived(ctx: CheckContext) -> None:
    with StreamServer(banner=b"SSH-2.0-OpenSSH_9.6\r\n", close_after_banner=True) as srv:
        outcome = await run(ctx, host="127.0.0.1", port=srv.port, expect={"banner": "^220"})
    assert not outcome.ok
    [miss] = outcome.evidence
    assert miss.subject == "banner"
    assert "SSH-2.0-OpenSSH_9.6" in miss.actual
    assert "connection closed by peer" in miss.actual


async def test_read_stops_at_limit_and_truncates_evidence(ctx: CheckContext) -> None:
    big = b"x" * (tcp.READ_LIMIT + 10_000)
    with StreamServer(banner=big) as srv:
        outcome = await run(ctx, host="127.0.0.1", port=srv.port, expect={"banner": "never"})
    assert not outcome.ok
    assert outcome.details["received"] == tcp.READ_LIMIT
    [miss] = outcome.evidence
    assert "read limit of 65536 bytes reached" in miss.actual
    assert len(miss.actual) < 400
    assert outcome.snippet is not None and len(outcome.snippet) < 700


async def test_waits_for_slow_banner_within_read_timeout(ctx: CheckContext) -> None:
    with StreamServer(banner=b"READY\n", banner_delay=0.3) as srv:
        outcome = await run(
            ctx, host="127.0.0.1", port=srv.port, readTimeout="3s", expect={"banner": "READY"}
        )
    assert outcome.ok, outcome.message


async def test_all_expectations_reported(ctx: CheckContext) -> None:
    with StreamServer(banner=b"+OK ERROR maintenance\r\n") as srv:
        outcome = await run(
            ctx,
            host="127.0.0.1",
            port=srv.port,
            readTimeout="200ms",
            expect={
                "banner": r"^\+OK",
                "contains": ["ready"],
                "notContains": "ERROR",
                "latency": {"max": 0},
            },
        )
    assert not outcome.ok
    subjects = [(m.subject, m.expected) for m in outcome.evidence]
    assert ("received", 'containing "ready"') in subjects
    assert ("received", 'not containing "ERROR"') in subjects
    assert ("latency", "≤ 0ms") in subjects
    assert not any(m.subject == "banner" for m in outcome.evidence)


async def test_send_hex_sends_raw_bytes(ctx: CheckContext) -> None:
    with StreamServer() as echo:  # echoes each line back
        outcome = await run(
            ctx,
            host="127.0.0.1",
            port=echo.port,
            sendHex="de ad be ef 0a",
            expect={"contains": "\ufffd"},  # 0xde 0xad... is not UTF-8: shown as replacement
        )
    assert outcome.ok, outcome.message
    assert outcome.details["received"] == 5


async def test_tls_with_custom_ca(ctx: CheckContext, certs: Certs) -> None:
    with TlsServer(certs.valid, replies={b"HELLO": b"WORLD\n"}) as srv:
        outcome = await run(
            ctx,
            host="localhost",
            port=srv.port,
            tls={"ca": certs.ca_pem},
            send="HELLO\n",
            expect={"banner": "^WORLD$"},
        )
        assert outcome.ok, outcome.message
        # `tls: true` verifies against the system store, which does not know the test CA.
        with pytest.raises(CheckFailed) as err:
            await run(ctx, host="localhost", port=srv.port, tls=True)
    assert err.value.kind == ErrorKind.TLS
    assert "certificate verify failed" in err.value.message


async def test_tls_to_plain_server_is_a_tls_error(ctx: CheckContext) -> None:
    with StreamServer(banner=b"220 not tls\r\n") as srv, pytest.raises(CheckFailed) as err:
        await run(ctx, host="127.0.0.1", port=srv.port, tls={"verify": False})
    assert err.value.kind == ErrorKind.TLS


async def test_resolve_override_from_context() -> None:
    with StreamServer(banner=b"hi\n") as srv:
        # Keys are lower-case, as the CLI stores them; the spec's host may be any case.
        context = CheckContext(resolve={("db.internal.test", srv.port): "127.0.0.1"})
        outcome = await tcp.run(
            spec(host="DB.internal.test", port=srv.port, expect={"banner": "hi"}), context
        )
    assert outcome.ok, outcome.message


async def test_refused_names_override_address() -> None:
    port = free_port()
    context = CheckContext(resolve={("svc.test", port): "127.0.0.1"})
    with pytest.raises(CheckFailed) as err:
        await tcp.run(spec(host="svc.test", port=port), context)
    assert err.value.kind == ErrorKind.CONNECTION_REFUSED
    assert f"svc.test:{port} (via 127.0.0.1:{port})" in err.value.message


def test_spec_validation() -> None:
    with pytest.raises(ValidationError, match="either `send` or `sendHex`"):
        spec(host="h", port=1, send="a", sendHex="00")
    with pytest.raises(ValidationError, match="invalid banner regex"):
        spec(host="h", port=1, expect={"banner": "("})
    with pytest.raises(ValidationError, match="not valid hex"):
        spec(host="h", port=1, sendHex="zz")
    with pytest.raises(ValidationError):
        spec(host="h", port=70000)
    with pytest.raises(ValidationError, match="Extra inputs"):
        spec(host="h", port=1, readTimout="1s")
