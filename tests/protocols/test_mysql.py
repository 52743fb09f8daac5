"""The ``mysql`` kind against a real MariaDB (Debian's server, TLS on), through the CLI."""

from __future__ import annotations

import asyncio

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
    sql_conn,
    suite_vars,
)
from tests.servers.mariadb import MariaDBServer


async def _user_without_grants(db: MariaDBServer) -> None:
    """An account with no privileges, with the same password as the admin one."""
    import aiomysql

    conn = await aiomysql.connect(
        host=db.host, port=db.port, user=db.user, password=db.password, autocommit=True
    )
    try:
        cur = await conn.cursor()
        create = "CREATE OR REPLACE USER 'smoke_limited'@'%%' IDENTIFIED BY %s"
        await cur.execute(create, (db.password,))
    finally:
        conn.close()


@pytest.fixture(scope="module")
def passing(run_suite: SuiteRunner, mariadb: MariaDBServer, certs: Certs) -> Run:
    db = mariadb
    return run_suite(
        f"""
        - name: select-1
          mysql: {sql_conn(db)}
        - name: dsn-and-values
          mysql:
            dsn: "{db.dsn()}"
            query: "SELECT 1 AS n, 'item-1' AS label, 1.5 AS price, NULL AS note
                    UNION ALL SELECT 2, 'item-2', 3.0, 'x'"
            expect:
              rows: 2
              firstRow: [1, item-1, 1.5, null]
              columns: {{label: {{regex: "^item-"}}, price: {{lt: 2}}, note: null}}
        - name: server-warnings-are-kept
          mysql:
            dsn: "{db.dsn()}"
            query: SELECT 1/0 AS x
            expect: {{columns: {{x: null}}}}
        - name: tls-verify-full
          mysql: {sql_conn(db, ca=certs.ca)}
        - name: tls-required-unverified
          mysql: {sql_conn(db, sslmode="require")}
        - name: write-when-allowed
          mysql:
            dsn: "{db.dsn()}"
            query: CREATE TABLE IF NOT EXISTS smoke_heartbeat (at TIMESTAMP)
            readOnly: false
        """,
        extra_spec=suite_vars(secret={"pw": db.password}),
    )


def test_passing_suite_exits_0(passing: Run) -> None:
    assert_all(passing, "passed")


def test_select_1_is_the_default_query(passing: Run) -> None:
    r = passing.result("select-1")
    assert r["details"]["rows"] == 1
    assert "MariaDB" in r["details"]["server"]


def test_row_count_first_row_and_column_matchers(passing: Run) -> None:
    assert passing.result("dsn-and-values")["details"]["columns"] == [
        "n",
        "label",
        "price",
        "note",
    ]


def test_server_warnings_are_evidence_not_stderr(passing: Run) -> None:
    r = passing.result("server-warnings-are-kept")
    assert any("Division by 0" in w for w in r["details"]["warnings"])
    assert "Warning" not in passing.cli.err


def test_tls(passing: Run) -> None:
    assert passing.result("tls-verify-full")["details"]["tls"] is True
    assert passing.result("tls-required-unverified")["details"]["tls"] is True


@pytest.fixture(scope="module")
def failing(
    run_suite: SuiteRunner,
    mariadb: MariaDBServer,
    mariadb_plain: MariaDBServer,
    certs: Certs,
    unreachable: UnreachableChecks,
) -> Run:
    db = mariadb
    asyncio.run(_user_without_grants(db))
    return run_suite(
        f"""
        - name: wrong-expectation
          mysql:
            dsn: "{db.dsn()}"
            query: "SELECT 1 AS n, 'item-1' AS label UNION ALL SELECT 2, 'item-2'"
            expect:
              rows: {{gte: 5}}
              firstRow: [1, item-2]
              columns: {{label: {{regex: "^sku-"}}, n: {{gt: 10}}}}
        - name: wrong-password
          mysql: {{host: 127.0.0.1, port: {db.port}, user: {db.user}, password: not-it}}
        - name: tls-wrong-ca
          mysql: {sql_conn(db, ca=certs.other_ca)}
        - name: tls-required-but-not-offered
          mysql: {{dsn: "{mariadb_plain.dsn()}?ssl-mode=REQUIRED"}}
        - name: query-error
          mysql: {{dsn: "{db.dsn()}", query: SELECT * FROM no_such_table}}
        - name: write-in-read-only
          mysql: {{dsn: "{db.dsn()}", query: CREATE TABLE never_made (a INT)}}
        - name: unknown-database
          mysql: {sql_conn(db, database="no_such_db")}
        - name: no-grant-on-database
          mysql: {sql_conn(db, user="smoke_limited")}
        """,
        unreachable("mysql", "user: smoke, password: x"),
        extra_spec=suite_vars(secret={"pw": db.password}),
    )


def test_failing_suite_exits_1(failing: Run) -> None:
    assert_all(failing, "failed")


def test_wrong_expectation_reports_every_mismatch(failing: Run) -> None:
    r = assert_failed(failing, "wrong-expectation", "expectation")
    ev = evidence(r)
    assert ev["rows"] == ("≥ 5", "2")
    assert ev["first row [1] (label)"] == ('"item-2"', '"item-1"')
    assert ev["column label"] == ("matching /^sku-/", '"item-1"')
    assert ev["column n"] == ("> 10", "1")


def test_wrong_password_is_auth(failing: Run) -> None:
    r = assert_failed(failing, "wrong-password", "auth")
    assert "Access denied" in r["message"]


def test_unreachable_servers(failing: Run) -> None:
    refused, dns = assert_unreachable(failing)
    assert "Connection refused" in refused["message"]
    assert "invalid host name" in dns["message"]


def test_tls_failures(failing: Run) -> None:
    r = assert_failed(failing, "tls-wrong-ca", "tls")
    assert "CERTIFICATE_VERIFY_FAILED" in r["message"]
    r = assert_failed(failing, "tls-required-but-not-offered", "tls")
    assert "does not support TLS" in r["message"]


def test_query_errors(failing: Run) -> None:
    r = assert_failed(failing, "query-error", "query")
    assert evidence(r)["query"][1].startswith("1146:")
    r = assert_failed(failing, "write-in-read-only", "query")
    assert "readOnly: false" in r["message"]


def test_unknown_database(failing: Run) -> None:
    assert_failed(failing, "unknown-database", "not_found")


def test_no_grant_on_the_database_is_forbidden(failing: Run) -> None:
    r = assert_failed(failing, "no-grant-on-database", "forbidden")
    assert "Access denied" in r["message"]


# --resolve: a suite written for names that only resolve elsewhere (in the cluster). The
# over-long RESOLVED cannot be a TLS server name in Python's ssl module, so those checks are
# plaintext; TLS through an override is checked with short names (see conftest).


def _resolve_checks(db: MariaDBServer) -> str:
    return f"""
    - name: resolved-host
      mysql: {sql_conn(db, host=RESOLVED, sslmode="disable")}
    - name: resolved-dsn
      mysql:
        dsn: "mysql://{db.user}@{RESOLVED}:{db.port}/{db.database}?ssl-mode=DISABLED"
        password: "${{pw}}"
    """


@pytest.fixture(scope="module")
def resolved(run_suite: SuiteRunner, mariadb: MariaDBServer, certs: Certs) -> Run:
    db = mariadb
    tls_checks = f"""
    - name: resolved-verify-full
      mysql: {sql_conn(db, host=RESOLVED_SHORT, ca=certs.ca)}
    - name: resolved-name-not-on-certificate
      mysql: {sql_conn(db, host=ELSEWHERE_SHORT, ca=certs.ca)}
    """
    return run_suite(
        _resolve_checks(db),
        tls_checks,
        extra_spec=suite_vars(secret={"pw": db.password}),
        args=resolve_args(db.port, RESOLVED, RESOLVED_SHORT, ELSEWHERE_SHORT),
    )


def test_resolve_connects_to_the_address(resolved: Run, mariadb: MariaDBServer) -> None:
    for name, host in (
        ("resolved-host", RESOLVED),
        ("resolved-dsn", RESOLVED),
        ("resolved-verify-full", RESOLVED_SHORT),
    ):
        r = resolved.result(name)
        assert r["status"] == "passed", r
        assert r["details"]["target"] == f"{host}:{mariadb.port} via 127.0.0.1"


def test_resolve_keeps_the_name_for_tls(resolved: Run) -> None:
    # The certificate covers *.example.invalid and 127.0.0.1: only checking the name, not the
    # address connected to, tells the two names apart.
    assert resolved.result("resolved-verify-full")["details"]["tls"] is True
    r = assert_failed(resolved, "resolved-name-not-on-certificate", "tls")
    assert "Hostname mismatch" in r["message"] and "via 127.0.0.1" in r["message"]


def test_without_resolve_the_names_do_not_resolve(
    run_suite: SuiteRunner, mariadb: MariaDBServer
) -> None:
    run = run_suite(
        _resolve_checks(mariadb), extra_spec=suite_vars(secret={"pw": mariadb.password})
    )
    assert_all(run, "failed")
    for r in run.report["results"]:
        assert_failed(run, r["name"], "dns")
