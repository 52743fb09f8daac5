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

The row expectations (``SqlExpect``) are shared with the ``mysql`` kind, which imports them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import decimal
import os
import re
import socket
import ssl
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Literal
from urllib.parse import unquote

from pydantic import Field, field_validator, model_validator

from smokegate.checks.base import (
    CheckContext,
    CheckFailed,
    ErrorKind,
    LocalPath,
    Mismatch,
    Outcome,
    Spec,
    failed,
    passed,
)
from smokegate.checks.expect import check_value, is_matcher, render
from smokegate.secrets import MASK
from smokegate.suite.model import Duration

SAMPLE_ROWS = 5
"""Rows kept for evaluation and for the failure snippet (the count covers all rows)."""

# ---------------------------------------------------------------------------------------------
# Row expectations, shared by the SQL kinds


class SqlExpect(Spec):
    """What the query's result must look like. Every expectation is checked and reported."""

    rows: int | dict[str, Any] | None = None
    """Row count: a number, or a matcher such as `{gte: 1}`."""
    first_row: list[Any] | None = None
    """Values of the first row in column order, each a literal or a matcher
    (`[1, {regex: '^ok'}]`); the column count must match too."""
    columns: dict[str, Any] = Field(default_factory=dict)
    """Column name -> literal or matcher (`{equals|notEquals|regex|gt|gte|lt|lte|oneOf|…}`),
    checked against the first row."""

    @field_validator("rows")
    @classmethod
    def _rows_valid(cls, v: Any) -> Any:
        if isinstance(v, bool) or (isinstance(v, int) and v < 0):
            raise ValueError("rows must be a count (0 or more) or a matcher like {gte: 1}")
        if isinstance(v, dict) and not is_matcher(v):
            raise ValueError("rows must be a count or a matcher like {gte: 1}")
        return v


def cell(value: Any) -> Any:
    """A database value as the matchers see it: JSON-like types, so YAML literals compare."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal):
        # Exact integers stay ints (count(*) is numeric in some servers); others become floats,
        # which is precise enough for a smoke comparison.
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, memoryview | bytearray):
        value = bytes(value)
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [cell(v) for v in value]
    if isinstance(value, dict):
        return {str(k): cell(v) for k, v in value.items()}
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def evaluate_rows(
    expect: SqlExpect, names: Sequence[str], rows: Sequence[Sequence[Any]], count: int
) -> list[Mismatch]:
    """Every unmet expectation on a result set (``rows`` is a sample, ``count`` the total)."""
    misses: list[Mismatch] = []
    if expect.rows is not None:
        miss = check_value("rows", expect.rows, [count])
        if miss:
            misses.append(miss)
    if expect.first_row is None and not expect.columns:
        return misses
    if not rows:
        # Without a first row there is nothing to compare: say so once, not per column.
        if not any(m.subject == "rows" for m in misses):
            misses.append(Mismatch("rows", "≥ 1 (values are checked on the first row)", "0"))
        return misses
    first = [cell(v) for v in rows[0]]
    if expect.first_row is not None:
        if len(expect.first_row) != len(first):
            misses.append(
                Mismatch(
                    "first row",
                    f"{len(expect.first_row)} columns",
                    f"{len(first)} columns: {render(first)}",
                )
            )
        else:
            for i, (want, got) in enumerate(zip(expect.first_row, first, strict=True)):
                miss = check_value(f"first row [{i}] ({names[i]})", want, [got])
                if miss:
                    misses.append(miss)
    for name, want in expect.columns.items():
        if name not in names:
            misses.append(
                Mismatch(f"column {name}", "present", f"absent (columns: {', '.join(names)})")
            )
            continue
        miss = check_value(f"column {name}", want, [first[list(names).index(name)]])
        if miss:
            misses.append(miss)
    return misses


def rows_snippet(names: Sequence[str], rows: Sequence[Sequence[Any]], count: int) -> str:
    """The first rows as ``name=value`` lines: what the query actually returned."""
    lines = [
        ", ".join(f"{n}={render(cell(v))}" for n, v in zip(names, row, strict=False))
        for row in rows[:SAMPLE_ROWS]
    ]
    if count > len(lines):
        lines.append(f"… ({count} rows)")
    return "\n".join(lines) if lines else "(no rows)"


def sql_outcome(
    expect: SqlExpect,
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    count: int,
    details: dict[str, Any],
) -> Outcome:
    details = {**details, "rows": count, "columns": list(names)}
    misses = evaluate_rows(expect, names, rows, count)
    if not misses:
        return passed(details=details)
    return failed(misses, snippet=rows_snippet(names, rows, count), details=details)


# ---------------------------------------------------------------------------------------------
# Credentials and messages shared by the protocol kinds

_URI_PASSWORD = re.compile(r"//[^/:@\s]*:([^@\s]+)@")
_KV_PASSWORD = re.compile(r"(?i)\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&;]+)")


def dsn_secrets(dsn: str) -> list[str]:
    """Passwords inside a DSN, URI or ``key=value`` form, as written and decoded. Works on
    malformed DSNs too: those are exactly the ones a driver echoes back in its error."""
    found: list[str] = []
    for m in _URI_PASSWORD.finditer(dsn):
        found += [m.group(1), unquote(m.group(1))]
    for m in _KV_PASSWORD.finditer(dsn):
        raw = m.group(1)
        found += [raw, unquote(raw)]
        if raw.startswith("'") and raw.endswith("'") and len(raw) >= 2:
            found.append(re.sub(r"\\(.)", r"\1", raw[1:-1]))
    return [s for s in found if s]


def scrub(text: str, ctx: CheckContext) -> str:
    """Driver text made safe for a report: known secrets masked, and any credential that still
    looks like one (``user:…@`` in a URI, ``password=…``) masked too, known or not."""
    text = ctx.redactor.redact(text)
    text = _URI_PASSWORD.sub(lambda m: m.group(0).replace(m.group(1), MASK), text)
    return _KV_PASSWORD.sub(f"password={MASK}", text)


def cause_kind(exc: BaseException) -> str | None:
    """What the socket layer said, under a driver's generic connection error: the first
    telling exception in the ``__cause__``/``__context__`` chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror | UnicodeError):  # UnicodeError: not a valid name
            return ErrorKind.DNS
        if isinstance(seen, ssl.SSLError | ssl.CertificateError):
            return ErrorKind.TLS
        if isinstance(seen, ConnectionRefusedError):
            return ErrorKind.CONNECTION_REFUSED
        if isinstance(seen, TimeoutError):
            return ErrorKind.TIMEOUT
        if isinstance(seen, ConnectionResetError | BrokenPipeError):
            return ErrorKind.PROTOCOL
        seen = seen.__cause__ or seen.__context__
    return None


def failure(
    kind: str, message: str, subject: str, expected: str, actual: str, **details: Any
) -> CheckFailed:
    """A named failure with the one piece of evidence that explains it."""
    return CheckFailed(
        message, kind=kind, evidence=[Mismatch(subject, expected, actual)], details=details
    )


@contextlib.asynccontextmanager
async def within(seconds: float | None, phase: str, target: str) -> AsyncIterator[None]:
    """Bound a phase ("connect") by its own timeout (``None``: only the attempt timeout applies)
    so that a server that accepts TCP but never answers is reported as a timeout of that phase."""
    if seconds is None:
        yield
        return
    from smokegate.durations import format_duration

    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        took = format_duration(seconds)
        raise failure(
            ErrorKind.TIMEOUT,
            f"{phase} to {target} timed out after {took}",
            phase,
            f"an answer within {took}",
            "no answer",
            target=target,
        ) from None


@contextlib.contextmanager
def pem_files(**values: str | None) -> Iterator[dict[str, str]]:
    """Paths for TLS material given as a path or as PEM text (a CA from a Secret is usually
    text, but libpq only reads files): text goes to private temp files removed afterwards."""
    paths: dict[str, str] = {}
    temps: list[str] = []
    try:
        for name, value in values.items():
            if not value:
                continue
            if "-----BEGIN" in value:
                fd, path = tempfile.mkstemp(prefix="smokegate-", suffix=".pem")
                with os.fdopen(fd, "w") as fh:  # mkstemp files are 0600, as libpq wants keys
                    fh.write(value)
                temps.append(path)
                paths[name] = path
            else:
                paths[name] = value
        yield paths
    finally:
        for path in temps:
            with contextlib.suppress(OSError):
                os.unlink(path)


# ---------------------------------------------------------------------------------------------
# The postgres kind

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


class PostgresSpec(Spec):
    """Connect to PostgreSQL, run a query, check the rows."""

    dsn: str | None = None
    """libpq connection string: `postgresql://user:pass@host:5432/db?sslmode=require` or
    `host=… dbname=…`. Redacted everywhere; fields below override its parts."""
    host: str | None = None
    """Server name or address (required without `dsn`)."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Default 5432."""
    database: str | None = None
    """Database name (libpq `dbname`); default: the user name."""
    user: str | None = None
    password: str | None = None
    """Use a `secretRef`, `${secret:…}` or a `secret: true` var; redacted in every output."""
    sslmode: SslMode | None = None
    """libpq sslmode. Default: `verify-full` when `ca` is given, else libpq's `prefer`."""
    ca: LocalPath | None = None
    """CA bundle to verify the server against (file path or PEM text)."""
    cert: LocalPath | None = None
    """Client certificate for mutual TLS (file path or PEM text)."""
    key: LocalPath | None = None
    """Private key for `cert` (file path or PEM text)."""
    connect_timeout: Duration | None = None
    """Give up connecting after this long (default: the check's attempt timeout)."""
    query: str = Field(default="SELECT 1", min_length=1)
    """SQL to run; expectations apply to its (first) result set."""
    read_only: bool = True
    """Run the query in a read-only transaction, rolled back afterwards. `false` commits."""
    expect: SqlExpect = Field(default_factory=SqlExpect)

    @model_validator(mode="after")
    def _where(self) -> PostgresSpec:
        if not self.dsn and not self.host:
            raise ValueError("give `dsn` or `host`")
        if self.key and not self.cert:
            raise ValueError("`key` needs `cert`")
        return self


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
            p[keyword] = value
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

_EXPECTED = {
    ErrorKind.DNS: ("host", "a resolvable name"),
    ErrorKind.FORBIDDEN: ("access", "this client allowed to connect"),
    ErrorKind.AUTH: ("authentication", "credentials accepted"),
    ErrorKind.NOT_FOUND: ("database", "an existing database"),
    ErrorKind.TIMEOUT: ("connect", "an answer"),
    ErrorKind.TLS: ("tls", "a verified TLS session"),
    ErrorKind.CONNECTION_REFUSED: ("connection", "a server accepting connections"),
    ErrorKind.PROTOCOL: ("connection", "a PostgreSQL session"),
    ErrorKind.CONFIG: ("dsn", "a valid connection string"),
}


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


def connect_failure(
    reason: str, target: str, *, kind: str | None = None, hint: str = ""
) -> CheckFailed:
    if kind is None:
        kind = next((k for k, rx in _CONNECT_PATTERNS if rx.search(reason)), ErrorKind.PROTOCOL)
    subject, expected = _EXPECTED.get(kind, ("connection", "a session"))
    words = {
        ErrorKind.DNS: "cannot resolve host",
        ErrorKind.AUTH: "authentication failed at",
        ErrorKind.FORBIDDEN: "access denied at",
        ErrorKind.TLS: "TLS failure with",
        ErrorKind.TIMEOUT: "timed out connecting to",
        ErrorKind.NOT_FOUND: "database not found at",
    }.get(kind, "cannot connect to")
    return failure(
        kind,
        f"{words} {target}: {reason}{hint}",
        subject,
        expected,
        reason,
        target=target,
    )


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

    if spec.password:
        ctx.redactor.add(spec.password)
    for secret in dsn_secrets(spec.dsn or ""):
        ctx.redactor.add(secret)

    try:
        params = _params(spec, conninfo_to_dict(spec.dsn or ""))
        info = conninfo_to_dict(spec.dsn or "", **params)
    except psycopg.Error as exc:
        # libpq quotes the offending part of the DSN back; scrub() masks the password in it
        # even when the DSN is too malformed for the redactor to have learnt the password.
        reason = scrub(str(exc).strip(), ctx)
        raise connect_failure(f"invalid dsn: {reason}", "postgres", kind=ErrorKind.CONFIG) from None
    target = _target(info)
    started = time.perf_counter()
    with pem_files(sslrootcert=spec.ca, sslcert=spec.cert, sslkey=spec.key) as files:
        try:
            async with within(spec.connect_timeout, "connect", target):
                keywords: dict[str, Any] = {**params, **files}
                conn = await psycopg.AsyncConnection.connect(spec.dsn or "", **keywords)
        except UnicodeError as exc:
            # The host name failed IDNA encoding (empty or over-long label) before any lookup.
            reason = f"invalid host name ({exc})"
            raise connect_failure(reason, target, kind=ErrorKind.DNS) from None
        except psycopg.Error as exc:
            reason = scrub(_libpq_reason(str(exc)), ctx)
            hint = ""
            if "root certificate file" in reason:
                hint = " (give `ca`, or sslmode: require to encrypt without verifying)"
            raise connect_failure(reason, target, hint=hint) from None
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
    return sql_outcome(spec.expect, names, rows, count, details)


SPEC = PostgresSpec
# Imported by the engine before the run starts (see engine.runner._run_fns).
PRELOAD = ("psycopg", "psycopg.conninfo")
