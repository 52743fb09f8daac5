"""``http``: one request, then expectations on status, headers, body, JSON and latency.

    - name: version
      http:
        url: "${base}/version"
        headers: {Accept: application/json}
        expect:
          status: 2xx
          json: {"$.version": "${release.appVersion}"}
          schema: {type: object, required: [version]}
          latency: {max: 300ms}

Requests go through smokegate's own HTTP/1.1 client (``smokegate.httpclient``), which keeps one
connection pool per origin for the whole run; that is what makes thousands of checks cheap.
"""

from __future__ import annotations

import base64
import functools
import re
import ssl
from typing import Annotated, Any, Literal
from urllib.parse import urlencode, urlsplit

from pydantic import Field, field_validator, model_validator

from smokegate.checks.base import (
    CheckContext,
    CheckFailed,
    ErrorKind,
    KeepSecrets,
    LocalPath,
    Mismatch,
    Outcome,
    Secret,
    Spec,
    Text,
    failed,
    passed,
    reveal,
)
from smokegate.checks.expect import Regex, check_regex, check_value, compiled_regex, render
from smokegate.core.secrets import Redactor, hide_credentials
from smokegate.suite.model import Duration

SNIPPET_BYTES = 512


class TlsOptions(Spec):
    verify: bool = True
    """Verify the server certificate chain and hostname."""
    ca: LocalPath | None = None
    """CA bundle (file path, or PEM text) to verify against instead of the system store."""
    cert: LocalPath | None = None
    """Client certificate (PEM file) for mutual TLS."""
    key: LocalPath | None = None
    """Private key for `cert`, if not in the same file."""


class HeaderMatch(Spec):
    equals: str | None = None
    regex: Regex | None = None
    present: bool | None = None


class BodyExpect(Spec):
    contains: str | list[str] | None = None
    not_contains: str | list[str] | None = None
    regex: Regex | None = None
    equals: str | None = None


class LatencyExpect(Spec):
    max: Duration


StatusSpec = int | str


class HttpExpect(Spec):
    status: StatusSpec | list[StatusSpec] = "2xx"
    """Accepted status codes: 200, "2xx", "200-299", or a list of those. Default 2xx."""
    headers: dict[str, str | HeaderMatch] = Field(default_factory=dict)
    """Header name -> exact value, or {equals|regex|present}."""
    body: BodyExpect | None = None
    json_: dict[str, Any] = Field(default_factory=dict, alias="json")
    """JSONPath (RFC 9535) -> literal value or matcher {equals, notEquals, regex, exists, gt,
    gte, lt, lte, contains, length, oneOf, type}."""
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    """JSON Schema (draft 2020-12) the JSON body must satisfy."""
    latency: LatencyExpect | None = None

    @field_validator("status")
    @classmethod
    def _status_valid(cls, v: Any) -> Any:
        for item in v if isinstance(v, list) else [v]:
            _status_range(item)
        return v

    @field_validator("json_")
    @classmethod
    def _paths_compile(cls, v: dict[str, Any]) -> dict[str, Any]:
        for expr, want in v.items():
            try:
                _compiled_path(expr)
            except Exception as exc:
                raise ValueError(f"invalid JSONPath {expr!r}: {exc}") from None
            check_regex(want)  # a matcher's regex
        return v

    @field_validator("schema_")
    @classmethod
    def _schema_valid(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            from jsonschema import SchemaError, validators

            try:
                validators.validator_for(v).check_schema(v)
            except SchemaError as exc:
                raise ValueError(f"invalid JSON Schema: {exc.message}") from None
            except (OverflowError, RecursionError) as exc:
                # The metaschema's regex format compiles every `pattern`: a repetition count past
                # the regex engine's limit is an OverflowError, not a SchemaError.
                raise ValueError(f"invalid JSON Schema: {exc}") from None
        return v


class BasicAuth(Spec):
    username: Text
    password: Text


class HttpSpec(Spec):
    """An HTTP(S) request and what its response must look like."""

    url: Text
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, Text] = Field(default_factory=dict)
    query: dict[str, Text | int | list[Text]] = Field(default_factory=dict)
    body: Text | None = None
    """Raw request body."""
    json_: Annotated[Any, KeepSecrets()] = Field(default=None, alias="json")
    """JSON request body (sets Content-Type: application/json)."""
    basic_auth: BasicAuth | None = None
    tls: TlsOptions = Field(default_factory=TlsOptions)
    follow_redirects: bool = False
    max_redirects: int = Field(default=10, ge=0)
    resolve: list[str] = Field(default_factory=list)
    """curl-style overrides "host:port:address": connect there, keep Host and SNI."""
    expect: HttpExpect = Field(default_factory=HttpExpect)

    @field_validator("url")
    @classmethod
    def _url_valid(cls, v: str | Secret) -> str | Secret:
        # A regex, not urlsplit: this runs once per matrix instance (10,000 in the benchmark).
        if not _URL_HEAD.match(reveal(v)):
            raise ValueError(f"url must be http:// or https:// with a host, got {str(v)!r}")
        return hide_credentials(v)  # a password in the userinfo is a secret too

    @field_validator("resolve")
    @classmethod
    def _resolve_valid(cls, v: list[str]) -> list[str]:
        for item in v:
            parse_resolve(item)
        return v

    @model_validator(mode="after")
    def _one_body(self) -> HttpSpec:
        if self.body is not None and self.json_ is not None:
            raise ValueError("give either `body` or `json`, not both")
        return self


_URL_HEAD = re.compile(
    r"https?://(?:[^@/?#\s]*@)?(?:\[[0-9A-Fa-f:.]+\]|[^:/?#\s\[\]@]+)(?::\d{1,5})?(?:[/?#]|$)",
    re.IGNORECASE,
)


def parse_resolve(item: str) -> tuple[str, int, str]:
    """``host:port:address`` (address may be ``[v6]``) as curl's --resolve takes it."""
    host, sep, rest = item.partition(":")
    port, sep2, addr = rest.partition(":")
    if not (sep and sep2 and host and port.isdigit() and addr):
        raise ValueError(f"resolve entry {item!r} must look like host:port:address")
    return host.lower(), int(port), addr.strip("[]")


@functools.lru_cache(maxsize=4096)
def _status_range(item: StatusSpec) -> tuple[int, int]:
    if isinstance(item, int) and not isinstance(item, bool):
        if 100 <= item <= 599:
            return item, item
    elif isinstance(item, str):
        text = item.strip().lower()
        if len(text) == 3 and text[0] in "12345" and text[1:] == "xx":
            base = int(text[0]) * 100
            return base, base + 99
        lo, sep, hi = text.partition("-")
        if sep and lo.isdigit() and hi.isdigit() and 100 <= int(lo) <= int(hi) <= 599:
            return int(lo), int(hi)
        if text.isdigit() and 100 <= int(text) <= 599:
            return int(text), int(text)
    raise ValueError(f'invalid status {item!r}: use 200, "2xx" or "200-299"')


_SIMPLE_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['([^'\\]*)'\]")
_SIMPLE_PATH = re.compile(r"\$(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\]|\['[^'\\]*'\])*")


@functools.lru_cache(maxsize=4096)
def _compiled_path(expr: str) -> Any:
    """A finder ``data -> list of values`` for an RFC 9535 JSONPath.

    Plain member/index chains (``$.a.b[0]``, the vast majority in smoke tests) are walked
    directly: same results as the library, a fraction of the cost on the hot path. Anything
    else (wildcards, filters, slices, descendants) goes to python-jsonpath.
    """
    if _SIMPLE_PATH.fullmatch(expr):
        steps: list[str | int] = []
        for name, index, quoted in _SIMPLE_STEP.findall(expr):
            steps.append(int(index) if index else (name or quoted))
        return functools.partial(_walk, tuple(steps))
    import jsonpath

    return jsonpath.compile(expr).findall


def _walk(steps: tuple[str | int, ...], data: Any) -> list[Any]:
    for step in steps:
        if isinstance(step, int):
            if isinstance(data, dict):
                # python-jsonpath (our reference) lets an index select a key "0" of an object.
                step = str(step)
                if step not in data:
                    return []
            elif not isinstance(data, list) or step >= len(data):
                return []
        elif not isinstance(data, dict) or step not in data:
            return []
        data = data[step]
    return [data]


_validators: dict[str, Any] = {}


def _schema_validator(schema: dict[str, Any]) -> Any:
    import orjson

    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode()
    validator = _validators.get(key)
    if validator is None:
        from jsonschema import validators

        validator = validators.validator_for(schema)(schema)
        _validators[key] = validator
    return validator


@functools.lru_cache(maxsize=64)
def _ssl_context(verify: bool, ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext:
    try:
        if ca and "-----BEGIN" in ca:
            ctx = ssl.create_default_context(cadata=ca)
        else:
            ctx = ssl.create_default_context(cafile=ca)
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise CheckFailed(f"cannot load TLS files: {exc}", kind=ErrorKind.CONFIG) from None
    return ctx


@functools.lru_cache(maxsize=4096)
def _status_ok(status: int, accepted: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= status <= hi for lo, hi in accepted)


def _accepted(spec: HttpExpect) -> tuple[tuple[int, int], ...]:
    status = spec.status
    return _ranges(tuple(status) if isinstance(status, list) else (status,))


@functools.lru_cache(maxsize=1024)
def _ranges(items: tuple[StatusSpec, ...]) -> tuple[tuple[int, int], ...]:
    return tuple(_status_range(i) for i in items)


def _build_request(spec: HttpSpec) -> tuple[str, list[tuple[str, str]], bytes | None]:
    """What goes on the wire: every ``Secret`` of the spec revealed, here and nowhere else."""
    url = reveal(spec.url)
    if spec.query:
        sep = "&" if urlsplit(url).query else "?"
        url = url + sep + urlencode(reveal(spec.query), doseq=True)
    headers = [(k, reveal(v)) for k, v in spec.headers.items()]
    body: bytes | None = None
    if spec.json_ is not None:
        import orjson

        body = orjson.dumps(reveal(spec.json_))
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/json"))
    elif spec.body is not None:
        body = reveal(spec.body).encode()
    if spec.basic_auth is not None:
        user, password = reveal(spec.basic_auth.username), reveal(spec.basic_auth.password)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers.append(("Authorization", f"Basic {token}"))
    return url, headers, body


class _Prepared:
    """What a spec needs on every attempt, computed once per spec (retries, big runs)."""

    __slots__ = ("body", "headers", "https", "spec", "ssl_ctx", "url")

    def __init__(self, spec: HttpSpec) -> None:
        self.spec = spec  # keeps id(spec) from being reused while cached
        self.url, self.headers, self.body = _build_request(spec)
        self.https = self.url[:6].lower() == "https:"
        tls = spec.tls
        self.ssl_ctx = _ssl_context(tls.verify, tls.ca, tls.cert, tls.key) if self.https else None

    def origin(self) -> tuple[str, int, str]:
        """host, port and netloc; parsed only when needed (overrides, error messages)."""
        parts = urlsplit(self.url)
        return parts.hostname or "", parts.port or (443 if self.https else 80), parts.netloc

    def connect_to(self, ctx: CheckContext) -> tuple[str, int] | None:
        if not (self.spec.resolve or ctx.resolve):
            return None
        host, port, _ = self.origin()
        for item in self.spec.resolve:
            r_host, r_port, r_addr = parse_resolve(item)
            if (r_host, r_port) == (host.lower(), port):
                return r_addr, port
        return ctx.connect_address(host, port) if ctx.resolve else None


def _register_credentials(spec: HttpSpec, url: str, ctx: CheckContext) -> None:
    """Passwords this request carries (basicAuth, or userinfo in the URL, which the client
    sends as Basic auth) must be redacted like any secret."""
    if spec.basic_auth is not None:
        ctx.redactor.add_basic_auth(spec.basic_auth.username, spec.basic_auth.password)
    netloc = url.split("//", 1)[-1].split("/", 1)[0]
    if "@" in netloc:
        from urllib.parse import unquote

        user, _, password = netloc.rpartition("@")[0].partition(":")
        if password:
            ctx.redactor.add_basic_auth(unquote(user), unquote(password))


async def run(spec: HttpSpec, ctx: CheckContext) -> Outcome:
    from smokegate import httpclient as hc

    # Per run (not module-wide): a long-running `serve` must not keep every spec it ever saw.
    cache: dict[int, _Prepared] = ctx.extras.setdefault("http.prepared", {})
    prep = cache.get(id(spec))
    if prep is None or prep.spec is not spec:
        prep = cache[id(spec)] = _Prepared(spec)
        _register_credentials(spec, prep.url, ctx)
    url, headers, body = prep.url, prep.headers, prep.body
    connect_to = prep.connect_to(ctx)
    ssl_ctx = prep.ssl_ctx
    try:
        resp = await ctx.http.request(
            spec.method,
            url,
            headers=headers,
            body=body,
            ssl_context=ssl_ctx,
            connect_to=connect_to,
            follow_redirects=spec.follow_redirects,
            max_redirects=spec.max_redirects,
        )
    except hc.NameResolutionError as exc:
        host = prep.origin()[0]
        raise CheckFailed(f"DNS: cannot resolve {host}: {exc}", kind=ErrorKind.DNS) from None
    except hc.ConnectError as exc:
        raise CheckFailed(str(exc), kind=ErrorKind.CONNECTION_REFUSED) from None
    except hc.TLSError as exc:
        raise CheckFailed(f"TLS: {exc}", kind=ErrorKind.TLS) from None
    except hc.HttpTimeout as exc:
        raise CheckFailed(f"timed out: {exc}", kind=ErrorKind.TIMEOUT) from None
    except hc.HttpError as exc:
        raise CheckFailed(f"HTTP protocol error: {exc}", kind=ErrorKind.PROTOCOL) from None
    return evaluate(spec.expect, resp, ctx.redactor)


def evaluate(expect: HttpExpect, resp: Any, redactor: Redactor | None = None) -> Outcome:
    """Every expectation is checked (not just the first failing one): people fix faster when
    they see all differences at once."""
    misses: list[Mismatch] = []
    if not _status_ok(resp.status, _accepted(expect)):
        want = expect.status if isinstance(expect.status, list) else [expect.status]
        misses.append(Mismatch("status", " or ".join(map(str, want)), str(resp.status)))
    for name, rule in expect.headers.items():
        miss = _check_header(name, rule, resp.headers)
        if miss:
            misses.append(miss)
    if expect.body is not None:
        misses.extend(_check_body(expect.body, resp.text()))
    data: Any = None
    if expect.json_ or expect.schema_ is not None:
        try:
            data = resp.json()
        except ValueError as exc:
            misses.append(Mismatch("body", "valid JSON", f"not JSON ({exc})"))
        else:
            for expr, rule in expect.json_.items():
                miss = check_value(expr, rule, _compiled_path(expr)(data))
                if miss:
                    misses.append(miss)
            if expect.schema_ is not None:
                err = _first_schema_error(expect.schema_, data)
                if err:
                    misses.append(Mismatch("schema", "body valid against schema", err))
    if expect.latency is not None and resp.elapsed > expect.latency.max:
        from smokegate.core.durations import format_duration

        misses.append(
            Mismatch(
                "latency", f"≤ {format_duration(expect.latency.max)}", format_duration(resp.elapsed)
            )
        )
    if not misses:
        return passed(details={"status": resp.status, "latency": round(resp.elapsed, 6)})
    # Redact before cutting: a secret straddling the cut would otherwise leak its first half.
    snippet = resp.body[: SNIPPET_BYTES * 64].decode("utf-8", "replace")
    if redactor:
        snippet = redactor.redact(snippet)
    if len(snippet) > SNIPPET_BYTES or len(resp.body) > SNIPPET_BYTES * 64:
        snippet = snippet[:SNIPPET_BYTES] + f"… ({len(resp.body)} bytes)"
    return failed(
        misses,
        snippet=snippet,
        details={"status": resp.status, "latency": round(resp.elapsed, 6), "url": resp.url},
    )


def _check_header(name: str, rule: str | HeaderMatch, headers: Any) -> Mismatch | None:
    value = headers.get(name)
    subject = f"header {name}"
    if isinstance(rule, str):
        rule = HeaderMatch(equals=rule)
    if rule.present is not None and (value is not None) != rule.present:
        return Mismatch(
            subject,
            "present" if rule.present else "absent",
            "absent" if value is None else render(value),
        )
    if rule.equals is not None and value != rule.equals:
        return Mismatch(subject, render(rule.equals), "absent" if value is None else render(value))
    if rule.regex is not None and (value is None or not compiled_regex(rule.regex).search(value)):
        return Mismatch(
            subject, f"matching /{rule.regex}/", "absent" if value is None else render(value)
        )
    return None


def _as_list(v: str | list[str] | None) -> list[str]:
    return [] if v is None else [v] if isinstance(v, str) else v


def _check_body(rule: BodyExpect, text: str) -> list[Mismatch]:
    out = []
    for needle in _as_list(rule.contains):
        if needle not in text:
            out.append(Mismatch("body", f"containing {render(needle)}", "not found"))
    for needle in _as_list(rule.not_contains):
        if needle in text:
            out.append(Mismatch("body", f"not containing {render(needle)}", "found"))
    if rule.regex is not None and not compiled_regex(rule.regex).search(text):
        out.append(Mismatch("body", f"matching /{rule.regex}/", "no match"))
    if rule.equals is not None and text != rule.equals:
        out.append(Mismatch("body", render(rule.equals), render(text)))
    return out


def _first_schema_error(schema: dict[str, Any], data: Any) -> str | None:
    from jsonschema.exceptions import best_match

    err = best_match(_schema_validator(schema).iter_errors(data))
    if err is None:
        return None
    where = "$" + "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in err.path)
    return f"{where}: {err.message}"


SPEC = HttpSpec
# Imported by the engine before the run starts (see engine.runner._run_fns).
PRELOAD = ("smokegate.httpclient", "orjson")
