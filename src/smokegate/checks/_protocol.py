"""Helpers shared by the protocol check kinds (``postgres``, ``mysql``, ``redis``, ``grpc``).

Not a check kind: the registry in ``smokegate.checks`` never names this module. It holds what
those kinds have in common:

- keeping credentials out of driver text (``dsn_secrets``, ``scrub``, ``shown``);
- turning driver and socket errors into named failures (``cause_kind``, ``failure``,
  ``connect_failure``, ``within``);
- TLS material given as PEM text for drivers that only read files (``pem_files``);
- ``--resolve`` overrides (``override``, ``hostport``, ``via``);
- the row expectations of the SQL kinds (``SqlExpect``, ``sql_outcome``);
- the connection fields of the SQL kinds (``SqlSpec``).
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
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Self
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
    Text,
    failed,
    passed,
)
from smokegate.checks.expect import check_value, is_matcher, render
from smokegate.core.secrets import MASK, Secret, hide_credentials
from smokegate.suite.model import Duration

# ---------------------------------------------------------------------------------------------
# Credentials

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
    looks like one (``user:…@`` in a URI, ``password=…``) masked too, known or not.

    Scrub the whole text before shortening it: a secret cut in half is no longer recognised."""
    text = ctx.redactor.redact(text)
    text = _URI_PASSWORD.sub(lambda m: m.group(0).replace(m.group(1), MASK), text)
    return _KV_PASSWORD.sub(f"password={MASK}", text)


def scrub_data(value: Any, ctx: CheckContext) -> Any:
    """``scrub`` applied to every string inside a value (lists, tuples, dicts)."""
    if isinstance(value, str):
        return scrub(value, ctx)
    if isinstance(value, list | tuple):
        return [scrub_data(v, ctx) for v in value]
    if isinstance(value, dict):
        return {scrub(str(k), ctx): scrub_data(v, ctx) for k, v in value.items()}
    return value


def shown(value: Any, ctx: CheckContext) -> str:
    """A value from the server as evidence shows it: scrubbed whole, then rendered (which
    shortens long values)."""
    return render(scrub_data(value, ctx))


# ---------------------------------------------------------------------------------------------
# Failures


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


# Evidence subject and expectation per kind of connection failure.
_CONNECT_EXPECTED = {
    ErrorKind.DNS: ("host", "a resolvable name"),
    ErrorKind.FORBIDDEN: ("access", "this client allowed to connect"),
    ErrorKind.AUTH: ("authentication", "credentials accepted"),
    ErrorKind.NOT_FOUND: ("database", "an existing database"),
    ErrorKind.TIMEOUT: ("connect", "an answer"),
    ErrorKind.TLS: ("tls", "a verified TLS session"),
    ErrorKind.CONNECTION_REFUSED: ("connection", "a server accepting connections"),
    ErrorKind.CONFIG: ("dsn", "a valid connection string"),
}

_CONNECT_WORDS = {
    ErrorKind.DNS: "cannot resolve host",
    ErrorKind.AUTH: "authentication failed at",
    ErrorKind.FORBIDDEN: "access denied at",
    ErrorKind.TLS: "TLS failure with",
    ErrorKind.TIMEOUT: "timed out connecting to",
    ErrorKind.NOT_FOUND: "database not found at",
}


def connect_failure(
    reason: str, target: str, *, kind: str, session: str, hint: str = ""
) -> CheckFailed:
    """A failure to establish a session with ``target``. ``session`` is what a working
    connection would have given, in the kind's words ("a PostgreSQL session", "a Redis
    connection"): the expectation shown when the server spoke but not the expected protocol."""
    subject, expected = _CONNECT_EXPECTED.get(kind, ("connection", session))
    words = _CONNECT_WORDS.get(kind, "cannot connect to")
    return failure(
        kind,
        f"{words} {target}: {reason}{hint}",
        subject,
        expected,
        reason,
        target=target,
    )


@contextlib.asynccontextmanager
async def within(seconds: float | None, phase: str, target: str) -> AsyncIterator[None]:
    """Bound a phase ("connect") by its own timeout (``None``: only the attempt timeout applies)
    so that a server that accepts TCP but never answers is reported as a timeout of that phase."""
    if seconds is None:
        yield
        return
    from smokegate.core.durations import format_duration

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


# ---------------------------------------------------------------------------------------------
# Where to connect


def hostport(host: str, port: int | str) -> str:
    """``host:port``, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def override(ctx: CheckContext, host: str, port: int | str) -> str | None:
    """The address to connect to for ``host:port`` under a ``--resolve HOST:PORT:ADDR``
    override, or ``None`` to connect to ``host`` as usual. Under an override each kind still
    uses ``host`` as the TLS server name (SNI and certificate verification), as curl does."""
    try:
        hit = ctx.connect_address(host, int(port))
    except ValueError:  # not a port number: the driver will say so
        return None
    return hit[0] if hit else None


def via(target: str, address: str | None) -> str:
    """``target`` as reports show it: ``db.apps.svc:5432 via 127.0.0.1`` under an override."""
    return f"{target} via {address}" if address else target


# ---------------------------------------------------------------------------------------------
# TLS material


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
# Row expectations, shared by the SQL kinds

SAMPLE_ROWS = 5
"""Rows kept for evaluation and for the failure snippet (the count covers all rows)."""


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


class SqlSpec(Spec):
    """The fields every SQL kind takes: where to connect, with which credentials and TLS, what
    to run and what to expect. Each kind subclasses it, narrowing ``sslmode`` to the modes its
    driver knows and re-declaring the fields whose documentation is its own (an attribute
    docstring is the field's description in the JSON Schema). A re-declared field keeps its
    place in the schema, so keep the type and default the same as here."""

    dsn: Text | None = None
    """Connection string; redacted everywhere, fields below override its parts."""
    host: str | None = None
    """Server name or address (required without `dsn`)."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Default: the server's usual port."""
    database: str | None = None
    user: str | None = None
    password: Text | None = None
    """Use a `secretRef`, `${secret:…}` or a `secret: true` var; redacted in every output."""
    sslmode: str | None = None
    """TLS mode, in libpq's words (`disable` … `verify-full`)."""
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
    """Run the query read-only (the default); `false` allows writes."""
    expect: SqlExpect = Field(default_factory=SqlExpect)

    @field_validator("dsn")
    @classmethod
    def _dsn_credentials(cls, v: str | Secret | None) -> str | Secret | None:
        # A password written in the DSN (userinfo, or password=…) is a secret too.
        return hide_credentials(v) if v is not None else None

    @model_validator(mode="after")
    def _where(self) -> Self:
        if not self.dsn and not self.host:
            raise ValueError("give `dsn` or `host`")
        if self.key and not self.cert:
            raise ValueError("`key` needs `cert`")
        return self


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


def check_value_shown(
    subject: str, want: Any, got: Any, show: Callable[[Any], str]
) -> Mismatch | None:
    """``check_value`` on one value, showing it with ``show`` (which scrubs before shortening:
    ``check_value`` renders, and so shortens, before the report's redaction)."""
    miss = check_value(subject, want, [got])
    return Mismatch(miss.subject, miss.expected, show(got)) if miss else None


def evaluate_rows(
    expect: SqlExpect,
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    count: int,
    show: Callable[[Any], str] = render,
) -> list[Mismatch]:
    """Every unmet expectation on a result set (``rows`` is a sample, ``count`` the total);
    values found are shown with ``show``."""
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
                    f"{len(first)} columns: {show(first)}",
                )
            )
        else:
            for i, (want, got) in enumerate(zip(expect.first_row, first, strict=True)):
                miss = check_value_shown(f"first row [{i}] ({names[i]})", want, got, show)
                if miss:
                    misses.append(miss)
    for name, want in expect.columns.items():
        if name not in names:
            misses.append(
                Mismatch(f"column {name}", "present", f"absent (columns: {', '.join(names)})")
            )
            continue
        miss = check_value_shown(f"column {name}", want, first[list(names).index(name)], show)
        if miss:
            misses.append(miss)
    return misses


def rows_snippet(
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    count: int,
    show: Callable[[Any], str] = render,
) -> str:
    """The first rows as ``name=value`` lines: what the query actually returned."""
    lines = [
        ", ".join(f"{n}={show(cell(v))}" for n, v in zip(names, row, strict=False))
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
    ctx: CheckContext,
) -> Outcome:
    details = {**details, "rows": count, "columns": list(names)}

    def show(value: Any) -> str:
        return shown(value, ctx)

    misses = evaluate_rows(expect, names, rows, count, show)
    if not misses:
        return passed(details=details)
    return failed(misses, snippet=rows_snippet(names, rows, count, show), details=details)
