"""The HTTP client against a real nginx (plus a few hand-written servers for the malformed and
rare responses nginx never sends). Every test runs on the default loop and on uvloop."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import select
import socket
import ssl
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
from tests.servers.nginx import CHUNKED_BODY, JSON_BODY, NginxServer

from smokegate.httpclient import (
    BodyTooLarge,
    ClientClosed,
    ConnectError,
    Headers,
    HttpClient,
    HttpError,
    HttpTimeout,
    InvalidURL,
    NameResolutionError,
    ProtocolError,
    ServerDisconnected,
    TLSError,
    TooManyRedirects,
    create_ssl_context,
)

if TYPE_CHECKING:
    from conftest import PKI

JSON = {"status": "ok", "version": "1.2.3", "items": [1, 2, 3]}


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    async with HttpClient() as c:
        yield c


def host_of(server: NginxServer) -> str:
    return f"127.0.0.1:{server.port}"


# -- plain requests ------------------------------------------------------------------------------


async def test_get_json(client: HttpClient, nginx: NginxServer) -> None:
    r = await client.request("GET", nginx.url + "/json", timeout=5)
    assert (r.status, r.reason, r.http_version) == (200, "OK", "1.1")
    assert r.body == JSON_BODY
    assert r.json() == JSON
    assert r.text() == JSON_BODY.decode()
    assert r.headers.get("content-type") == "application/json"
    assert r.headers["Content-Length"] == str(len(JSON_BODY))
    assert r.url == nginx.url + "/json"
    assert r.history == []
    assert 0 < r.elapsed < 5
    assert r.tls_version is None and r.peer_cert_der is None


async def test_default_request_headers(client: HttpClient, nginx: NginxServer) -> None:
    got = (await client.request("GET", nginx.url + "/headers?x=1")).json()
    assert got["method"] == "GET"
    assert got["host"] == host_of(nginx)
    assert got["user_agent"] == "smokegate"
    assert got["accept"] == "*/*"
    assert got["accept_encoding"] == ""  # no compression negotiated, ever
    assert got["connection"] == "keep-alive"
    assert got["content_length"] == ""
    assert got["uri"] == "/headers?x=1"  # query string passed through untouched


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Custom": "one", "User-Agent": "probe/1"},
        [("x-custom", "one"), ("user-agent", "probe/1")],
    ],
    ids=["mapping", "pairs"],
)
async def test_caller_headers_add_and_override(
    nginx: NginxServer, headers: dict[str, str] | list[tuple[str, str]]
) -> None:
    async with HttpClient(user_agent="ignored-here") as client:
        got = (await client.request("GET", nginx.url + "/headers", headers=headers)).json()
    assert got["x_custom"] == "one"
    assert got["user_agent"] == "probe/1"


async def test_user_agent_option(nginx: NginxServer) -> None:
    async with HttpClient(user_agent="smokegate/9.9") as client:
        got = (await client.request("GET", nginx.url + "/headers")).json()
    assert got["user_agent"] == "smokegate/9.9"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "GET"])
async def test_request_body(client: HttpClient, nginx: NginxServer, method: str) -> None:
    r = await client.request(method, nginx.url + "/echo", body=b"hello=world", timeout=5)
    assert r.status == 200
    assert r.json() == {"method": method, "body": "hello=world", "content_length": "11"}


async def test_large_request_body_is_sent_whole(client: HttpClient, nginx: NginxServer) -> None:
    # Bigger than the single-write threshold: head and body go out in two writes.
    body = b"x" * (100 * 1024)
    r = await client.request("POST", nginx.url + "/status/200", body=body, timeout=5)
    assert r.status == 200
    r = await client.request("GET", nginx.url + "/json", timeout=5)  # stream still in sync
    assert r.body == JSON_BODY
    assert client.connections_opened == 1


async def test_post_without_body_sends_zero_length(client: HttpClient, nginx: NginxServer) -> None:
    r = await client.request("POST", nginx.url + "/echo", timeout=5)
    assert r.json() == {"method": "POST", "body": "", "content_length": "0"}


async def test_head_then_reuse(client: HttpClient, nginx: NginxServer) -> None:
    r = await client.request("HEAD", nginx.url + "/json", timeout=5)
    assert r.status == 200
    assert r.body == b""
    assert r.headers.get("content-length") == str(len(JSON_BODY))
    # The parser must not wait for the announced-but-absent body on the next response.
    r = await client.request("GET", nginx.url + "/json", timeout=5)
    assert r.body == JSON_BODY
    r = await client.request("HEAD", nginx.url + "/chunked", timeout=5)
    assert r.body == b""
    r = await client.request("GET", nginx.url + "/json", timeout=5)
    assert r.body == JSON_BODY
    assert client.connections_opened == 1


async def test_chunked_body(client: HttpClient, nginx: NginxServer) -> None:
    r = await client.request("GET", nginx.url + "/chunked", timeout=5)
    assert r.status == 200
    assert r.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in r.headers
    assert r.body == CHUNKED_BODY
    r = await client.request("GET", nginx.url + "/chunked", timeout=5)
    assert r.body == CHUNKED_BODY
    assert client.connections_opened == 1


async def test_error_status_is_a_response(client: HttpClient, nginx: NginxServer) -> None:
    r = await client.request("GET", nginx.url + "/status/503", timeout=5)
    assert r.status == 503
    assert r.reason == "Service Temporarily Unavailable"
    assert r.text() == "status 503\n"
    r = await client.request("GET", nginx.url + "/nope", timeout=5)
    assert r.status == 404


async def test_204_has_no_body(client: HttpClient, nginx: NginxServer) -> None:
    r = await client.request("GET", nginx.url + "/status/204", timeout=5)
    assert (r.status, r.body) == (204, b"")
    assert (await client.request("GET", nginx.url + "/json")).body == JSON_BODY


async def test_text_uses_declared_charset(client: HttpClient, nginx: NginxServer) -> None:
    r = await client.request("GET", nginx.url + "/utf16", timeout=5)
    assert r.text() == "héllo"
    r = await client.request("GET", nginx.url + "/latin1", timeout=5)
    assert r.text() == "héllo"


async def test_response_headers_case_insensitive_multi_valued(
    client: HttpClient, nginx: NginxServer
) -> None:
    h = (await client.request("GET", nginx.url + "/headers", timeout=5)).headers
    assert isinstance(h, Headers)
    assert h.get("x-test") == h.get("X-TEST") == h["X-Test"] == "yes"
    assert h.get("x-multi") == "a, b"
    assert h.get_all("X-MULTI") == ["a", "b"]
    assert h.get_all("x-absent") == []
    assert h.get("x-absent") is None
    assert h.get("x-absent", "dflt") == "dflt"
    assert "X-Multi" in h and "x-multi" in h and "x-absent" not in h
    assert ("X-Multi", "a") in h.items() and ("X-Multi", "b") in h.items()
    assert [v for k, v in h.items() if k == "X-Multi"] == ["a", "b"]  # order kept
    with pytest.raises(KeyError):
        h["x-absent"]


def test_headers_constructor() -> None:
    h = Headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("X", "y")])
    assert h.get_all("SET-COOKIE") == ["a=1", "b=2"]
    assert len(h) == 3 and list(h) == ["set-cookie", "x"]
    assert Headers({"A": "1"}) == Headers([("a", "1")])


# -- keep-alive and pool -------------------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection(
    client: HttpClient, nginx: NginxServer
) -> None:
    for _ in range(25):
        r = await client.request("GET", nginx.url + "/json", timeout=5)
        assert r.status == 200
    assert client.connections_opened == 1
    assert client.pool.connections_opened == 1
    assert client.requests_sent == 25


async def test_concurrency_is_capped_per_origin(nginx: NginxServer) -> None:
    async with HttpClient(max_connections_per_origin=3) as client:
        results = await asyncio.gather(
            *(client.request("GET", nginx.url + "/json", timeout=5) for _ in range(40))
        )
        assert all(r.body == JSON_BODY for r in results)
        assert 1 <= client.connections_opened <= 3
        assert client.pool.idle_connections == client.connections_opened


def block_until_server_closes_idle_connection(client: HttpClient) -> None:
    """Wait for nginx's FIN with a blocking select(), *not* by running the event loop: the pool
    cannot notice the close before the next request is written (the real-world race)."""
    (origin,) = client.pool.origins.values()
    (conn,) = origin.idle
    assert conn.transport is not None
    sock = conn.transport.get_extra_info("socket")
    readable, _, _ = select.select([sock.fileno()], [], [], 5.0)
    assert readable, "nginx did not close the idle keep-alive connection"
    assert not conn.closed  # the pool has not seen it yet


async def test_stale_keepalive_connection_is_retried_for_idempotent_requests(
    client: HttpClient, nginx: NginxServer
) -> None:
    r = await client.request("GET", nginx.url + "/short-keepalive", timeout=5)
    assert r.status == 200 and client.connections_opened == 1
    block_until_server_closes_idle_connection(client)
    r = await client.request("GET", nginx.url + "/json", timeout=5)
    assert r.body == JSON_BODY
    assert client.connections_opened == 2  # the retry went out on a fresh connection


async def test_stale_keepalive_connection_is_not_retried_for_post(
    client: HttpClient, nginx: NginxServer
) -> None:
    await client.request("GET", nginx.url + "/short-keepalive", timeout=5)
    block_until_server_closes_idle_connection(client)
    with pytest.raises(ServerDisconnected) as info:
        await client.request("POST", nginx.url + "/echo", body=b"once", timeout=5)
    assert info.value.before_response
    assert isinstance(info.value, ProtocolError)
    assert client.connections_opened == 1
    # The dead socket was dropped: the next request works on a new one.
    r = await client.request("POST", nginx.url + "/echo", body=b"once", timeout=5)
    assert r.json()["body"] == "once"
    assert client.connections_opened == 2


async def test_idle_connection_closed_by_server_is_dropped(
    client: HttpClient, nginx: NginxServer
) -> None:
    await client.request("GET", nginx.url + "/short-keepalive", timeout=5)
    await asyncio.sleep(0.4)  # the loop runs: the pool sees the close and forgets the socket
    assert client.pool.idle_connections == 0
    r = await client.request("POST", nginx.url + "/echo", body=b"x", timeout=5)
    assert r.status == 200


# -- redirects -----------------------------------------------------------------------------------


async def test_redirect_not_followed_by_default(client: HttpClient, nginx: NginxServer) -> None:
    r = await client.request("GET", nginx.url + "/redirect", timeout=5)
    assert r.status == 302
    assert r.headers.get("location") == nginx.url + "/json"
    assert r.history == []
    assert r.url == nginx.url + "/redirect"


async def test_redirect_followed(client: HttpClient, nginx: NginxServer) -> None:
    r = await client.request("GET", nginx.url + "/redirect", follow_redirects=True, timeout=5)
    assert r.status == 200
    assert r.json() == JSON
    assert r.url == nginx.url + "/json"
    assert r.history == [nginx.url + "/redirect"]
    assert client.connections_opened == 1


async def test_relative_redirect(client: HttpClient, nginx: NginxServer) -> None:
    r = await client.request(
        "GET", nginx.url + "/relative-redirect", follow_redirects=True, timeout=5
    )
    assert r.status == 200
    assert r.url == nginx.url + "/json?from=relative"


async def test_303_turns_post_into_get(client: HttpClient, nginx: NginxServer) -> None:
    r = await client.request(
        "POST", nginx.url + "/see-other", body=b"data", follow_redirects=True, timeout=5
    )
    assert r.json() == {"method": "GET", "body": "", "content_length": ""}


async def test_too_many_redirects(client: HttpClient, nginx: NginxServer) -> None:
    with pytest.raises(TooManyRedirects) as info:
        await client.request(
            "GET", nginx.url + "/loop", follow_redirects=True, max_redirects=3, timeout=5
        )
    assert isinstance(info.value, ProtocolError)
    assert info.value.url == nginx.url + "/loop"
    assert "more than 3 redirects" in str(info.value)


# -- connect_to ----------------------------------------------------------------------------------


async def test_connect_to_keeps_host_header(client: HttpClient, nginx: NginxServer) -> None:
    url = f"http://example.test:{nginx.port}/headers"
    r = await client.request("GET", url, connect_to=("127.0.0.1", nginx.port), timeout=5)
    assert r.json()["host"] == f"example.test:{nginx.port}"
    assert r.url == url


async def test_connect_to_applies_to_redirects_on_same_origin(
    client: HttpClient, nginx: NginxServer
) -> None:
    url = f"http://example.test:{nginx.port}/redirect"
    r = await client.request(
        "GET", url, connect_to=("127.0.0.1", nginx.port), follow_redirects=True, timeout=5
    )
    assert r.status == 200
    assert r.url == f"http://example.test:{nginx.port}/json"
    assert r.history == [url]


# -- TLS -----------------------------------------------------------------------------------------


async def test_https_verified_with_custom_ca(
    client: HttpClient, nginx: NginxServer, pki: PKI
) -> None:
    ctx = create_ssl_context(ca_file=str(pki.ca_pem))
    url = f"https://example.test:{nginx.https_port}/headers"
    r = await client.request(
        "GET", url, ssl_context=ctx, connect_to=("127.0.0.1", nginx.https_port), timeout=5
    )
    assert r.status == 200
    got = r.json()
    assert got["sni"] == "example.test"  # SNI follows the URL, not connect_to
    assert got["host"] == f"example.test:{nginx.https_port}"
    assert r.tls_version in ("TLSv1.2", "TLSv1.3")
    assert r.peer_cert_der == pki.server_cert_der
    # Reuse works over TLS too.
    await client.request(
        "GET", url, ssl_context=ctx, connect_to=("127.0.0.1", nginx.https_port), timeout=5
    )
    assert client.connections_opened == 1


async def test_https_plain_ssl_context(client: HttpClient, nginx: NginxServer, pki: PKI) -> None:
    ctx = ssl.create_default_context(cafile=str(pki.ca_pem))
    r = await client.request("GET", nginx.https_url + "/json", ssl_context=ctx, timeout=5)
    assert r.json() == JSON


async def test_https_unknown_ca_is_tls_error(
    client: HttpClient, nginx: NginxServer, pki: PKI
) -> None:
    ctx = create_ssl_context(ca_file=str(pki.other_ca_pem))
    with pytest.raises(TLSError) as info:
        await client.request("GET", nginx.https_url + "/json", ssl_context=ctx, timeout=5)
    msg = str(info.value)
    assert "certificate verification failed for 127.0.0.1" in msg
    assert "unable to get local issuer certificate" in msg
    assert info.value.url == nginx.https_url + "/json"


async def test_https_default_context_rejects_private_ca(
    client: HttpClient, nginx: NginxServer
) -> None:
    with pytest.raises(TLSError, match="certificate verification failed"):
        await client.request("GET", nginx.https_url + "/json", timeout=5)


async def test_https_hostname_mismatch_is_tls_error(
    client: HttpClient, nginx: NginxServer, pki: PKI
) -> None:
    ctx = create_ssl_context(ca_file=str(pki.ca_pem))
    with pytest.raises(TLSError, match=r"not valid for 'wrong\.test'"):
        await client.request(
            "GET",
            f"https://wrong.test:{nginx.https_port}/",
            ssl_context=ctx,
            connect_to=("127.0.0.1", nginx.https_port),
            timeout=5,
        )


async def test_https_without_verification(client: HttpClient, nginx: NginxServer, pki: PKI) -> None:
    ctx = create_ssl_context(verify=False)
    r = await client.request("GET", nginx.https_url + "/json", ssl_context=ctx, timeout=5)
    assert r.json() == JSON
    assert r.peer_cert_der == pki.server_cert_der  # still reported, just not trusted


async def test_https_client_certificate(
    client: HttpClient, nginx_mtls: NginxServer, pki: PKI
) -> None:
    without = create_ssl_context(ca_file=str(pki.ca_pem))
    r = await client.request("GET", nginx_mtls.https_url + "/client-cert", ssl_context=without)
    assert r.status == 400  # nginx: "No required SSL certificate was sent"
    with_cert = create_ssl_context(ca_file=str(pki.ca_pem), client_cert=str(pki.client_pem))
    r = await client.request(
        "GET", nginx_mtls.https_url + "/client-cert", ssl_context=with_cert, timeout=5
    )
    assert r.status == 200
    assert r.text().startswith("client certificate: ") and "O=trustme" in r.text()


# -- failures ------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connection_refused(client: HttpClient) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/"
    with pytest.raises(ConnectError) as info:
        await client.request("GET", url, timeout=5)
    assert not isinstance(info.value, NameResolutionError)
    assert "refused" in str(info.value).lower()
    assert info.value.url == url
    assert client.pool.origins and all(o.total == 0 for o in client.pool.origins.values())


async def test_name_resolution_failure(client: HttpClient) -> None:
    with pytest.raises(NameResolutionError) as info:
        await client.request("GET", "http://no-such-host.invalid/", timeout=10)
    assert isinstance(info.value, ConnectError)
    assert "no-such-host.invalid" in str(info.value)


async def test_timeout_when_server_never_answers() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel completes handshakes; nobody ever reads or answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        async with HttpClient(max_connections_per_origin=1) as client:
            t0 = time.monotonic()
            with pytest.raises(HttpTimeout) as info:
                await client.request("GET", url, timeout=0.3)
            assert 0.25 < time.monotonic() - t0 < 3
            assert isinstance(info.value, builtins.TimeoutError)
            assert isinstance(info.value, HttpError)
            assert info.value.url == url
            # The timed-out connection gave its slot back: a second request is not stuck.
            assert all(o.total == 0 for o in client.pool.origins.values())
            with pytest.raises(HttpTimeout):
                await client.request("GET", url, timeout=0.2)
            # Timing out while queued for the single slot must not leak it either.
            results = await asyncio.gather(
                *(client.request("GET", url, timeout=0.2) for _ in range(3)),
                return_exceptions=True,
            )
            assert all(isinstance(r, HttpTimeout) for r in results)
            (origin,) = client.pool.origins.values()
            assert (origin.total, len(origin.waiters), origin.idle) == (0, 0, [])


async def test_body_too_large(client: HttpClient, nginx: NginxServer) -> None:
    with pytest.raises(BodyTooLarge) as info:
        await client.request("GET", nginx.url + "/chunked", max_body=1000, timeout=5)
    assert isinstance(info.value, ProtocolError)
    r = await client.request("GET", nginx.url + "/chunked", max_body=len(CHUNKED_BODY))
    assert r.body == CHUNKED_BODY


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/", "http:///nohost", "http://h:99999/", "http://h/a b"]
)
async def test_invalid_url(client: HttpClient, url: str) -> None:
    with pytest.raises(InvalidURL):
        await client.request("GET", url)


async def test_invalid_method_and_header(client: HttpClient, nginx: NginxServer) -> None:
    with pytest.raises(InvalidURL, match="method"):
        await client.request("GE T", nginx.url)
    with pytest.raises(InvalidURL, match="header"):
        await client.request("GET", nginx.url, headers={"X-Evil": "a\r\nInjected: 1"})


async def test_closed_client_refuses_requests(nginx: NginxServer) -> None:
    client = HttpClient()
    await client.request("GET", nginx.url + "/json")
    await client.aclose()
    assert client.pool.idle_connections == 0
    with pytest.raises(ClientClosed):
        await client.request("GET", nginx.url + "/json")


# -- responses nginx never sends: hand-written servers --------------------------------------------


@contextlib.asynccontextmanager
async def serve(reply: bytes | list[bytes], close: bool) -> AsyncIterator[str]:
    """A canned server: answers each request with ``reply`` (a list is sent piece by piece, a
    few milliseconds apart, so the client reads it in separate chunks); ``close`` closes the
    connection after the first reply."""
    parts = reply if isinstance(reply, list) else [reply]
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            while True:  # keep-alive: same reply to every request until told to close
                await reader.readuntil(b"\r\n\r\n")
                for part in parts:
                    writer.write(part)
                    await writer.drain()
                    if len(parts) > 1:
                        await asyncio.sleep(0.005)
                if close:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    finally:
        server.close()
        for writer in writers:  # 3.11's Server.close() leaves accepted connections open
            writer.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)


async def test_body_delimited_by_close(client: HttpClient) -> None:
    async with serve(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", True) as url:
        r = await client.request("GET", url, timeout=5)
    assert (r.status, r.body) == (200, b"until the end")


async def test_truncated_body_is_an_error(client: HttpClient) -> None:
    async with serve(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", True) as url:
        with pytest.raises(ServerDisconnected) as info:
            await client.request("GET", url, timeout=5)
    assert not info.value.before_response
    assert client.connections_opened == 1  # a response had started: never retried


async def test_malformed_response_is_protocol_error(client: HttpClient) -> None:
    async with serve(b"SMTP ready\r\n\r\n", False) as url:
        with pytest.raises(ProtocolError, match="malformed HTTP response"):
            await client.request("GET", url, timeout=5)


async def test_interim_response_is_skipped(client: HttpClient) -> None:
    reply = (
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Final: 1\r\n\r\nok"
    )
    async with serve(reply, False) as url:
        r = await client.request("GET", url, timeout=5)
    assert (r.status, r.body) == (200, b"ok")
    assert "link" not in r.headers and r.headers.get("x-final") == "1"


async def test_head_split_across_reads(client: HttpClient) -> None:
    parts = [
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 Fine\r\nCont",
        b"ent-Length: 5\r\nX-A: 1\r\n",
        b"X-B:  two words \r\n\r\nhel",
        b"lo",
    ]
    async with serve(parts, False) as url:
        r = await client.request("GET", url, timeout=5)
        assert (r.status, r.reason, r.body) == (200, "Fine", b"hello")
        assert r.headers.items() == [("Content-Length", "5"), ("X-A", "1"), ("X-B", "two words")]
        # And again on the same connection, now that the parser state was reused.
        r = await client.request("GET", url, timeout=5)
        assert r.body == b"hello" and client.connections_opened == 1


async def test_switching_protocols_is_returned_not_awaited(client: HttpClient) -> None:
    reply = b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n"
    async with serve(reply, False) as url:
        r = await client.request("GET", url, timeout=5)
        assert r.status == 101
        assert client.pool.idle_connections == 0


async def test_http10_response(client: HttpClient) -> None:
    async with serve(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", True) as url:
        r = await client.request("GET", url, timeout=5)
        assert (r.http_version, r.body) == ("1.0", b"ok")
        assert client.pool.idle_connections == 0  # HTTP/1.0 without keep-alive: not pooled


# -- the test server itself ----------------------------------------------------------------------


def test_nginx_server_stops_cleanly() -> None:
    server = NginxServer({"= /hello": 'return 200 "hi";'})
    with server:
        assert server._proc is not None
        pid = server._proc.pid
        prefix = server.prefix
        with socket.create_connection(("127.0.0.1", server.port), timeout=2):
            pass
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert prefix is not None and not prefix.exists()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), 0.5):
        pass


def test_missing_nginx_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.servers.nginx as nginx_mod

    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr(nginx_mod, "_NGINX_CANDIDATES", ())
    with pytest.raises(nginx_mod.NginxNotFoundError, match="apt-get install"):
        NginxServer()


async def test_client_is_bound_to_one_loop(nginx: NginxServer) -> None:
    client = HttpClient()
    await client.request("GET", nginx.url + "/json")

    def other_loop() -> None:
        with pytest.raises(RuntimeError, match="second event loop"):
            asyncio.run(client.request("GET", nginx.url + "/json"))

    await asyncio.to_thread(other_loop)
    await client.aclose()
