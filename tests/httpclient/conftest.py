"""Fixtures for the HTTP client tests: nginx servers (plain, TLS, mutual TLS), trustme PKI,
and every async test run on both the default event loop and uvloop."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

# `tests.servers` lives beside this package; make it importable however pytest was started.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.servers.nginx import NginxServer, TLSFiles  # noqa: E402


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    # The client must behave identically on both loops smokegate can run on.
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    try:
        import uvloop
    except ImportError:  # uvloop is an optional extra; the asyncio run still covers the client
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories


@dataclass(frozen=True)
class PKI:
    ca_pem: Path  # trusted CA
    other_ca_pem: Path  # a CA nobody signed the server with
    server_cert_pem: Path
    server_key_pem: Path
    server_cert_der: bytes
    client_pem: Path  # client key + certificate chain, issued by the trusted CA


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    import ssl

    d = tmp_path_factory.mktemp("pki")
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("example.test", "localhost", "127.0.0.1")
    client = ca.issue_cert("client.example.test")
    paths = {name: d / f"{name}.pem" for name in ("ca", "other", "cert", "key", "client")}
    ca.cert_pem.write_to_path(paths["ca"])
    other.cert_pem.write_to_path(paths["other"])
    server.cert_chain_pems[0].write_to_path(paths["cert"])
    server.private_key_pem.write_to_path(paths["key"])
    client.private_key_and_cert_chain_pem.write_to_path(paths["client"])
    der = ssl.PEM_cert_to_DER_cert(server.cert_chain_pems[0].bytes().decode())
    return PKI(paths["ca"], paths["other"], paths["cert"], paths["key"], der, paths["client"])


# Locations the tests need on top of NginxServer's defaults.
EXTRA_LOCATIONS = {
    "= /loop": "return 302 /loop;",
    "= /relative-redirect": "absolute_redirect off; return 301 /json?from=relative;",
    "= /see-other": "return 303 /echo;",
    # Closes idle keep-alive connections fast: lets a test make a pooled socket go stale.
    "= /short-keepalive": (
        "keepalive_timeout 100ms; default_type application/json; try_files /json.json =404;"
    ),
    # An empty types{} makes default_type (with its charset parameter) apply to .txt files.
    "= /utf16": 'types { } default_type "text/plain; charset=utf-16"; try_files /utf16.txt =404;',
    "= /latin1": (
        'types { } default_type "text/plain; charset=ISO-8859-1"; try_files /latin1.txt =404;'
    ),
}
EXTRA_FILES = {
    "utf16.txt": "héllo".encode("utf-16"),
    "latin1.txt": "héllo".encode("latin-1"),
}


@pytest.fixture(scope="module")
def nginx(pki: PKI) -> Iterator[NginxServer]:
    tls = TLSFiles(pki.server_cert_pem, pki.server_key_pem)
    with NginxServer(EXTRA_LOCATIONS, EXTRA_FILES, tls=tls) as server:
        yield server


@pytest.fixture(scope="module")
def nginx_mtls(pki: PKI) -> Iterator[NginxServer]:
    tls = TLSFiles(pki.server_cert_pem, pki.server_key_pem, client_ca=pki.ca_pem)
    with NginxServer(tls=tls) as server:
        yield server
