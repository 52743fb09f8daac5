"""``redis``: connect (AUTH, TLS, database index), send one command (``PING`` by default), check
the reply.

    - name: session-cache
      redis:
        host: sessions-redis.shop.svc
        username: smoke                       # ACL user (Redis 6+); omit for `requirepass`
        password: {secretRef: {name: sessions-redis, key: password}}
        tls: {ca: certs/redis-ca.pem}
        db: 2
        command: [GET, "feature:checkout-v2"]
        expect:
          reply: "on"

or ``url: "rediss://smoke:${redis_password}@sessions-redis:6380/2"`` (``rediss`` = TLS); fields
given next to a URL override its parts.

Driver: redis-py's asyncio ``Connection`` (the ``redis`` extra), used directly rather than
through a client and pool: one connection per attempt, no retries behind the engine's back, and
replies exactly as the server sent them (RESP2, so Redis 5 and proxies answer the same way):
strings, integers, null and lists, with no client-side reshaping.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator, model_validator

from smokegate.checks._protocol import (
    cause_kind,
    check_value_shown,
    connect_failure,
    dsn_secrets,
    failure,
    hostport,
    override,
    scrub,
    shown,
    via,
    within,
)
from smokegate.checks.base import (
    CheckContext,
    CheckFailed,
    ErrorKind,
    Outcome,
    Secret,
    Spec,
    Text,
    failed,
    passed,
    reveal,
)
from smokegate.checks.http import TlsOptions
from smokegate.core.secrets import hide_credentials
from smokegate.suite.model import Duration

_UNSET = object()
_PING: list[str | int | float] = ["PING"]


class RedisExpect(Spec):
    reply: Any = None
    """The reply: a literal (`PONG`, `42`, `null`, a list) or a matcher (`{regex: …}`,
    `{gte: 1}`, `{contains: …}`). Default: `PONG` for the default `PING`, else any reply."""


class RedisSpec(Spec):
    """Connect to Redis, send a command, check the reply."""

    url: Text | None = None
    """`redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS. Redacted."""
    host: str | None = None
    """Server name or address (required without `url`)."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Default 6379."""
    username: str | None = None
    """ACL user (Redis 6+); without it, AUTH uses the password alone (`requirepass`)."""
    password: Text | None = None
    """Use a `secretRef`, `${secret:…}` or a `secret: true` var; redacted in every output."""
    db: int | None = Field(default=None, ge=0)
    """Database index to SELECT (default 0)."""
    tls: bool | TlsOptions = False
    """`true` for TLS with the system CAs, or `{ca, cert, key, verify}`."""
    connect_timeout: Duration | None = None
    """Give up connecting (TCP, TLS, AUTH, SELECT) after this long (default: the attempt
    timeout)."""
    command: list[str | int | float] = Field(default_factory=lambda: _PING, min_length=1)
    """The command as an argv list: `[GET, key]`, `[HGET, user:1, name]`, `[DBSIZE]`."""
    expect: RedisExpect = Field(default_factory=RedisExpect)

    @field_validator("url")
    @classmethod
    def _url_valid(cls, v: str | Secret | None) -> str | Secret | None:
        if v is not None:
            parse_url(reveal(v))
            return hide_credentials(v)  # a password in the userinfo is a secret too
        return v

    @model_validator(mode="after")
    def _where(self) -> RedisSpec:
        if not self.url and not self.host:
            raise ValueError("give `url` or `host`")
        if self.username and self.password is None and not self.url:
            raise ValueError("`username` needs `password`")
        return self


def parse_url(url: str) -> dict[str, Any]:
    """``redis[s]://user:pass@host:port/db`` -> parts. Errors never quote the URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("url is not a valid redis:// URL (bad port?)") from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError("url must look like redis://[user:password@]host:6379[/db] or rediss://")
    out: dict[str, Any] = {"host": parts.hostname, "tls": parts.scheme == "rediss"}
    if port is not None:
        out["port"] = port
    if parts.username:
        out["username"] = unquote(parts.username)
    if parts.password is not None:
        out["password"] = unquote(parts.password)
    path = parts.path.strip("/")
    if path:
        if not path.isdigit():
            raise ValueError("url path must be a database index, like /0")
        out["db"] = int(path)
    if parts.query:
        raise ValueError("url: query parameters are not supported (use the check's fields)")
    return out


def _settings(spec: RedisSpec) -> dict[str, Any]:
    """The connection's settings, for the driver: the URL's and the password revealed here."""
    s = parse_url(reveal(spec.url)) if spec.url else {}
    for name in ("host", "port", "username", "password", "db"):
        if getattr(spec, name) is not None:
            s[name] = reveal(getattr(spec, name))
    if spec.tls is not False or "tls" not in s:
        s["tls"] = spec.tls
    s.setdefault("port", 6379)
    s.setdefault("db", 0)
    return s


def _tls_kwargs(tls: bool | TlsOptions) -> dict[str, Any]:
    opts = tls if isinstance(tls, TlsOptions) else TlsOptions()
    kw: dict[str, Any] = {
        "ssl_cert_reqs": "required" if opts.verify else "none",
        "ssl_check_hostname": opts.verify,
    }
    if opts.ca and "-----BEGIN" in opts.ca:
        kw["ssl_ca_data"] = opts.ca
    elif opts.ca:
        kw["ssl_ca_certs"] = opts.ca
    if opts.cert:
        kw["ssl_certfile"] = opts.cert
        kw["ssl_keyfile"] = opts.key
    return kw


def _check_tls_files(tls: bool | TlsOptions) -> None:
    # redis-py reads these files while connecting and reports a missing one as a connection
    # error; a typo in the suite is a config problem, so say that before connecting.
    if isinstance(tls, TlsOptions):
        for name in ("ca", "cert", "key"):
            value = getattr(tls, name)
            if value and "-----BEGIN" not in value and not os.path.isfile(value):
                raise CheckFailed(f"tls.{name}: no such file: {value}", kind=ErrorKind.CONFIG)


@functools.cache
def _named_ssl_connection() -> type:
    """redis-py's ``SSLConnection`` starting TLS with a given server name: under a
    ``--resolve`` override it connects to the address, and SNI and hostname verification must
    still use the host name (redis-py has no parameter for it; asyncio's ``open_connection``,
    which it calls with these arguments, takes ``server_hostname``)."""
    from redis.asyncio.connection import SSLConnection

    class NamedSSLConnection(SSLConnection):
        def __init__(self, *, server_name: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.server_name = server_name

        def _connection_arguments(self) -> Mapping[str, Any]:
            return {**super()._connection_arguments(), "server_hostname": self.server_name}

    return NamedSSLConnection


def _plain(value: Any) -> Any:
    """A reply as the matchers see it (error replies inside arrays become their text)."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, Exception):
        return f"ERR {value}"
    return value


def _connect_failure(reason: str, target: str, *, kind: str, hint: str = "") -> CheckFailed:
    return connect_failure(reason, target, kind=kind, session="a Redis connection", hint=hint)


def _failure(exc: Exception, ctx: CheckContext, target: str, phase: str, tls: bool) -> CheckFailed:
    from redis import exceptions as rex

    reason = scrub(str(exc) or type(exc).__name__, ctx)
    if isinstance(exc, rex.AuthenticationError | rex.AuthenticationWrongNumberOfArgsError):
        if "NOAUTH" in reason or "Authentication required" in reason:
            reason += " (the server wants a password: set `password`)"
        return _connect_failure(reason, target, kind=ErrorKind.AUTH)
    if isinstance(exc, rex.NoPermissionError):
        return failure(
            ErrorKind.FORBIDDEN, f"command refused: {reason}", "command", "permitted", reason
        )
    if isinstance(exc, rex.ResponseError):
        if phase == "connect" and "DB index" in reason:
            return _connect_failure(reason, target, kind=ErrorKind.NOT_FOUND)
        return failure(
            ErrorKind.QUERY, f"command failed: {reason}", "command", "a reply, not an error", reason
        )
    if isinstance(exc, rex.TimeoutError):
        hint = " (TLS to a plaintext port?)" if tls and phase == "connect" else ""
        return _connect_failure(reason, target, kind=ErrorKind.TIMEOUT, hint=hint)
    kind = cause_kind(exc)
    hint = ""
    if kind == ErrorKind.PROTOCOL and not tls:
        hint = " (the server closed the connection: a TLS-only port? set `tls`)"
    if phase == "command" and kind is None:
        kind = ErrorKind.PROTOCOL
    return _connect_failure(reason, target, kind=kind or ErrorKind.CONNECTION_REFUSED, hint=hint)


async def run(spec: RedisSpec, ctx: CheckContext) -> Outcome:
    from redis import exceptions as rex
    from redis.asyncio.connection import Connection, SSLConnection

    s = _settings(spec)
    if s.get("password"):
        ctx.redactor.add(s["password"])
    for secret in dsn_secrets(reveal(spec.url) or ""):
        ctx.redactor.add(secret)
    host, port, tls = s["host"], s["port"], s["tls"]
    address = override(ctx, host, port)
    target = via(hostport(host, port), address)
    kwargs: dict[str, Any] = {
        "host": address or host,
        "port": port,
        "username": s.get("username"),
        "password": s.get("password"),
        "db": s["db"],
        "protocol": 2,
        "decode_responses": True,
        "encoding_errors": "backslashreplace",
        "driver_info": None,  # no CLIENT SETINFO round trips (and no errors from old servers)
        "socket_connect_timeout": spec.connect_timeout,
        "socket_timeout": None,  # the attempt timeout bounds the command
    }
    conn: Connection
    if tls:
        _check_tls_files(tls)
        if address:  # connect to the address, keep the host name for TLS
            conn = _named_ssl_connection()(server_name=host, **kwargs, **_tls_kwargs(tls))
        else:
            conn = SSLConnection(**kwargs, **_tls_kwargs(tls))
    else:
        conn = Connection(**kwargs)
    started = time.perf_counter()
    argv = list(spec.command)
    phase = "connect"
    try:
        async with within(spec.connect_timeout, "connect", target):
            await conn.connect()
        phase = "command"
        await conn.send_command(*argv)
        reply = _plain(await conn.read_response())
    except rex.RedisError as exc:
        raise _failure(exc, ctx, target, phase, bool(tls)) from None
    finally:
        await conn.disconnect()
    details = {
        "target": target,
        "tls": bool(tls),
        "db": s["db"],
        "command": scrub(" ".join(map(str, argv)), ctx),
        "reply": shown(reply, ctx),  # scrubbed whole, then shortened
        "latency": round(time.perf_counter() - started, 6),
    }
    expected: Any = _UNSET
    if "reply" in spec.expect.model_fields_set:
        expected = spec.expect.reply
    elif len(argv) == 1 and str(argv[0]).upper() == "PING":
        expected = "PONG"
    if expected is not _UNSET:
        miss = check_value_shown("reply", expected, reply, lambda v: shown(v, ctx))
        if miss:
            return failed([miss], details=details)
    return passed(details=details)


SPEC = RedisSpec
# Imported by the engine before the run starts (see engine.runner._run_fns).
PRELOAD = ("redis.asyncio.connection",)
