"""The ``redis`` kind against a real Redis (Debian's redis-server, TLS port on), through the CLI."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.protocols.conftest import (
    Certs,
    Run,
    SuiteRunner,
    UnreachableChecks,
    assert_all,
    assert_failed,
    assert_unreachable,
    evidence,
    suite_vars,
)
from tests.servers.redis import RedisServer


@pytest.fixture(scope="module")
def passing(run_suite: SuiteRunner, redis: RedisServer, certs: Certs) -> Run:
    r = redis
    r.command("SET", "feature:checkout-v2", "on")
    r.command("DEL", "queue")
    r.command("RPUSH", "queue", "a", "b")
    encoded = quote(r.password, safe="")
    return run_suite(
        f"""
        - name: ping
          redis: {{host: 127.0.0.1, port: {r.port}, password: "${{pw}}"}}
        - name: acl-user-get
          redis:
            host: 127.0.0.1
            port: {r.port}
            username: {r.acl_user}
            password: "${{pw}}"
            command: [GET, "feature:checkout-v2"]
            expect: {{reply: "on"}}
        - name: url-list-reply
          redis:
            url: "redis://:{encoded}@127.0.0.1:{r.port}/0"
            command: [LRANGE, queue, 0, -1]
            expect: {{reply: [a, b]}}
        - name: integer-matcher
          redis:
            host: 127.0.0.1
            port: {r.port}
            password: "${{pw}}"
            command: [LLEN, queue]
            expect: {{reply: {{gte: 2}}}}
        - name: nil-reply
          redis:
            host: 127.0.0.1
            port: {r.port}
            password: "${{pw}}"
            db: 3
            command: [GET, "feature:checkout-v2"]
            expect: {{reply: null}}
        - name: tls-verified
          redis:
            host: localhost
            port: {r.tls_port}
            password: "${{pw}}"
            tls: {{ca: "{certs.ca}"}}
        - name: rediss-url
          redis:
            url: "rediss://{r.acl_user}:{encoded}@127.0.0.1:{r.tls_port}"
            tls: {{ca: "{certs.ca}"}}
        """,
        extra_spec=suite_vars(secret={"pw": r.password}),
    )


def test_passing_suite_exits_0(passing: Run) -> None:
    assert_all(passing, "passed")


def test_ping_expects_pong_by_default(passing: Run) -> None:
    r = passing.result("ping")
    assert r["details"]["reply"] == '"PONG"'
    assert r["details"]["command"] == "PING"


def test_database_index_is_selected(passing: Run) -> None:
    # The key exists in db 0 only: db 3 answering nil proves SELECT happened.
    assert passing.result("nil-reply")["details"]["db"] == 3


def test_tls(passing: Run) -> None:
    assert passing.result("tls-verified")["details"]["tls"] is True
    assert passing.result("rediss-url")["details"]["tls"] is True


@pytest.fixture(scope="module")
def failing(
    run_suite: SuiteRunner,
    redis: RedisServer,
    certs: Certs,
    unreachable: UnreachableChecks,
) -> Run:
    r = redis
    r.command("SET", "feature:checkout-v2", "on")
    # A reader that may GET but not SET (same password as the others).
    r.command("ACL", "SETUSER", "reader", "on", f">{r.password}", "~*", "+get")
    return run_suite(
        f"""
        - name: wrong-reply
          redis:
            host: 127.0.0.1
            port: {r.port}
            password: "${{pw}}"
            command: [GET, "feature:checkout-v2"]
            expect: {{reply: "off"}}
        - name: wrong-password
          redis: {{host: 127.0.0.1, port: {r.port}, password: not-it}}
        - name: wrong-acl-password
          redis: {{host: 127.0.0.1, port: {r.port}, username: {r.acl_user}, password: not-it}}
        - name: no-password
          redis: {{host: 127.0.0.1, port: {r.port}}}
        - name: tls-wrong-ca
          redis:
            host: 127.0.0.1
            port: {r.tls_port}
            password: "${{pw}}"
            tls: {{ca: "{certs.other_ca}"}}
        - name: plaintext-to-tls-port
          redis: {{host: 127.0.0.1, port: {r.tls_port}, password: "${{pw}}"}}
        - name: command-not-permitted
          redis:
            host: 127.0.0.1
            port: {r.port}
            username: reader
            password: "${{pw}}"
            command: [SET, "feature:checkout-v2", "off"]
        - name: command-error
          redis: {{host: 127.0.0.1, port: {r.port}, password: "${{pw}}", command: [NOSUCHCMD]}}
        - name: database-out-of-range
          redis: {{host: 127.0.0.1, port: {r.port}, password: "${{pw}}", db: 999}}
        """,
        unreachable("redis", "password: x"),
        extra_spec=suite_vars(secret={"pw": r.password}),
    )


def test_failing_suite_exits_1(failing: Run) -> None:
    assert_all(failing, "failed")


def test_wrong_reply(failing: Run) -> None:
    r = assert_failed(failing, "wrong-reply", "expectation")
    assert evidence(r)["reply"] == ('"off"', '"on"')


def test_wrong_or_missing_password_is_auth(failing: Run) -> None:
    assert_failed(failing, "wrong-password", "auth")
    assert_failed(failing, "wrong-acl-password", "auth")
    r = assert_failed(failing, "no-password", "auth")
    assert "set `password`" in r["message"]


def test_unreachable_servers(failing: Run) -> None:
    assert_unreachable(failing)


def test_tls_failures(failing: Run) -> None:
    r = assert_failed(failing, "tls-wrong-ca", "tls")
    assert "CERTIFICATE_VERIFY_FAILED" in r["message"]
    r = assert_failed(failing, "plaintext-to-tls-port", "protocol")
    assert "set `tls`" in r["message"]


def test_command_error_and_bad_database(failing: Run) -> None:
    r = assert_failed(failing, "command-error", "query")
    assert "unknown command" in r["message"]
    assert_failed(failing, "database-out-of-range", "not_found")


def test_acl_denied_command_is_forbidden(failing: Run) -> None:
    r = assert_failed(failing, "command-not-permitted", "forbidden")
    assert "NOPERM" in r["message"] or "no permissions" in r["message"]
