"""Secrets everywhere (issue 15, part 3): unique secret values in checks of every kind, through
every output, and not one of them — raw, URL-encoded or base64 — in anything smokegate wrote.

The values are drawn fresh for each run (hypothesis: the property must hold for any value, and
they carry the characters URL encoding changes). They enter the suite the ways users put
secrets in: a real Kubernetes Secret in the test apiserver (``${secret:...}`` and
``secretRef``), a ``secret: true`` var from the environment, URL userinfo, ``basicAuth``, DSN
passwords (postgres, redis, mysql), headers, gRPC metadata, a DNS name, a check name. Each kind
has a passing check that uses one and a failing check whose message or evidence would quote it
(a body expected to contain it, a command printing it, a server echoing the rejected token, a
wrong password).

Then the same suite runs through ``gate`` (console ``-v``, JUnit, JSON, Markdown, HTML, the
step summary, the Kubernetes Events, the notification-controller POSTs — a real local HTTP
server stands in for notification-controller) and ``serve`` with a SQLite and a PostgreSQL
store (REST API JSON, dashboard HTML, ``/metrics``, Events, notifications, its log, every row
of every table, and the SQLite database files byte for byte). Figure: leaks (must be 0).
The test plays Flux helm-controller (status patched through the status subresource).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kube.conftest import kube_bin_dir, kube_env, kube_namespace  # noqa: F401
from tests.reliability._figures import publish
from tests.reliability._secrets_suite import (
    EXPECTED,
    Servers,
    draw_values,
    env_for,
    forms,
    suite_text,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kube"))

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
    config_text,
    flux_event,
)
from tests.server.support import request as http_request

FIGURES: dict[str, object] = {}


@pytest.fixture(scope="module")
def values() -> dict[str, str]:
    return draw_values()


@pytest.fixture(scope="module")
def servers(values: dict[str, str]) -> Iterator[Servers]:
    s = Servers(values)
    yield s
    s.close()


def release(env: KubeEnv, ns: str, v: dict[str, str]) -> None:
    env.kubectl(
        "create", "secret", "generic", "creds", "-n", ns,
        f"--from-literal=token={v['ref_token']}", f"--from-literal=pg={v['ref_pg']}",
    )  # fmt: skip
    hr = helmrelease("podinfo", ns)
    hr["metadata"]["annotations"] = {"smokegate.io/suites": "s"}
    apply(env, hr)
    patch_status(env, "hr", "podinfo", ns, status_ready("podinfo", ns, 1, "6.6.1", version=1))


class Haystack:
    """Every output, by name; ``leaks()`` lists (output, secret, form) found."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.outputs: dict[str, bytes] = {}

    def add(self, name: str, data: str | bytes) -> None:
        self.outputs[name] = data.encode() if isinstance(data, str) else data

    def leaks(self) -> list[tuple[str, str, str]]:
        found = []
        for name, data in self.outputs.items():
            for secret, value in self.values.items():
                for form in forms(value):
                    at = data.find(form.encode())
                    if at >= 0:
                        near = data[max(0, at - 150) : at + 80].decode(errors="replace")
                        found.append((name, secret, f"{form!r} in ...{near}..."))
        return found


def _cpu() -> float:
    import resource
    import time

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def statuses(report: dict) -> dict[str, str]:
    return {r["name"]: r["status"] for r in report["results"]}


def test_gate_and_serve_show_no_secret_in_any_output(
    values: dict[str, str],
    servers: Servers,
    kube_env: KubeEnv,  # noqa: F811
    kube_namespace: str,  # noqa: F811
    kubeconfig: str,
    notify_server: NotifyServer,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    ns, v = kube_namespace, values
    cpu_start = _cpu()
    release(kube_env, ns, v)
    hay = Haystack(v)
    suite = suite_text(v, servers, free_port())
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "s.yaml").write_text(suite)

    # --- gate: console, reports, step summary, Events, notifications -----------------------
    reports = {fmt: tmp_path / f"report.{fmt}" for fmt in ("junit", "json", "markdown", "html")}
    summary = tmp_path / "summary.md"
    r = run_cli(
        "gate", f"{ns}/podinfo", "--kubeconfig", kubeconfig, str(tmp_path / "suites" / "s.yaml"),
        "-v", "--notify-flux", notify_server.url,
        *(f"--report={fmt}={path}" for fmt, path in reports.items()),
        env={"GITHUB_STEP_SUMMARY": str(summary), **env_for(v)},
    )  # fmt: skip
    assert r.code == 1, r.text
    hay.add("gate console -v", r.text)
    for fmt, path in [*reports.items(), ("step summary", summary)]:
        hay.add(f"gate {fmt} report", path.read_bytes())
    report = json.loads(reports["json"].read_text())
    assert statuses(report) == EXPECTED, r.text
    assert "***" in reports["json"].read_text()  # masks are where the values would have been

    # --- serve, with each store -------------------------------------------------------------
    for backend in ("sqlite", "postgresql"):
        _serve(backend, hay, v, servers, kube_env, ns, notify_server, tmp_path)

    for i, event in enumerate(events_for(kube_env, ns, "podinfo")):
        hay.add(f"Kubernetes Event {i}", json.dumps(event))
    assert notify_server.received, "no notification sent"
    for i, sent in enumerate(notify_server.received):
        hay.add(f"notification {i}", sent.body)
    leaks = hay.leaks()
    FIGURES.update(
        secrets=len(v),
        forms_searched=sum(len(forms(x)) for x in v.values()),
        outputs_searched=len(hay.outputs),
        bytes_searched=sum(len(d) for d in hay.outputs.values()),
        checks=len(EXPECTED),
        leaks=len(leaks),
        # This process and the gate/serve processes it ran (not the servers' start-up): what
        # the test costs an idle machine, whatever the load on a shared one.
        cpu_seconds=round(_cpu() - cpu_start, 1),
    )
    publish(request.config, "secrets-everywhere", FIGURES, tmp_path)
    assert not leaks, "\n".join(f"{o}: {s} as {f}" for o, s, f in leaks[:20])


def _serve(
    backend: str,
    hay: Haystack,
    v: dict[str, str],
    servers: Servers,
    env: KubeEnv,
    ns: str,
    notify_server: NotifyServer,
    tmp_path: Path,
) -> None:
    work = tmp_path / backend
    work.mkdir()
    (work / "suites").mkdir()
    (work / "suites" / "s.yaml").write_text((tmp_path / "suites" / "s.yaml").read_text())
    if backend == "sqlite":
        store_url = f"sqlite:///{work / 'history.db'}"
    else:
        import psycopg

        name = f"sg_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(servers.pg.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        store_url = servers.pg.dsn().rsplit("/", 1)[0] + f"/{name}"
    port = free_port()
    kube = (
        "kubernetes:\n  enabled: true\n"
        f"  kubeconfig: {env.kubeconfig}\n"
        f"  notifyFlux: {notify_server.url}\n"
        "  waitTimeout: 30s\n"
    )
    text = config_text(
        port, store_url, extra=kube, rules="  - match: {namespace: nothing}\n    suites: [s]\n"
    )
    serve = ServeProcess(work, text, port=port)
    import os

    saved = {k: os.environ.get(k) for k in env_for(v)}
    os.environ.update(env_for(v))  # ServeProcess passes this process's environment on
    try:
        serve.start()
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old
    try:
        assert serve.post_hook(flux_event(namespace=ns, revision="6.6.1"))[0] == 202
        (run,) = serve.wait_for_runs(1, timeout=90)
        serve.wait_idle(timeout=90)
        auth = {"Authorization": f"Bearer {TOKEN}"}
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
        ):
            hay.add(
                f"serve[{backend}] GET {path}",
                http_request("GET", serve.url + path, headers=auth)[2],
            )
        detail = json.loads(hay.outputs[f"serve[{backend}] GET /api/v1/runs/{run['id']}"])
        assert statuses(detail["report"]) == EXPECTED, detail
    finally:
        serve.stop()
    hay.add(f"serve[{backend}] log", serve.log)
    if backend == "sqlite":
        db = work / "history.db"
        with sqlite3.connect(db) as conn:
            hay.add("sqlite rows", "\n".join(conn.iterdump()))
        for f in work.glob("history.db*"):  # the database file, its WAL and shared memory
            hay.add(f"sqlite file {f.name}", f.read_bytes())
    else:
        import psycopg

        rows: list[str] = []
        with psycopg.connect(store_url) as conn:
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchall()
            assert tables
            for (table,) in tables:
                rows += [repr(row) for row in conn.execute(f'SELECT * FROM "{table}"').fetchall()]
        hay.add("postgresql rows", "\n".join(rows))
