"""Credentials never reach an output: console, JSON, JUnit, Markdown, HTML, or a log.

Each test puts unique passwords where drivers and servers echo them back (a malformed DSN that
libpq quotes, a query or command whose result or error contains the value, a server that quotes
the token it rejected) and where nobody marked them secret (inline DSNs and URLs), then looks
for the value, raw and URL-encoded, in everything the run produced. Each test also checks that
the mask shows up where the value would have been, so a test cannot pass by never producing
the value in the first place.
"""

from __future__ import annotations

import logging
import uuid
from urllib.parse import quote, quote_plus

import pytest

from tests.protocols.conftest import Run, SuiteRunner, evidence, suite_vars
from tests.servers.grpc_health import GrpcHealthServer
from tests.servers.mariadb import MariaDBServer
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer


def fresh(prefix: str = "pw") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def assert_nowhere(run: Run, caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    haystacks = {**run.outputs, "captured log": caplog.text}
    for secret in secrets:
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            for name, text in haystacks.items():
                assert form not in text, f"{form!r} leaked into {name}"


@pytest.fixture(autouse=True)
def _capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def test_postgres(
    run_suite: SuiteRunner, postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    pg = postgres
    echoed, inline = fresh(), fresh()
    run = run_suite(
        f"""
        - name: uses-secret-var
          postgres: {{host: 127.0.0.1, port: {pg.port}, user: {pg.user}, password: "${{pw}}",
                      database: postgres}}
        - name: value-echoed-in-evidence
          postgres:
            dsn: "{pg.dsn()}"
            query: SELECT '${{pw}}' AS leaked
            expect: {{columns: {{leaked: nope}}}}
        - name: value-echoed-in-server-error
          postgres: {{dsn: "{pg.dsn()}", query: 'SELECT * FROM "${{pw}}"'}}
        - name: malformed-dsn-echoed-by-libpq
          postgres: {{dsn: "postgresql//smoke:{echoed}@127.0.0.1/postgres"}}
        - name: inline-dsn-wrong-password
          postgres: {{dsn: "postgresql://smoke:{inline}@127.0.0.1:{pg.port}/postgres"}}
        """,
        extra_spec=suite_vars(secret={"pw": pg.password}),
    )
    assert run.result("uses-secret-var")["status"] == "passed"
    assert evidence(run.result("value-echoed-in-evidence"))["column leaked"][1] == '"***"'
    assert "***" in run.result("value-echoed-in-server-error")["message"]
    assert "***" in run.result("malformed-dsn-echoed-by-libpq")["message"]
    assert run.result("inline-dsn-wrong-password")["errorKind"] == "auth"
    assert_nowhere(run, caplog, pg.password, echoed, inline)


def test_mysql(
    run_suite: SuiteRunner, mariadb: MariaDBServer, caplog: pytest.LogCaptureFixture
) -> None:
    db = mariadb
    inline = fresh()
    run = run_suite(
        f"""
        - name: uses-secret-var
          mysql: {{host: 127.0.0.1, port: {db.port}, user: {db.user}, password: "${{pw}}"}}
        - name: value-echoed-in-evidence
          mysql:
            dsn: "{db.dsn()}"
            query: SELECT '${{pw}}' AS leaked
            expect: {{columns: {{leaked: nope}}}}
        - name: value-echoed-in-server-error
          mysql: {{dsn: "{db.dsn()}", query: "SELECT * FROM `${{pw}}`"}}
        - name: inline-dsn-wrong-password
          mysql: {{dsn: "mysql://smoke:{inline}@127.0.0.1:{db.port}/app"}}
        """,
        extra_spec=suite_vars(secret={"pw": db.password}),
    )
    assert run.result("uses-secret-var")["status"] == "passed"
    assert evidence(run.result("value-echoed-in-evidence"))["column leaked"][1] == '"***"'
    assert "***" in run.result("value-echoed-in-server-error")["message"]
    assert run.result("inline-dsn-wrong-password")["errorKind"] == "auth"
    assert_nowhere(run, caplog, db.password, inline)


def test_redis(
    run_suite: SuiteRunner, redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    r = redis
    inline = fresh()
    run = run_suite(
        f"""
        - name: uses-secret-var
          redis: {{host: 127.0.0.1, port: {r.port}, password: "${{pw}}"}}
        - name: value-echoed-in-reply
          redis:
            host: 127.0.0.1
            port: {r.port}
            password: "${{pw}}"
            command: [ECHO, "${{pw}}"]
            expect: {{reply: nope}}
        - name: value-echoed-in-server-error
          redis: {{host: 127.0.0.1, port: {r.port}, password: "${{pw}}", command: ["${{pw}}"]}}
        - name: inline-url-wrong-password
          redis: {{url: "redis://{r.acl_user}:{inline}@127.0.0.1:{r.port}"}}
        """,
        extra_spec=suite_vars(secret={"pw": r.password}),
    )
    assert run.result("uses-secret-var")["status"] == "passed"
    echoed = run.result("value-echoed-in-reply")
    assert evidence(echoed)["reply"][1] == '"***"'
    assert echoed["details"]["command"] == "ECHO ***"
    assert "***" in run.result("value-echoed-in-server-error")["message"]
    assert run.result("inline-url-wrong-password")["errorKind"] == "auth"
    assert_nowhere(run, caplog, r.password, inline)


def test_grpc(
    run_suite: SuiteRunner,
    grpc_auth_server: GrpcHealthServer,
    grpc_token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rejected = fresh("tok")
    run = run_suite(
        f"""
        - name: uses-secret-var
          grpc:
            target: "{grpc_auth_server.target}"
            metadata: {{authorization: "Bearer ${{token}}"}}
        - name: rejected-token-echoed-by-server
          grpc:
            target: "{grpc_auth_server.target}"
            metadata: {{authorization: "Bearer {rejected}"}}
        """,
        extra_spec=suite_vars(secret={"token": grpc_token}),
    )
    assert run.result("uses-secret-var")["status"] == "passed"
    r = run.result("rejected-token-echoed-by-server")
    assert r["errorKind"] == "auth" and "***" in r["message"]
    assert_nowhere(run, caplog, grpc_token, rejected)


@pytest.mark.parametrize(
    ("kind", "field"),
    [("mysql", "dsn: mysql//smoke:{pw}@db/app"), ("redis", "url: redis//smoke:{pw}@cache")],
)
def test_invalid_urls_are_rejected_without_quoting_them(
    run_suite: SuiteRunner, tmp_path: object, kind: str, field: str
) -> None:
    """A DSN that fails validation stops the run before any report (exit 2); the message on
    stderr says what is wrong without repeating the DSN."""
    from tests.helpers import run_cli, write_suite

    pw = fresh()
    suite = write_suite(tmp_path, f"- name: c\n  {kind}: {{{field.format(pw=pw)}}}")  # type: ignore[arg-type]
    result = run_cli("run", str(suite))
    assert result.code == 2, result.text
    assert "must look like" in result.err
    assert pw not in result.text
