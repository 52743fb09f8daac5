"""The ``postgres`` kind against a real PostgreSQL (Debian's server, TLS on), through the CLI."""

from __future__ import annotations

import asyncio

import pytest

from tests.protocols.conftest import (
    ELSEWHERE,
    RESOLVED,
    Certs,
    Run,
    SuiteRunner,
    UnreachableChecks,
    assert_all,
    assert_failed,
    assert_unreachable,
    evidence,
    resolve_args,
    sql_conn,
    suite_vars,
)
from tests.servers.postgres import PostgresServer


async def _limited_role(pg: PostgresServer) -> None:
    """A login role without privileges, with the same password as the admin one."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(pg.dsn(), autocommit=True) as admin:
        await admin.execute("DROP ROLE IF EXISTS smoke_limited")
        await admin.execute(
            psycopg.sql.SQL("CREATE ROLE smoke_limited LOGIN PASSWORD {}").format(pg.password)
        )


def _vars(pg: PostgresServer, certs: Certs) -> str:
    ca_pem = certs.ca.read_text().replace("\n", "\\n")
    return suite_vars(secret={"pw": pg.password}, plain={"ca_pem": ca_pem})


@pytest.fixture(scope="module")
def passing(run_suite: SuiteRunner, postgres: PostgresServer, certs: Certs) -> Run:
    pg = postgres
    return run_suite(
        f"""
        - name: select-1
          postgres: {sql_conn(pg)}
        - name: dsn-and-values
          postgres:
            dsn: "{pg.dsn()}"
            query: "SELECT g AS n, 'item-' || g AS label, g * 1.5 AS price
                    FROM generate_series(1, 3) g ORDER BY g"
            expect:
              rows: {{gte: 3}}
              firstRow: [1, item-1, 1.5]
              columns: {{label: {{regex: "^item-"}}, price: {{lt: 2}}, n: 1}}
        - name: tls-verify-full
          postgres: {sql_conn(pg, ca=certs.ca)}
        - name: tls-ca-as-pem-text
          postgres: {sql_conn(pg, sslmode="verify-ca", ca='"${ca_pem}"')}
        - name: write-when-allowed
          postgres:
            dsn: "{pg.dsn()}"
            query: CREATE TABLE IF NOT EXISTS smoke_heartbeat (at timestamptz DEFAULT now())
            readOnly: false
        """,
        extra_spec=_vars(pg, certs),
    )


def test_passing_suite_exits_0(passing: Run) -> None:
    assert_all(passing, "passed")


def test_select_1_is_the_default_query(passing: Run) -> None:
    r = passing.result("select-1")
    assert r["details"]["rows"] == 1
    assert r["details"]["server"].startswith(("15", "16", "17", "18"))
    assert r["errorKind"] is None and r["evidence"] == []


def test_row_count_first_row_and_column_matchers(passing: Run) -> None:
    r = passing.result("dsn-and-values")
    assert r["details"]["rows"] == 3
    assert r["details"]["columns"] == ["n", "label", "price"]


def test_tls_verified_against_the_ca(passing: Run) -> None:
    assert passing.result("tls-verify-full")["details"]["tls"] is True
    assert passing.result("tls-ca-as-pem-text")["details"]["tls"] is True


@pytest.fixture(scope="module")
def failing(
    run_suite: SuiteRunner,
    postgres: PostgresServer,
    certs: Certs,
    unreachable: UnreachableChecks,
) -> Run:
    pg = postgres
    asyncio.run(_limited_role(pg))
    return run_suite(
        f"""
        - name: wrong-expectation
          postgres:
            dsn: "{pg.dsn()}"
            query: "SELECT g AS n, 'item-' || g AS label FROM generate_series(1, 3) g ORDER BY g"
            expect:
              rows: {{gte: 5}}
              firstRow: [1, item-2]
              columns: {{label: {{regex: "^sku-"}}, n: {{gt: 10}}, missing: 1}}
        - name: no-rows
          postgres:
            dsn: "{pg.dsn()}"
            query: SELECT 1 AS n WHERE false
            expect: {{columns: {{n: 1}}}}
        - name: wrong-password
          postgres: {{host: 127.0.0.1, port: {pg.port}, user: {pg.user}, password: not-it}}
        - name: tls-wrong-ca
          postgres: {sql_conn(pg, ca=certs.other_ca)}
        - name: tls-verify-without-ca
          postgres: {sql_conn(pg, sslmode="verify-full")}
        - name: query-error
          postgres: {{dsn: "{pg.dsn()}", query: SELECT * FROM no_such_table}}
        - name: write-in-read-only
          postgres: {{dsn: "{pg.dsn()}", query: CREATE TABLE never_made (a int)}}
        - name: unknown-database
          postgres: {sql_conn(pg, database="no_such_db")}
        - name: missing-privilege
          postgres: {sql_conn(pg, user="smoke_limited", query="SELECT * FROM pg_authid")}
        - name: malformed-dsn
          postgres: {{dsn: "postgresql//smoke@127.0.0.1/postgres"}}
        - name: bad-port-in-dsn
          postgres: {{dsn: "host=127.0.0.1 port=notaport"}}
        """,
        unreachable("postgres", "user: smoke, password: x"),
        extra_spec=_vars(pg, certs),
    )


def test_failing_suite_exits_1(failing: Run) -> None:
    assert_all(failing, "failed")


def test_wrong_expectation_reports_every_mismatch(failing: Run) -> None:
    r = assert_failed(failing, "wrong-expectation", "expectation")
    ev = evidence(r)
    assert ev["rows"] == ("≥ 5", "3")
    assert ev["first row [1] (label)"] == ('"item-2"', '"item-1"')
    assert ev["column label"] == ("matching /^sku-/", '"item-1"')
    assert ev["column n"] == ("> 10", "1")
    assert ev["column missing"][0] == "present"
    assert "label=" in r["snippet"]


def test_values_need_a_row(failing: Run) -> None:
    r = assert_failed(failing, "no-rows", "expectation")
    assert evidence(r)["rows"][1] == "0"


def test_wrong_password_is_auth(failing: Run) -> None:
    r = assert_failed(failing, "wrong-password", "auth")
    assert "password authentication failed" in r["message"]
    assert "authentication" in evidence(r)


def test_unreachable_servers(failing: Run) -> None:
    refused, dns = assert_unreachable(failing)
    assert "refused" in refused["message"].lower()
    assert "invalid host name" in dns["message"]


def test_tls_failures(failing: Run) -> None:
    r = assert_failed(failing, "tls-wrong-ca", "tls")
    assert "certificate verify failed" in r["message"]
    r = assert_failed(failing, "tls-verify-without-ca", "tls")
    assert "give `ca`" in r["message"]


def test_query_errors(failing: Run) -> None:
    r = assert_failed(failing, "query-error", "query")
    assert evidence(r)["query"][1].startswith("42P01:")
    r = assert_failed(failing, "write-in-read-only", "query")
    assert "readOnly: false" in r["message"]


def test_unknown_database_and_bad_dsn(failing: Run) -> None:
    assert_failed(failing, "unknown-database", "not_found")
    r = assert_failed(failing, "malformed-dsn", "config")
    assert "invalid dsn" in r["message"]
    r = assert_failed(failing, "bad-port-in-dsn", "config")
    assert 'invalid integer value "notaport"' in r["message"]


def test_missing_privilege_is_forbidden(failing: Run) -> None:
    r = assert_failed(failing, "missing-privilege", "forbidden")
    assert "permission denied" in r["message"]


# --resolve: a suite written for names that only resolve elsewhere (in the cluster).

RESOLVE_CHECKS = """
- name: resolved-host
  postgres: {host}
- name: resolved-dsn
  postgres:
    dsn: "postgresql://{user}@{name}:{port}/{database}"
    password: "${{pw}}"
- name: resolved-verify-full
  postgres: {verify_full}
- name: resolved-name-not-on-certificate
  postgres: {wrong_name}
"""


def _resolve_checks(pg: PostgresServer, certs: Certs) -> str:
    return RESOLVE_CHECKS.format(
        host=sql_conn(pg, host=RESOLVED),
        user=pg.user,
        name=RESOLVED,
        port=pg.port,
        database=pg.database,
        verify_full=sql_conn(pg, host=RESOLVED, ca=certs.ca),
        wrong_name=sql_conn(pg, host=ELSEWHERE, ca=certs.ca),
    )


@pytest.fixture(scope="module")
def resolved(run_suite: SuiteRunner, postgres: PostgresServer, certs: Certs) -> Run:
    args = resolve_args(postgres.port, RESOLVED, ELSEWHERE)
    return run_suite(_resolve_checks(postgres, certs), extra_spec=_vars(postgres, certs), args=args)


def test_resolve_connects_to_the_address(resolved: Run, postgres: PostgresServer) -> None:
    for name in ("resolved-host", "resolved-dsn", "resolved-verify-full"):
        r = resolved.result(name)
        assert r["status"] == "passed", r
        assert r["details"]["target"] == f"{RESOLVED}:{postgres.port} via 127.0.0.1"


def test_resolve_keeps_the_name_for_tls(resolved: Run) -> None:
    # verify-full checks the certificate against the name (the certificate is for
    # *.example.invalid), not against 127.0.0.1, which it also covers.
    assert resolved.result("resolved-verify-full")["details"]["tls"] is True
    r = assert_failed(resolved, "resolved-name-not-on-certificate", "tls")
    assert "does not match host name" in r["message"]
    assert f"{ELSEWHERE}:" in r["message"] and "via 127.0.0.1" in r["message"]


def test_without_resolve_the_names_do_not_resolve(
    run_suite: SuiteRunner, postgres: PostgresServer, certs: Certs
) -> None:
    run = run_suite(_resolve_checks(postgres, certs), extra_spec=_vars(postgres, certs))
    assert_all(run, "failed")
    for r in run.report["results"]:
        assert_failed(run, r["name"], "dns")
