"""``postgres``: connect to PostgreSQL, run one query (``SELECT 1`` by default), check the rows.

    - name: orders-db
      postgres:
        host: orders-db.shop.svc
        database: orders
        user: smoke
        password: {secretRef: {name: orders-db, key: password}}
        sslmode: verify-full
        ca: certs/db-ca.pem
        query: SELECT count(*) AS recent FROM orders WHERE created_at > now() - interval '1 hour'
        expect:
          rows: 1
          columns: {recent: {gt: 0}}

or ``dsn: "postgresql://smoke:${db_password}@orders-db:5432/orders?sslmode=require"``; fields
given next to a DSN override its parts (the usual case: DSN from config, password from a Secret).

Driver: psycopg 3 in async mode (the ``postgres`` extra). Its libpq does the protocol, TLS and
SCRAM; this module only maps its errors to kinds a person can act on and keeps credentials out
of every message. The query runs in a read-only transaction that is rolled back, unless
``readOnly: false``.

The fields shared with ``mysql`` (``SqlSpec``), the row expectations (``SqlExpect``) and the
helpers shared with the other protocol kinds live in ``checks._protocol``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import time
from typing import Any, Literal

from pydantic import Field

from smokegate.checks._protocol import (
    SAMPLE_ROWS,
    SqlSpec,
    connect_failure,
    dsn_secrets,
    failure,
    hostport,
    override,
    pem_files,
    scrub,
    sql_outcome,
    via,
    within,
)
from smokegate.checks.base import CheckContext, CheckFailed, ErrorKind, Outcome, Text, reveal

# ---------------------------------------------------------------------------------------------
# The postgres kind

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


class PostgresSpec(SqlSpec):
    """Connect to PostgreSQL, run a query, check the rows."""

    dsn: Text | None = None
    """libpq connection string: `postgresql://user:pass@host:5432/db?sslmode=require` or
    `host=… dbname=…`. Redacted everywhere; fields below override its parts."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Default 5432."""
    database: str | None = None
    """Database name (libpq `dbname`); default: the user name."""
    sslmode: SslMode | None = None
    """libpq sslmode. Default: `verify-full` when `ca` is given, else libpq's `prefer`."""
    read_only: bool = True
    """Run the query in a read-only transaction, rolled back afterwards. `false` commits."""


def _params(spec: PostgresSpec, from_dsn: dict[str, Any]) -> dict[str, Any]:
    """libpq keywords from the fields; applied over the DSN, as libpq does with keywords."""
    p: dict[str, Any] = {"application_name": "smokegate"}
    for field, keyword in (
        ("host", "host"),
        ("database", "dbname"),
        ("user", "user"),
        ("password", "password"),
        ("sslmode", "sslmode"),
    ):
        value = getattr(spec, field)
        if value is not None:
            p[keyword] = reveal(value)  # for the driver: the password revealed here
    if spec.port is not None:
        p["port"] = spec.port
    elif "port" not in from_dsn:
        p["port"] = 5432  # explicit, so that a PGPORT in the runner's environment cannot apply
    if spec.ca and "sslmode" not in p and "sslmode" not in from_dsn:
        p["sslmode"] = "verify-full"  # a CA means "verify against it"; libpq's prefer would not
    return p


def _target(info: dict[str, Any]) -> str:
    host = str(info.get("host") or "localhost")
    port = str(info.get("port") or 5432)
    return f"[{host}]:{port}" if ":" in host and "," not in host else f"{host}:{port}"


def _resolved(info: dict[str, Any], ctx: CheckContext) -> tuple[list[str | None], str]:
    """The ``--resolve`` address for each host of the connection (``None`` where no override
    applies: all ``None`` means connect as usual) and the target to report. Several hosts
    (``host=a,b``) are matched one by one. An explicit ``hostaddr`` wins over any override."""
    hosts = str(info.get("host") or "").split(",")
    if info.get("hostaddr"):
        return [None] * len(hosts), _target(info)
    ports = str(info.get("port") or 5432).split(",")
    if len(ports) != len(hosts):
        ports = [ports[0]] * len(hosts)  # one port for all (or a mismatch libpq reports)
    addrs = [
        None if not host or host.startswith("/") or host[1:2] == ":" else override(ctx, host, port)
        for host, port in zip(hosts, ports, strict=True)
    ]
    if not any(addrs):
        return addrs, _target(info)
    if len(hosts) == 1:
        return addrs, via(_target(info), addrs[0])
    shown = [via(hostport(h, p), a) for h, p, a in zip(hosts, ports, addrs, strict=True)]
    return addrs, ", ".join(shown)


async def _hostaddr(addrs: list[str | None]) -> str:
    """libpq's ``hostaddr`` for the overrides: there it connects without a lookup, and it keeps
    using ``host`` for SNI and ``verify-full``, which is what an override means. One item per
    host, empty where no override applies (libpq and psycopg then look the name up as usual).
    ``hostaddr`` takes only numeric addresses, so an override naming a host is looked up."""
    items: list[str] = []
    for addr in addrs:
        if addr:
            try:
                ipaddress.ip_address(addr)
            except ValueError:
                found = await asyncio.get_running_loop().getaddrinfo(
                    addr, None, type=socket.SOCK_STREAM
                )
                addr = str(found[0][4][0])
        items.append(addr or "")
    return ",".join(items)


# libpq's connection errors carry no SQLSTATE, only text: match it (first match wins, so the
# access-control phrases come before the "SSL" they may contain).
_CONNECT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(rx, re.IGNORECASE))
    for kind, rx in (
        # Parameters libpq only validates when connecting (port=abc, sslmode=bogus).
        (
            ErrorKind.CONFIG,
            r"invalid (?:integer |\w+ )?value|invalid connection option|missing \"=\""
            r"|unterminated quoted string|invalid URI",
        ),
        (ErrorKind.DNS, r"failed to resolve host|could not translate host name|not known"),
        (ErrorKind.FORBIDDEN, r"no pg_hba\.conf entry|not permitted to log in"),
        (
            ErrorKind.AUTH,
            r"password authentication failed|authentication failed|no password supplied"
            r"|role \"[^\"]*\" does not exist|password is required|SCRAM",
        ),
        (ErrorKind.NOT_FOUND, r"database \"[^\"]*\" does not exist"),
        (ErrorKind.TIMEOUT, r"timeout expired|timed out"),
        (ErrorKind.TLS, r"\bSSL\b|certificate|sslmode|\bTLS\b"),
        (
            ErrorKind.CONNECTION_REFUSED,
            r"connection refused|no route to host|network is unreachable|too many clients",
        ),
    )
)


def _libpq_reason(text: str) -> str:
    """libpq repeats 'connection to server at "h", port p failed:' per attempt and pads
    severities; keep each distinct reason once."""
    seen: list[str] = []
    for raw in text.replace("\t", " ").splitlines():
        line = re.sub(r"^connection (?:failed|is bad):\s*", "", raw.strip())
        line = re.sub(
            r'^connection to server (?:at|on socket) "[^"]*"(?: \([^)]*\))?(?:, port \d+)? '
            r"failed:\s*",
            "",
            line,
        )
        line = re.sub(r"^(FATAL|ERROR):\s+", "", line)
        line = re.sub(r"\[Errno -?\d+\]\s*", "", line).strip()
        if line and line not in seen and not line.startswith("Multiple connection attempts"):
            if line.startswith("- host:"):  # psycopg's per-attempt list repeats the reasons
                continue
            seen.append(line)
    return "; ".join(seen) or text.strip()


def _connect_failure(
    reason: str, target: str, *, kind: str | None = None, hint: str = ""
) -> CheckFailed:
    """A connection failure, classified from libpq's text unless ``kind`` is given."""
    if kind is None:
        kind = next((k for k, rx in _CONNECT_PATTERNS if rx.search(reason)), ErrorKind.PROTOCOL)
    return connect_failure(reason, target, kind=kind, session="a PostgreSQL session", hint=hint)


def _query_failure(exc: Exception, ctx: CheckContext, read_only: bool) -> CheckFailed:
    sqlstate = getattr(exc, "sqlstate", None) or ""
    diag = getattr(exc, "diag", None)
    primary = (getattr(diag, "message_primary", None) or str(exc)).strip().splitlines()[0]
    reason = scrub(f"{sqlstate}: {primary}" if sqlstate else primary, ctx)
    kind = ErrorKind.QUERY
    hint = ""
    if sqlstate == "42501":
        kind = ErrorKind.FORBIDDEN
    elif sqlstate == "57014":  # query_canceled: statement_timeout
        kind = ErrorKind.TIMEOUT
    elif sqlstate == "25006" and read_only:  # read_only_sql_transaction
        hint = " (the query runs read-only; set readOnly: false to allow writes)"
    elif not sqlstate:
        kind = ErrorKind.PROTOCOL  # the connection broke mid-query
    return failure(kind, f"query failed: {reason}{hint}", "query", "runs without error", reason)


async def run(spec: PostgresSpec, ctx: CheckContext) -> Outcome:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    dsn = reveal(spec.dsn) or ""  # the driver's; never shown (scrub() masks what libpq quotes)
    if spec.password:
        ctx.redactor.add(spec.password)
    for secret in dsn_secrets(dsn):
        ctx.redactor.add(secret)

    try:
        params = _params(spec, conninfo_to_dict(dsn))
        info = conninfo_to_dict(dsn, **params)
    except psycopg.Error as exc:
        # libpq quotes the offending part of the DSN back; scrub() masks the password in it
        # even when the DSN is too malformed for the redactor to have learnt the password.
        reason = scrub(str(exc).strip(), ctx)
        raise _connect_failure(
            f"invalid dsn: {reason}", "postgres", kind=ErrorKind.CONFIG
        ) from None
    addrs, target = _resolved(info, ctx)
    started = time.perf_counter()
    with pem_files(sslrootcert=spec.ca, sslcert=spec.cert, sslkey=spec.key) as files:
        try:
            async with within(spec.connect_timeout, "connect", target):
                if any(addrs):
                    params["hostaddr"] = await _hostaddr(addrs)
                keywords: dict[str, Any] = {**params, **files}
                conn = await psycopg.AsyncConnection.connect(dsn, **keywords)
        except UnicodeError as exc:
            # The host name failed IDNA encoding (empty or over-long label) before any lookup.
            reason = f"invalid host name ({exc})"
            raise _connect_failure(reason, target, kind=ErrorKind.DNS) from None
        except socket.gaierror as exc:  # the address of an override, when it is a name
            reason = f"cannot resolve the --resolve address: {exc}"
            raise _connect_failure(reason, target, kind=ErrorKind.DNS) from None
        except psycopg.Error as exc:
            reason = scrub(_libpq_reason(str(exc)), ctx)
            hint = ""
            if "root certificate file" in reason:
                hint = " (give `ca`, or sslmode: require to encrypt without verifying)"
            raise _connect_failure(reason, target, hint=hint) from None
    try:
        await conn.set_read_only(spec.read_only)
        try:
            cur = await conn.execute(spec.query)
            names = [c.name for c in cur.description] if cur.description else []
            rows = await cur.fetchmany(SAMPLE_ROWS) if cur.description else []
            count = max(cur.rowcount, len(rows))
        except psycopg.Error as exc:
            raise _query_failure(exc, ctx, spec.read_only) from None
        details = {
            "target": target,
            "server": conn.info.parameter_status("server_version") or "",
            "tls": bool(conn.pgconn.ssl_in_use),
            "latency": round(time.perf_counter() - started, 6),
        }
        if spec.read_only:
            await conn.rollback()
        else:
            await conn.commit()
    finally:
        with contextlib.suppress(Exception):
            await conn.close()
    return sql_outcome(spec.expect, names, rows, count, details, ctx)


SPEC = PostgresSpec
# Imported by the engine before the run starts (see engine.runner._run_fns).
PRELOAD = ("psycopg", "psycopg.conninfo")
