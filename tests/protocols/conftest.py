"""Real servers for the protocol check tests, one per session, and a runner that drives the real
CLI with every report format.

PostgreSQL, MariaDB and Redis come from Debian packages (a missing package is an error naming
the apt-get command, never a skip); the gRPC health server runs in this process. Passwords are
unique per run and contain characters that must be percent-encoded in URLs, so every test
also exercises the encoded forms.
"""

from __future__ import annotations

import html
import json
import socket
import textwrap
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import CliResult, free_port, run_cli, write_suite
from tests.servers.grpc_health import GrpcHealthServer
from tests.servers.mariadb import MariaDBServer
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer

REPORTS = {
    "json": "report.json",
    "junit": "junit.xml",
    "markdown": "report.md",
    "html": "report.html",
}


# A host name every resolver rejects before sending a query (a label longer than 63 octets):
# DNS failures are tested without any traffic leaving the machine.
UNRESOLVABLE = "a" * 64 + ".invalid"

# Made-up names for `--resolve` tests, shaped like the UNRESOLVABLE one (a 64-octet first
# label), so that without the override they fail as `dns` with no query leaving the machine.
# The servers' certificate covers *.example.invalid (trustme cannot issue a certificate for a
# label that long, a wildcard can cover it), so TLS to RESOLVED verifies and to ELSEWHERE,
# which it does not cover, fails: TLS checks the name, not the address connected to.
RESOLVED = "db" + "x" * 62 + ".example.invalid"
ELSEWHERE = "db" + "x" * 62 + ".elsewhere.invalid"
# Python's ssl module rejects an over-long server name before any handshake, so the kinds
# whose TLS runs in Python (mysql, redis) use a short made-up name for TLS. The override
# applies before any lookup, so no DNS query is sent for it either.
RESOLVED_SHORT = "db.example.invalid"
ELSEWHERE_SHORT = "db.elsewhere.invalid"


def resolve_args(port: int, *hosts: str) -> list[str]:
    """``--resolve HOST:PORT:127.0.0.1`` for each of ``hosts``."""
    return [arg for host in hosts for arg in ("--resolve", f"{host}:{port}:127.0.0.1")]


def unique_password(prefix: str) -> str:
    # '@', ':' and '/' must be percent-encoded in a DSN: the encoded form must not leak either.
    return f"{prefix}-{uuid.uuid4().hex}-p@ss:w/rd"


@dataclass
class Certs:
    ca: Path  # the CA that signed the servers' certificate
    other_ca: Path  # a CA that did not: verification against it fails
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    import trustme

    d = tmp_path_factory.mktemp("certs")
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1", "*.example.invalid")
    server.cert_chain_pems[0].write_to_path(d / "server.crt")
    server.private_key_pem.write_to_path(d / "server.key")
    ca.cert_pem.write_to_path(d / "ca.pem")
    other.cert_pem.write_to_path(d / "other-ca.pem")
    (d / "server.key").chmod(0o600)
    return Certs(d / "ca.pem", d / "other-ca.pem", d / "server.crt", d / "server.key")


@pytest.fixture(scope="session")
def postgres(certs: Certs) -> Iterator[PostgresServer]:
    with PostgresServer(
        password=unique_password("pg"), tls_cert=certs.cert, tls_key=certs.key
    ) as server:
        yield server


@pytest.fixture(scope="session")
def mariadb(certs: Certs) -> Iterator[MariaDBServer]:
    with MariaDBServer(
        password=unique_password("my"), tls_cert=certs.cert, tls_key=certs.key, tls_ca=certs.ca
    ) as server:
        yield server


@pytest.fixture(scope="session")
def mariadb_plain() -> Iterator[MariaDBServer]:
    """A MariaDB without TLS: `sslmode: require` must refuse it before logging in."""
    with MariaDBServer(password=unique_password("myplain")) as server:
        yield server


@pytest.fixture(scope="session")
def redis(certs: Certs) -> Iterator[RedisServer]:
    with RedisServer(
        password=unique_password("rd"), tls_cert=certs.cert, tls_key=certs.key, tls_ca=certs.ca
    ) as server:
        yield server


GRPC_TOKEN_PREFIX = "tok"


@pytest.fixture(scope="session")
def grpc_server() -> Iterator[GrpcHealthServer]:
    services = {"shop.Orders": "SERVING", "shop.Billing": "NOT_SERVING"}
    with GrpcHealthServer(services=services) as server:
        yield server


@pytest.fixture(scope="session")
def grpc_tls_server(certs: Certs) -> Iterator[GrpcHealthServer]:
    with GrpcHealthServer(tls_cert=certs.cert, tls_key=certs.key) as server:
        yield server


@pytest.fixture(scope="session")
def grpc_token() -> str:
    return f"{GRPC_TOKEN_PREFIX}-{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def grpc_auth_server(grpc_token: str) -> Iterator[GrpcHealthServer]:
    # echo_token: the server quotes the token it got in its error, like careless servers do.
    with GrpcHealthServer(token=grpc_token, echo_token=True) as server:
        yield server


@pytest.fixture(scope="session")
def dead_port() -> int:
    """A loopback port nothing listens on: connecting is refused."""
    return free_port()


@pytest.fixture(scope="session")
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP (the kernel completes the handshake into the backlog)
    but never reads or answers: a hung server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


@dataclass
class Run:
    cli: CliResult
    report: dict[str, Any]
    outputs: dict[str, str]  # console (stdout+stderr) and every report file, by format

    def result(self, name: str) -> dict[str, Any]:
        for r in self.report["results"]:
            if r["name"] == name:
                return r
        raise KeyError(
            f"no result named {name!r}; have {[r['name'] for r in self.report['results']]}"
        )

    def everything(self) -> str:
        return "\n".join(self.outputs.values())


SuiteRunner = Callable[..., Run]


def run_with_reports(
    suite: Path, out: Path, env: dict[str, str] | None = None, args: Sequence[str] = ()
) -> Run:
    """``smokegate run SUITE [ARGS]`` with the console and all four file reports written to
    ``out``."""
    flags: list[str] = list(args)
    for fmt, name in REPORTS.items():
        flags += ["--report", f"{fmt}={out / name}"]
    cli = run_cli("run", str(suite), "-v", *flags, env=env, timeout=180)
    outputs = {"console": cli.out + cli.err}
    for fmt, name in REPORTS.items():
        path = out / name
        assert path.exists(), f"{fmt} report not written (exit {cli.code}):\n{cli.text}"
        outputs[fmt] = path.read_text()
    return Run(cli, json.loads(outputs["json"]), outputs)


@pytest.fixture(scope="module")
def run_suite(tmp_path_factory: pytest.TempPathFactory) -> SuiteRunner:
    """``run_suite(checks_yaml, …, extra_spec=…, args=…)``: write the suite (the checks of every
    YAML fragment, in order), run it with every report (and ``args``, more flags for ``run``),
    and return the exit code, the JSON report and every output."""

    def run(
        *checks_yaml: str,
        extra_spec: str = "",
        env: dict[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> Run:
        d = tmp_path_factory.mktemp("suite")
        checks = "\n".join(textwrap.dedent(c).strip("\n") for c in checks_yaml)
        suite = write_suite(d, checks, extra_spec=extra_spec)
        return run_with_reports(suite, d / "out", env, args)

    return run


def suite_vars(*, secret: Mapping[str, str], plain: Mapping[str, str] | None = None) -> str:
    """An ``extra_spec`` declaring ``vars``: those in ``secret`` marked secret, ``plain`` not."""
    lines = ["vars:"]
    lines += [f'  {name}: {{value: "{value}", secret: true}}' for name, value in secret.items()]
    lines += [f'  {name}: "{value}"' for name, value in (plain or {}).items()]
    return "\n".join(lines)


def sql_conn(server: PostgresServer | MariaDBServer, **extra: object) -> str:
    """Flow-style fields for a check against ``server``, the password from the secret var
    ``pw``; ``extra`` adds or overrides fields."""
    fields: dict[str, object] = {
        "host": "127.0.0.1",
        "port": server.port,
        "user": server.user,
        "database": server.database,
    }
    body = ", ".join(f"{k}: {v}" for k, v in (fields | extra).items())
    return "{" + body + ', password: "${pw}"}'


UnreachableChecks = Callable[[str, str], str]


@pytest.fixture(scope="session")
def unreachable(dead_port: int, silent_port: int) -> UnreachableChecks:
    """``unreachable(kind, credentials)``: checks of a host/port ``kind`` (``credentials``: more
    flow-style fields) for the network failures every client must classify alike; see
    ``assert_unreachable``.

    ``server-down``: nothing listens on the port. ``hung-server``: the port accepts but never
    answers, ``connectTimeout: 1s``; ``hung-server-attempt-timeout``: the same, bounded by the
    check's ``timeout: 1s`` instead. ``dns-failure``: a host name no resolver accepts.
    """

    def checks(kind: str, credentials: str) -> str:
        return f"""
        - name: server-down
          {kind}: {{host: 127.0.0.1, port: {dead_port}, {credentials}}}
        - name: hung-server
          {kind}: {{host: 127.0.0.1, port: {silent_port}, {credentials}, connectTimeout: 1s}}
        - name: hung-server-attempt-timeout
          timeout: 1s
          {kind}: {{host: 127.0.0.1, port: {silent_port}, {credentials}}}
        - name: dns-failure
          {kind}: {{host: {UNRESOLVABLE}, {credentials}, connectTimeout: 5s}}
        """

    return checks


def assert_failed(run: Run, name: str, kind: str) -> dict[str, Any]:
    """The named check failed with ``kind``, with evidence, and every report says so."""
    import xml.etree.ElementTree as ET

    r = run.result(name)
    assert r["status"] == "failed", r
    assert r["errorKind"] == kind, r
    assert r["evidence"], f"no evidence for {name}: {r}"
    cases = {tc.get("name"): tc for tc in ET.fromstring(run.outputs["junit"]).iter("testcase")}
    failure = cases[name].find("failure")
    assert failure is not None and failure.get("type") == kind, ET.tostring(cases[name])
    # Markdown and HTML escape text differently; compare what a reader sees.
    md = [html.unescape(line) for line in run.outputs["markdown"].splitlines()]
    assert any(r["id"] in line and kind in line for line in md), f"{kind} not shown for {name}"
    console = [line for line in run.outputs["console"].splitlines() if r["id"] in line]
    assert any(f"[{kind}]" in line for line in console), console
    page = html.unescape(run.outputs["html"])
    assert r["id"] in page and kind in page
    return r


def evidence(result: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Evidence as subject -> (expected, actual)."""
    return {m["subject"]: (m["expected"], m["actual"]) for m in result["evidence"]}


def assert_all(run: Run, status: str) -> None:
    """Every check ended with ``status`` (passed or failed) and the exit code says so."""
    assert run.cli.code == {"passed": 0, "failed": 1}[status], run.cli.text
    assert {r["status"] for r in run.report["results"]} == {status}


def assert_unreachable(run: Run) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``unreachable`` checks failed as they must: server-down is connection_refused, both
    hung servers time out (the first at connect, with evidence), dns-failure is dns. Returns the
    server-down and dns-failure results, for the messages each kind words its own way."""
    refused = assert_failed(run, "server-down", "connection_refused")
    hung = assert_failed(run, "hung-server", "timeout")
    assert evidence(hung)["connect"] == ("an answer within 1.00s", "no answer")
    assert run.result("hung-server-attempt-timeout")["errorKind"] == "timeout"
    return refused, assert_failed(run, "dns-failure", "dns")
