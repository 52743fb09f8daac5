"""The ``redis`` kind against a real Redis (Debian's redis-server, TLS port on), through the CLI."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.protocols.conftest import (
    ELSEWHERE_SHORT,
    RESOLVED,
    RESOLVED_SHORT,
    Certs,
    Run,
    SuiteRunner,
    UnreachableChecks,
    assert_all,
    assert_failed,
    assert_unreachable,
    evidence,
    resolve_args,
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


# --resolve: a suite written for names that only resolve elsewhere (in the cluster). The
# over-long RESOLVED cannot be a TLS server name in Python's ssl module, so those checks are
# plaintext; TLS through an override is checked with short names (see conftest).


def _resolve_checks(r: RedisServer) -> str:
    encoded = quote(r.password, safe="")
    return f"""
    - name: resolved-host
      redis: {{host: {RESOLVED}, port: {r.port}, password: "${{pw}}"}}
    - name: resolved-url
      redis: {{url: "redis://{r.acl_user}:{encoded}@{RESOLVED}:{r.port}/0"}}
    """


@pytest.fixture(scope="module")
def resolved(run_suite: SuiteRunner, redis: RedisServer, certs: Certs) -> Run:
    r = redis
    tls_checks = f"""
    - name: resolved-tls-verified
      redis: {{host: {RESOLVED_SHORT}, port: {r.tls_port}, password: "${{pw}}",
               tls: {{ca: "{certs.ca}"}}}}
    - name: resolved-name-not-on-certificate
      redis: {{host: {ELSEWHERE_SHORT}, port: {r.tls_port}, password: "${{pw}}",
               tls: {{ca: "{certs.ca}"}}}}
    """
    return run_suite(
        _resolve_checks(r),
        tls_checks,
        extra_spec=suite_vars(secret={"pw": r.password}),
        args=[
            *resolve_args(r.port, RESOLVED),
            *resolve_args(r.tls_port, RESOLVED_SHORT, ELSEWHERE_SHORT),
        ],
    )


def test_resolve_connects_to_the_address(resolved: Run, redis: RedisServer) -> None:
    for name, target in (
        ("resolved-host", f"{RESOLVED}:{redis.port}"),
        ("resolved-url", f"{RESOLVED}:{redis.port}"),
        ("resolved-tls-verified", f"{RESOLVED_SHORT}:{redis.tls_port}"),
    ):
        r = resolved.result(name)
        assert r["status"] == "passed", r
        assert r["details"]["target"] == f"{target} via 127.0.0.1"


def test_resolve_keeps_the_name_for_tls(resolved: Run) -> None:
    # The certificate covers *.example.invalid and 127.0.0.1: only checking the name, not the
    # address connected to, tells the two names apart.
    assert resolved.result("resolved-tls-verified")["details"]["tls"] is True
    r = assert_failed(resolved, "resolved-name-not-on-certificate", "tls")
    assert "Hostname mismatch" in r["message"] and "via 127.0.0.1" in r["message"]


def test_without_resolve_the_names_do_not_resolve(
    run_suite: SuiteRunner, redis: RedisServer
) -> None:
    run = run_suite(_resolve_checks(redis), extra_spec=suite_vars(secret={"pw": redis.password}))
    assert_all(run, "failed")
    for r in run.report["results"]:
        assert_failed(run, r["name"], "dns")
