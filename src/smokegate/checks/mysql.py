"""``mysql``: connect to MySQL or MariaDB, run one query (``SELECT 1`` by default), check the rows.

    - name: catalog-db
      mysql:
        host: catalog-mariadb.shop.svc
        database: catalog
        user: smoke
        password: {secretRef: {name: catalog-db, key: password}}
        sslmode: verify-full
        ca: {secretRef: {name: catalog-db-tls, key: ca.crt}}
        query: SELECT COUNT(*) AS products FROM products WHERE active = 1
        expect:
          columns: {products: {gte: 1}}

or ``dsn: "mysql://smoke:${db_password}@catalog-mariadb:3306/catalog"`` (``mariadb://`` too);
fields given next to a DSN override its parts. Same fields and expectations as ``postgres``.

Driver: aiomysql (the ``mysql`` extra), chosen over asyncmy because it is pure Python on top of
PyMySQL: it installs from a wheel on every platform and Python version a CI image may have
(Alpine/musl, arm64, new CPython) with no compiler, while asyncmy ships Cython extensions that
need a matching wheel or a toolchain. asyncmy's speed buys nothing here: a check runs one
query. aiomysql is maintained by aio-libs and speaks both MySQL and MariaDB (native and
caching_sha2 auth, TLS via an ``ssl.SSLContext``).
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import time
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, field_validator

from smokegate.checks._protocol import (
    SAMPLE_ROWS,
    SqlSpec,
    cause_kind,
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
from smokegate.checks.base import (
    CheckContext,
    CheckFailed,
    ErrorKind,
    LocalPath,
    Outcome,
    Secret,
    Text,
    reveal,
)
from smokegate.suite.model import Duration

SslMode = Literal["disable", "prefer", "require", "verify-ca", "verify-full"]

# MySQL's own ssl-mode names, accepted in a DSN's query string.
_MYSQL_SSL_MODES: dict[str, SslMode] = {
    "disabled": "disable",
    "preferred": "prefer",
    "required": "require",
    "verify_ca": "verify-ca",
    "verify_identity": "verify-full",
}


class MysqlSpec(SqlSpec):
    """Connect to MySQL/MariaDB, run a query, check the rows."""

    dsn: Text | None = None
    """`mysql://user:pass@host:3306/db` (or `mariadb://`; `?ssl-mode=REQUIRED` accepted).
    Redacted everywhere; fields below override its parts."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Default 3306."""
    sslmode: SslMode | None = None
    """`disable`, `prefer` (TLS if offered, unverified), `require` (TLS, unverified),
    `verify-ca`, `verify-full` (chain and host name). Default: `verify-full` when `ca` is given,
    else `prefer`."""
    ca: LocalPath | None = None
    """CA bundle to verify the server against (file path or PEM text); default: system CAs."""
    connect_timeout: Duration | None = None
    """Give up connecting (TCP, TLS, login) after this long (default: the attempt timeout)."""
    query: str = Field(default="SELECT 1", min_length=1)
    """One SQL statement; expectations apply to its result set."""
    read_only: bool = True
    """Run in a read-only session (writes and DDL are refused). `false` allows writes, which
    are committed (autocommit)."""

    @field_validator("dsn")
    @classmethod
    def _dsn_valid(cls, v: str | Secret | None) -> str | Secret | None:
        if v is not None:
            parse_dsn(reveal(v))
        return v


def parse_dsn(dsn: str) -> dict[str, Any]:
    """``mysql://user:pass@host:port/db?ssl-mode=…`` -> parts. Errors never quote the DSN."""
    try:
        parts = urlsplit(dsn)
        port = parts.port
    except ValueError:
        raise ValueError("dsn is not a valid mysql:// URL (bad port?)") from None
    if parts.scheme not in ("mysql", "mariadb") or not parts.hostname:
        raise ValueError("dsn must look like mysql://user:password@host:3306/database")
    out: dict[str, Any] = {"host": parts.hostname}
    if port is not None:
        out["port"] = port
    if parts.username:
        out["user"] = unquote(parts.username)
    if parts.password is not None:
        out["password"] = unquote(parts.password)
    if parts.path.strip("/"):
        out["database"] = unquote(parts.path.strip("/"))
    for key, values in parse_qs(parts.query).items():
        if key.replace("_", "-").lower() not in ("ssl-mode", "sslmode"):
            raise ValueError(f"dsn: unsupported parameter {key!r} (use the check's fields)")
        mode = values[-1].lower()
        mode = _MYSQL_SSL_MODES.get(mode, mode)
        if mode not in ("disable", "prefer", "require", "verify-ca", "verify-full"):
            raise ValueError(f"dsn: unknown ssl-mode {values[-1]!r}")
        out["sslmode"] = mode
    return out


def _settings(spec: MysqlSpec) -> dict[str, Any]:
    """The connection's settings, for the driver: the DSN's and the password revealed here."""
    s = parse_dsn(reveal(spec.dsn)) if spec.dsn else {}
    for name in ("host", "port", "database", "user", "password", "sslmode"):
        if getattr(spec, name) is not None:
            s[name] = reveal(getattr(spec, name))
    s.setdefault("port", 3306)
    s.setdefault("sslmode", "verify-full" if spec.ca else "prefer")
    return s


class _NamedContext(ssl.SSLContext):
    """An ``SSLContext`` that sends and verifies ``server_name`` whatever name it is handed.
    aiomysql has no server-name parameter: it starts TLS with the host it connected to as the
    name, which under a ``--resolve`` override is the address. asyncio (and uvloop) start every
    TLS session with ``wrap_bio``, so pinning the name here keeps SNI and ``verify-full`` on the
    host name the suite gave."""

    server_name: str | None = None

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        name = self.server_name or server_hostname
        return super().wrap_bio(incoming, outgoing, server_side, name, session)


def _ssl_context(
    mode: str, ca: str | None, files: dict[str, str], server_name: str | None = None
) -> ssl.SSLContext | None:
    if mode == "disable":
        return None
    try:
        # What ssl.create_default_context() does, on the subclass.
        ctx = _NamedContext(ssl.PROTOCOL_TLS_CLIENT)
        if ca and "-----BEGIN" in ca:
            ctx.load_verify_locations(cadata=ca)
        elif ca:
            ctx.load_verify_locations(cafile=ca)
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        ctx.server_name = server_name
        if mode in ("prefer", "require"):  # encryption without verification, like libpq
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif mode == "verify-ca":
            ctx.check_hostname = False
        if "cert" in files:
            ctx.load_cert_chain(files["cert"], files.get("key"))
    except (OSError, ssl.SSLError) as exc:
        raise CheckFailed(f"cannot load TLS files: {exc}", kind=ErrorKind.CONFIG) from None
    return ctx


class _TlsUnavailable(Exception):
    """The server offers no TLS but sslmode requires it: stop before sending credentials."""


# Error codes (client 2xxx, server 1xxx) -> kinds.
_AUTH = {1045, 1698, 1251, 1820, 1862, 2059, 1275}
_FORBIDDEN = {1044, 1130, 1142, 1143, 1227, 1370}
_QUERY_TIMEOUT = {1969, 3024, 1317}


def _reason(exc: BaseException) -> str:
    """The driver's text plus the socket-level cause it wraps (``Can't connect…`` alone is
    not actionable)."""
    text = str(exc.args[1]) if len(exc.args) >= 2 else str(exc)
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause):
        text += f": {cause}"
    return text


def _connect_failure(exc: BaseException, ctx: CheckContext, target: str) -> CheckFailed:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    reason = scrub(_reason(exc), ctx)
    kind = cause_kind(exc)
    if code in _AUTH:
        kind = ErrorKind.AUTH
    elif code in _FORBIDDEN:
        kind = ErrorKind.FORBIDDEN
    elif code == 1049:
        kind = ErrorKind.NOT_FOUND
    elif code == 1040:
        kind = ErrorKind.CONNECTION_REFUSED
    hint = ""
    if kind == ErrorKind.PROTOCOL:
        hint = " (the server closed the connection: wrong port, or a proxy that wants TLS?)"
    return _session_failure(reason, target, kind=kind or ErrorKind.CONNECTION_REFUSED, hint=hint)


def _session_failure(reason: str, target: str, *, kind: str, hint: str = "") -> CheckFailed:
    return connect_failure(reason, target, kind=kind, session="a MySQL session", hint=hint)


def _query_failure(exc: BaseException, ctx: CheckContext, read_only: bool) -> CheckFailed:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    text = str(exc.args[1]) if len(exc.args) >= 2 else str(exc)
    reason = scrub(f"{code}: {text}" if code else text, ctx)
    kind, hint = ErrorKind.QUERY, ""
    if code in _FORBIDDEN:
        kind = ErrorKind.FORBIDDEN
    elif code in _QUERY_TIMEOUT:
        kind = ErrorKind.TIMEOUT
    elif code == 1792 and read_only:  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
        hint = " (the query runs read-only; set readOnly: false to allow writes)"
    elif code is not None and code >= 2000:  # client-side: the connection broke mid-query
        kind = ErrorKind.PROTOCOL
    return failure(kind, f"query failed: {reason}{hint}", "query", "runs without error", reason)


@functools.cache
def _connection_class() -> type:
    """aiomysql's Connection, refusing to log in without TLS when sslmode requires it: plain
    aiomysql silently falls back to plaintext when the server offers no TLS."""
    import aiomysql
    from pymysql.constants import CLIENT

    class Connection(aiomysql.Connection):
        require_tls = False

        async def _request_authentication(self) -> None:
            if self.require_tls and not self.server_capabilities & CLIENT.SSL:
                raise _TlsUnavailable("the server does not support TLS, but sslmode requires it")
            await super()._request_authentication()

    return Connection


@functools.cache
def _cursor_class() -> type:
    import aiomysql

    class Cursor(aiomysql.Cursor):
        """Keeps server warnings as evidence instead of printing them via ``warnings``."""

        server_warnings: list[str]

        async def _show_warnings(self, conn: Any) -> None:
            self.server_warnings = []
            if self._result and self._result.has_next:
                return
            for w in await conn.show_warnings() or ():
                self.server_warnings.append(f"{w[0]} {w[1]}: {w[2]}")

    return Cursor


async def run(spec: MysqlSpec, ctx: CheckContext) -> Outcome:
    import pymysql
    from pymysql.constants import CLIENT

    s = _settings(spec)
    if s.get("password"):
        ctx.redactor.add(s["password"])
    for secret in dsn_secrets(reveal(spec.dsn) or ""):
        ctx.redactor.add(secret)
    host, port = s["host"], s["port"]
    address = override(ctx, host, port)
    target = via(hostport(host, port), address)
    started = time.perf_counter()
    with pem_files(cert=spec.cert, key=spec.key) as files:
        # Under an override, connect to the address and keep the host name for TLS.
        ssl_ctx = _ssl_context(s["sslmode"], spec.ca, files, server_name=address and host)
    conn = _connection_class()(
        host=address or host,
        port=port,
        user=s.get("user") or "",
        password=s.get("password") or "",
        db=s.get("database"),
        ssl=ssl_ctx,
        charset="utf8mb4",
        autocommit=True,
        program_name="smokegate",
    )
    conn.require_tls = s["sslmode"] != "prefer" and ssl_ctx is not None
    try:
        try:
            async with within(spec.connect_timeout, "connect", target):
                # Connection() + _connect() is what aiomysql.connect() does; it is spelled out
                # to use the subclass above.
                await conn._connect()
        except _TlsUnavailable as exc:
            raise _session_failure(str(exc), target, kind=ErrorKind.TLS) from None
        except UnicodeError as exc:
            # The host name failed IDNA encoding (empty or over-long label) before any lookup.
            reason = f"invalid host name ({exc})"
            raise _session_failure(reason, target, kind=ErrorKind.DNS) from None
        except pymysql.err.MySQLError as exc:
            raise _connect_failure(exc, ctx, target) from None
        cursor = await conn.cursor(_cursor_class())
        try:
            if spec.read_only:
                await cursor.execute("SET SESSION TRANSACTION READ ONLY")
            await cursor.execute(spec.query)
            names = [d[0] for d in cursor.description] if cursor.description else []
            rows = list(await cursor.fetchmany(SAMPLE_ROWS)) if cursor.description else []
            count = max(cursor.rowcount, len(rows))
        except pymysql.err.MySQLError as exc:
            raise _query_failure(exc, ctx, spec.read_only) from None
        details: dict[str, Any] = {
            "target": target,
            "server": conn.get_server_info(),
            "tls": ssl_ctx is not None and bool(conn.server_capabilities & CLIENT.SSL),
            "latency": round(time.perf_counter() - started, 6),
        }
        warnings = getattr(cursor, "server_warnings", None)
        if warnings:
            details["warnings"] = [scrub(w, ctx) for w in warnings]
    finally:
        with contextlib.suppress(Exception):
            await conn.ensure_closed()  # COM_QUIT, so the server logs no aborted connection
        conn.close()
    return sql_outcome(spec.expect, names, rows, count, details, ctx)


SPEC = MysqlSpec
# Imported by the engine before the run starts (see engine.runner._run_fns).
PRELOAD = ("aiomysql", "pymysql")
