"""Error classification for failures the integration tests cannot provoke offline.

A name that the resolver answers NXDOMAIN for needs a DNS query leaving the machine, and some
server states (pg_hba rejections, connection limits) need a differently configured server. The
inputs here are the drivers' own error texts and exception chains, captured from the real
drivers, so the mapping to error kinds stays pinned down.
"""

from __future__ import annotations

import socket

import pytest

from smokegate.checks.base import CheckContext, CheckFailed, ErrorKind


@pytest.mark.parametrize(
    ("libpq_text", "kind"),
    [
        (
            "failed to resolve host 'orders-db': [Errno -2] Name or service not known",
            ErrorKind.DNS,
        ),
        ('could not translate host name "orders-db" to address: Name or service not known', "dns"),
        (
            'connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  '
            'no pg_hba.conf entry for host "10.0.0.9", user "smoke", database "orders", SSL off',
            ErrorKind.FORBIDDEN,  # not TLS, although the text says "SSL"
        ),
        (
            'connection failed: connection to server at "10.0.0.5", port 5432 failed: '
            "server does not support SSL, but SSL was required",
            ErrorKind.TLS,
        ),
        (
            'connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  '
            "sorry, too many clients already",
            ErrorKind.CONNECTION_REFUSED,
        ),
        (
            'connection failed: connection to server at "10.0.0.5", port 5432 failed: '
            "server closed the connection unexpectedly",
            ErrorKind.PROTOCOL,
        ),
    ],
)
def test_postgres_connect_errors(libpq_text: str, kind: str) -> None:
    from smokegate.checks.postgres import _connect_failure, _libpq_reason

    failure = _connect_failure(_libpq_reason(libpq_text), "orders-db:5432")
    assert failure.kind == kind
    assert "connection to server at" not in failure.message  # libpq's per-attempt prefix


def test_libpq_repeated_attempts_are_reported_once() -> None:
    from smokegate.checks.postgres import _libpq_reason

    line = 'connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication'
    text = f"connection failed: {line} failed\n{line} failed"
    assert _libpq_reason(text) == "password authentication failed"


def _mysql_error(code: int, text: str, cause: BaseException | None = None) -> Exception:
    import pymysql

    exc = pymysql.err.OperationalError(code, text)
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (
            _mysql_error(
                2003,
                "Can't connect to MySQL server on 'catalog-db'",
                socket.gaierror(-2, "Name or service not known"),
            ),
            ErrorKind.DNS,
        ),
        (
            _mysql_error(2003, "Can't connect to MySQL server on 'x'", ConnectionResetError(104)),
            ErrorKind.PROTOCOL,
        ),
        (_mysql_error(1040, "Too many connections"), ErrorKind.CONNECTION_REFUSED),
        (_mysql_error(1130, "Host '10.0.0.9' is not allowed to connect"), ErrorKind.FORBIDDEN),
        (_mysql_error(1698, "Access denied for user 'root'@'localhost'"), ErrorKind.AUTH),
    ],
)
def test_mysql_connect_errors(exc: Exception, kind: str) -> None:
    from smokegate.checks.mysql import _connect_failure

    assert _connect_failure(exc, CheckContext(), "catalog-db:3306").kind == kind


def test_redis_name_not_known() -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    from smokegate.checks.redis import _failure

    try:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except OSError as os_error:  # redis-py raises its error inside the except block
            raise RedisConnectionError("Error -2 connecting to sessions:6379.") from os_error
    except RedisConnectionError as exc:
        failure = _failure(exc, CheckContext(), "sessions:6379", "connect", tls=False)
    assert failure.kind == ErrorKind.DNS


def _protocol_evidence(failure: CheckFailed) -> tuple[str, str]:
    (miss,) = failure.evidence
    return miss.subject, miss.expected


def test_each_kind_names_its_own_session() -> None:
    """A server that answers in the wrong protocol: the expectation names the kind's protocol."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from smokegate.checks.mysql import _connect_failure as mysql_failure
    from smokegate.checks.postgres import _connect_failure as postgres_failure
    from smokegate.checks.redis import _failure as redis_failure

    reset = ConnectionResetError(104, "Connection reset by peer")
    postgres = postgres_failure("server closed the connection unexpectedly", "db:5432")
    mysql = mysql_failure(_mysql_error(2013, "Lost connection", reset), CheckContext(), "db:3306")
    try:
        try:
            raise reset
        except OSError as os_error:
            raise RedisConnectionError("Connection reset by peer") from os_error
    except RedisConnectionError as exc:
        redis = redis_failure(exc, CheckContext(), "cache:6379", "connect", tls=False)

    assert postgres.kind == mysql.kind == redis.kind == ErrorKind.PROTOCOL
    assert _protocol_evidence(postgres) == ("connection", "a PostgreSQL session")
    assert _protocol_evidence(mysql) == ("connection", "a MySQL session")
    assert _protocol_evidence(redis) == ("connection", "a Redis connection")
    for failure in (mysql, redis):
        assert "PostgreSQL" not in str(failure.evidence[0])


@pytest.mark.parametrize(
    ("details", "kind"),
    [
        (
            "errors resolving payments:50051: [field:hostname lookup error:address lookup failed "
            "for payments:50051: Domain name not found]",
            ErrorKind.DNS,
        ),
        ("DNS resolution failed for payments:50051: C-ares status is not ARES_SUCCESS", "dns"),
        ("Failed to connect to remote host: Connection refused", ErrorKind.CONNECTION_REFUSED),
        ("Socket closed", ErrorKind.PROTOCOL),
        (
            # A certificate that does not name the host (serverName, or --resolve's host).
            "Custom verification check failed with error: UNAUTHENTICATED: Hostname "
            "Verification Check failed.",
            ErrorKind.TLS,
        ),
    ],
)
def test_grpc_unavailable_details(details: str, kind: str) -> None:
    import grpc

    from smokegate.checks.grpc import _failure

    failure = _failure(grpc.StatusCode.UNAVAILABLE, details, "payments:50051", "")
    assert failure.kind == kind


def test_grpc_core_boilerplate_is_trimmed() -> None:
    from smokegate.checks.grpc import _core_details

    raw = (
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:10.0.0.5:50051: "
        "Tls handshake failed (TSI_PROTOCOL_FAILURE): CERTIFICATE_VERIFY_FAILED: OK"
    )
    assert _core_details(raw) == (
        "Tls handshake failed (TSI_PROTOCOL_FAILURE): CERTIFICATE_VERIFY_FAILED"
    )
