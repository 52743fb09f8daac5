"""A Secret's value inside a check's id, its message and its evidence never reaches any output of
``gate`` or ``serve`` (issue 16: serve's worker once put ``s/login-hunter22`` in the Kubernetes
Event and the Flux notification while ``gate`` showed ``s/login-***``).

The secret lives in a real Kubernetes Secret in the test apiserver; the suite names a check
after it (``login-${pw}``) and expects the (real, loopback) service's body to contain it, which
it does not: the check fails with the secret in its id, its message and its evidence. The test
plays Flux helm-controller (status patched through the status subresource); the notification
receiver is a real HTTP server; the stores are a real SQLite file and a real PostgreSQL.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_flux import (  # noqa: F401  (*_fixture: fixtures, used by name)
    NotifyServer,
    apply,
    events_for,
    helmrelease,
    kubeconfig_fixture,
    notify_server_fixture,
    patch_status,
    status_ready,
)
from kubeenv import KubeEnv
from tests.helpers import free_port, run_cli
from tests.server.support import (
    TOKEN,
    ServeProcess,
    Target,
    config_text,
    flux_event,
    get_json,
)
from tests.server.support import request as http_request

SECRET = "hunter22"
MASKED_ID = "s/login-***"

SUITE = """\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {{name: s}}
spec:
  vars:
    pw: ${{secret:login/password}}
  checks:
    - name: login-${{pw}}
      http:
        url: "{url}/health"
        headers: {{Authorization: "Bearer ${{pw}}"}}
        expect:
          status: 200
          body: {{contains: "${{pw}}"}}
    - name: health
      http: {{url: "{url}/health"}}
"""


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


def _release(env: KubeEnv, ns: str) -> None:
    env.kubectl(
        "create", "secret", "generic", "login", "-n", ns, f"--from-literal=password={SECRET}"
    )
    hr = helmrelease("podinfo", ns)
    hr["metadata"]["annotations"] = {"smokegate.io/suites": "s"}
    apply(env, hr)
    patch_status(env, "hr", "podinfo", ns, status_ready("podinfo", ns, 1, "6.6.1", version=1))


def _assert_clean(where: str, text: str) -> None:
    assert SECRET not in text, f"{where} shows the secret:\n{text[:3000]}"


def _assert_reported_back(env: KubeEnv, ns: str, notify: NotifyServer) -> None:
    """The Event on the HelmRelease and the notification-controller body: masked, and about the
    failed check (so the test would see an unmasked id if there were one)."""
    events = events_for(env, ns, "podinfo")
    assert [e["reason"] for e in events] == ["SmokeTestFailed"], events
    assert events[0]["message"] == f"1 passed, 1 failed: {MASKED_ID}"
    _assert_clean("the Event", json.dumps(events))
    (sent,) = notify.received
    body = sent.body.decode()
    _assert_clean("the notification body", body)
    assert sent.json()["message"] == f"1 passed, 1 failed: {MASKED_ID}"


def _assert_failed_with_masked_evidence(report: dict) -> None:
    """The run's report (JSON report, API): the check failed on the secret-bearing expectation,
    and its id, message and evidence show ``***`` in the secret's place."""
    (login,) = [r for r in report["results"] if r["name"].startswith("login-")]
    assert login["id"] == MASKED_ID and login["status"] == "failed"
    assert login["message"] == 'body: expected containing "***", got not found'
    assert login["evidence"] == [
        {"subject": "body", "expected": 'containing "***"', "actual": "not found"}
    ]


def test_gate_shows_the_secret_in_no_output(
    kube_env: KubeEnv,
    kube_namespace: str,
    kubeconfig: str,
    tmp_path: Path,
    target: Target,
    notify_server: NotifyServer,
) -> None:
    ns = kube_namespace
    _release(kube_env, ns)
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE.format(url=target.url))
    reports = {fmt: tmp_path / f"report.{fmt}" for fmt in ("junit", "json", "markdown", "html")}
    summary = tmp_path / "summary.md"
    r = run_cli(
        "gate", f"{ns}/podinfo", "--kubeconfig", kubeconfig, str(suite), "-v",
        "--notify-flux", notify_server.url,
        *(f"--report={fmt}={path}" for fmt, path in reports.items()),
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )  # fmt: skip
    assert r.code == 1, r.text
    _assert_clean("the console", r.text)
    assert MASKED_ID in r.out
    for fmt, path in [*reports.items(), ("step summary", summary)]:
        text = path.read_text()
        _assert_clean(f"the {fmt} report", text)
        # Markdown escapes the asterisks it shows literally.
        assert re.search(r"login-(\*\*\*|(&#42;){3})", text), f"{fmt}: {text[:2000]}"
    _assert_failed_with_masked_evidence(json.loads(reports["json"].read_text()))
    _assert_reported_back(kube_env, ns, notify_server)


@pytest.fixture(scope="module")
def postgres() -> Iterator[object]:
    from tests.servers.postgres import PostgresServer

    with PostgresServer() as pg:
        yield pg


def _store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    import psycopg

    pg = request.getfixturevalue("postgres")
    name = f"sg_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg.dsn().rsplit("/", 1)[0] + f"/{name}"


def _store_dump(url: str) -> str:
    """Every row of every table, as text."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return "\n".join(conn.iterdump())
    import psycopg

    rows: list[str] = []
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
        assert tables, "no tables in the store"
        for (table,) in tables:
            rows += [repr(row) for row in conn.execute(f'SELECT * FROM "{table}"').fetchall()]
    return "\n".join(rows)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_serve_shows_the_secret_in_no_output(
    backend: str,
    kube_env: KubeEnv,
    kube_namespace: str,
    tmp_path: Path,
    target: Target,
    notify_server: NotifyServer,
    request: pytest.FixtureRequest,
) -> None:
    ns = kube_namespace
    _release(kube_env, ns)
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "s.yaml").write_text(SUITE.format(url=target.url))
    store_url = _store_url(backend, tmp_path, request)
    port = free_port()
    kube = (
        "kubernetes:\n  enabled: true\n"
        f"  kubeconfig: {kube_env.kubeconfig}\n"
        f"  notifyFlux: {notify_server.url}\n"
        "  waitTimeout: 30s\n"
    )
    text = config_text(
        port, store_url, extra=kube, rules="  - match: {namespace: nothing}\n    suites: [s]\n"
    )
    serve = ServeProcess(tmp_path, text, port=port).start()
    try:
        assert serve.post_hook(flux_event(namespace=ns, revision="6.6.1"))[0] == 202
        (run,) = serve.wait_for_runs(1)
        assert run["verdict"] == "failed", run
        serve.wait_idle()
        detail = get_json(f"{serve.url}/api/v1/runs/{run['id']}")
        _assert_failed_with_masked_evidence(detail["report"])
        auth = {"Authorization": f"Bearer {TOKEN}"}
        api = {
            path: http_request("GET", serve.url + path, headers=auth)[2].decode()
            for path in (
                "/api/v1/runs",
                f"/api/v1/runs/{run['id']}",
                f"/api/v1/releases?namespace={ns}",
                "/api/v1/releases",
                "/api/v1/status",
                "/",
                f"/releases/{ns}/podinfo",
                f"/runs/{run['id']}",
                "/metrics",
            )
        }
        for path, body in api.items():
            _assert_clean(f"GET {path}", body)
        assert MASKED_ID in api[f"/api/v1/runs/{run['id']}"]
        assert "login-***" in api[f"/runs/{run['id']}"]  # the dashboard's run page
        assert MASKED_ID in api["/api/v1/runs"]  # the run's message names the failed check
        _assert_reported_back(kube_env, ns, notify_server)
    finally:
        serve.stop()
    dump = _store_dump(store_url)
    assert MASKED_ID in dump
    _assert_clean(f"the {backend} store", dump)
    _assert_clean("the server's log", serve.log)
