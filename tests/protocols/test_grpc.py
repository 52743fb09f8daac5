"""The ``grpc`` kind against grpcio-health-checking's real HealthServicer, through the CLI."""

from __future__ import annotations

import pytest

from tests.protocols.conftest import (
    ELSEWHERE,
    RESOLVED,
    UNRESOLVABLE,
    Certs,
    Run,
    SuiteRunner,
    assert_all,
    assert_failed,
    evidence,
    resolve_args,
    suite_vars,
)
from tests.servers.grpc_health import GrpcHealthServer


@pytest.fixture(scope="module")
def passing(
    run_suite: SuiteRunner,
    grpc_server: GrpcHealthServer,
    grpc_tls_server: GrpcHealthServer,
    grpc_auth_server: GrpcHealthServer,
    grpc_token: str,
    certs: Certs,
) -> Run:
    return run_suite(
        f"""
        - name: server-overall
          grpc: {{target: "{grpc_server.target}"}}
        - name: one-service
          grpc: {{target: "{grpc_server.target}", service: shop.Orders}}
        - name: expect-not-serving
          grpc:
            target: "{grpc_server.target}"
            service: shop.Billing
            expect: {{status: NOT_SERVING}}
        - name: tls-verified
          grpc: {{target: "{grpc_tls_server.target}", tls: {{ca: "{certs.ca}"}}}}
        - name: tls-server-name
          grpc:
            target: "{grpc_tls_server.target}"
            tls: {{ca: "{certs.ca}", serverName: localhost}}
        - name: bearer-token
          grpc:
            target: "{grpc_auth_server.target}"
            metadata: {{authorization: "Bearer ${{token}}"}}
        """,
        extra_spec=suite_vars(secret={"token": grpc_token}),
    )


def test_passing_suite_exits_0(passing: Run) -> None:
    assert_all(passing, "passed")


def test_status_in_details(passing: Run) -> None:
    assert passing.result("server-overall")["details"]["status"] == "SERVING"
    assert passing.result("one-service")["details"]["service"] == "shop.Orders"
    assert passing.result("expect-not-serving")["details"]["status"] == "NOT_SERVING"
    assert passing.result("tls-verified")["details"]["tls"] is True


@pytest.fixture(scope="module")
def failing(
    run_suite: SuiteRunner,
    grpc_server: GrpcHealthServer,
    grpc_tls_server: GrpcHealthServer,
    grpc_auth_server: GrpcHealthServer,
    certs: Certs,
    dead_port: int,
    silent_port: int,
) -> Run:
    return run_suite(
        f"""
        - name: not-serving
          grpc: {{target: "{grpc_server.target}", service: shop.Billing}}
        - name: unknown-service
          grpc: {{target: "{grpc_server.target}", service: shop.Nothing}}
        - name: wrong-token
          grpc:
            target: "{grpc_auth_server.target}"
            metadata: {{authorization: "Bearer not-the-token"}}
        - name: server-down
          grpc: {{target: "127.0.0.1:{dead_port}"}}
        - name: hung-server
          grpc: {{target: "127.0.0.1:{silent_port}", deadline: 1s}}
        - name: hung-server-attempt-timeout
          timeout: 1s
          grpc: {{target: "127.0.0.1:{silent_port}"}}
        - name: tls-wrong-ca
          grpc: {{target: "{grpc_tls_server.target}", tls: {{ca: "{certs.other_ca}"}}}}
        - name: tls-to-plaintext-server
          grpc: {{target: "{grpc_server.target}", tls: {{ca: "{certs.ca}"}}}}
        - name: plaintext-to-tls-server
          grpc: {{target: "{grpc_tls_server.target}"}}
        - name: dns-failure
          grpc: {{target: "{UNRESOLVABLE}:50051", deadline: 5s}}
        """
    )


def test_failing_suite_exits_1(failing: Run) -> None:
    assert_all(failing, "failed")


def test_wrong_status_is_an_expectation(failing: Run) -> None:
    r = assert_failed(failing, "not-serving", "expectation")
    assert evidence(r)["service 'shop.Billing' status"] == ("SERVING", "NOT_SERVING")


def test_unknown_service_is_not_found(failing: Run) -> None:
    r = assert_failed(failing, "unknown-service", "not_found")
    assert "shop.Nothing" in r["message"]


def test_wrong_token_is_auth(failing: Run) -> None:
    assert_failed(failing, "wrong-token", "auth")


def test_server_down_is_connection_refused(failing: Run) -> None:
    r = assert_failed(failing, "server-down", "connection_refused")
    assert "Connection refused" in r["message"]


def test_hung_server_is_timeout(failing: Run) -> None:
    r = assert_failed(failing, "hung-server", "timeout")
    assert "DEADLINE_EXCEEDED" in r["message"]
    assert failing.result("hung-server-attempt-timeout")["errorKind"] == "timeout"


def test_tls_failures(failing: Run) -> None:
    r = assert_failed(failing, "tls-wrong-ca", "tls")
    assert "CERTIFICATE_VERIFY_FAILED" in r["message"]
    assert_failed(failing, "tls-to-plaintext-server", "tls")
    assert_failed(failing, "plaintext-to-tls-server", "protocol")


def test_dns_failure(failing: Run) -> None:
    assert_failed(failing, "dns-failure", "dns")


def test_grpc_core_logging_stays_off_the_console(failing: Run) -> None:
    # The TLS failures above make gRPC core log handshake errors unless the check quiets it.
    assert "ssl_transport_security" not in failing.cli.err


def test_status_change_is_seen_on_the_next_run(
    run_suite: SuiteRunner, grpc_server: GrpcHealthServer
) -> None:
    check = f"""
    - name: inventory
      grpc: {{target: "{grpc_server.target}", service: shop.Inventory}}
    """
    grpc_server.set_status("shop.Inventory", "NOT_SERVING")
    first = run_suite(check)
    grpc_server.set_status("shop.Inventory", "SERVING")
    second = run_suite(check)
    assert (first.cli.code, second.cli.code) == (1, 0)
    assert first.result("inventory")["details"]["status"] == "NOT_SERVING"


# --resolve: discovered checks and suites written for in-cluster names dial names that only
# resolve there.


def _resolve_checks(plain: GrpcHealthServer, tls: GrpcHealthServer, certs: Certs) -> str:
    return f"""
    - name: resolved-plaintext
      grpc: {{target: "{RESOLVED}:{plain.port}", service: shop.Orders}}
    - name: resolved-tls-verified
      grpc: {{target: "{RESOLVED}:{tls.port}", tls: {{ca: "{certs.ca}"}}}}
    """


@pytest.fixture(scope="module")
def resolved(
    run_suite: SuiteRunner,
    grpc_server: GrpcHealthServer,
    grpc_tls_server: GrpcHealthServer,
    certs: Certs,
) -> Run:
    wrong_name = f"""
    - name: resolved-name-not-on-certificate
      grpc: {{target: "{ELSEWHERE}:{grpc_tls_server.port}", tls: {{ca: "{certs.ca}"}}}}
    """
    return run_suite(
        _resolve_checks(grpc_server, grpc_tls_server, certs),
        wrong_name,
        args=[
            *resolve_args(grpc_server.port, RESOLVED),
            *resolve_args(grpc_tls_server.port, RESOLVED, ELSEWHERE),
        ],
    )


def test_resolve_connects_to_the_address(
    resolved: Run, grpc_server: GrpcHealthServer, grpc_tls_server: GrpcHealthServer
) -> None:
    for name, port in (
        ("resolved-plaintext", grpc_server.port),
        ("resolved-tls-verified", grpc_tls_server.port),
    ):
        r = resolved.result(name)
        assert r["status"] == "passed", r
        assert r["details"]["target"] == f"{RESOLVED}:{port} via 127.0.0.1"


def test_resolve_keeps_the_name_for_tls(resolved: Run) -> None:
    # The certificate covers *.example.invalid and 127.0.0.1: only checking the name, not the
    # address dialled, tells the two names apart.
    assert resolved.result("resolved-tls-verified")["details"]["tls"] is True
    r = assert_failed(resolved, "resolved-name-not-on-certificate", "tls")
    assert "Hostname Verification Check failed" in r["message"]
    assert f"{ELSEWHERE}:" in r["message"] and "via 127.0.0.1" in r["message"]


def test_without_resolve_the_names_do_not_resolve(
    run_suite: SuiteRunner,
    grpc_server: GrpcHealthServer,
    grpc_tls_server: GrpcHealthServer,
    certs: Certs,
) -> None:
    run = run_suite(_resolve_checks(grpc_server, grpc_tls_server, certs))
    assert_all(run, "failed")
    for r in run.report["results"]:
        assert_failed(run, r["name"], "dns")


def test_the_server_is_told_the_deadline(run_suite: SuiteRunner) -> None:
    """Without its own ``deadline``, an RPC carries the time its attempt has left
    (``ctx.time_left()``), so the server can stop when the check does; ``deadline`` wins."""
    with GrpcHealthServer() as server:
        run = run_suite(
            f"""
            - name: attempt-timeout
              timeout: 4s
              grpc: {{target: "{server.target}"}}
            - name: own-deadline
              needs: [attempt-timeout]
              grpc: {{target: "{server.target}", deadline: 1s}}
            """
        )
        assert_all(run, "passed")
        attempt, own = server.deadlines
    # gRPC rounds the deadline it sends up a little (its timeout header has coarse units).
    assert attempt is not None and 3.0 < attempt <= 4.1
    assert own is not None and 0.5 < own <= 1.1
