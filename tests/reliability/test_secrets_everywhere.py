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

import base64
import json
import shutil
import sqlite3
import string
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.kube.conftest import kube_bin_dir, kube_env, kube_namespace  # noqa: F401
from tests.reliability._figures import publish

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
    Target,
    config_text,
    flux_event,
)
from tests.server.support import request as http_request
from tests.servers.dnsmasq import DnsmasqServer
from tests.servers.grpc_health import GrpcHealthServer
from tests.servers.mariadb import MariaDBServer
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer

# Names of the secret values, where each goes in.
KINDS_OF_SECRET = (
    "ref_token",  # Kubernetes Secret, ${secret:creds/token}: HTTP header, failing body check
    "ref_pg",  # Kubernetes Secret, secretRef: the PostgreSQL password (passing check)
    "var",  # `secret: true` var from the environment: headers, exec, tcp, tls, dns
    "userinfo",  # inline URL userinfo (nobody marked it secret)
    "basic",  # basicAuth password
    "dsn_pg",  # wrong password in an inline postgres DSN
    "redis",  # redis password (passing, from a secret var) ...
    "redis_bad",  # ... and a wrong one in an inline redis:// URL
    "mysql",  # mysql password, secret var
    "grpc",  # gRPC metadata token (passing) ...
    "grpc_bad",  # ... and a rejected one the server quotes back
    "kube",  # in a kube check's object name (lowercase: a valid name)
)

FIGURES: dict[str, object] = {}

# Printable, with what URL encoding and shells change: '@', ':', '/', '+', '%', ' ' and '&'.
_ALPHABET = string.ascii_letters + string.digits + "@:/+%&-_."


@st.composite
def secret_values(draw: st.DrawFn) -> dict[str, str]:
    out = {}
    for name in KINDS_OF_SECRET:
        body = draw(st.text(_ALPHABET, min_size=6, max_size=14))
        # Unique per run (a uuid) so that no output can contain it by chance.
        out[name] = f"s{uuid.uuid4().hex[:10]}{body}"
    out["kube"] = f"k{uuid.uuid4().hex}"  # a DNS label
    # A DSN password is parsed from the URL: a raw '%', '/' or '@' there would be a different
    # URL, so these are URL-safe (their encoded forms are still searched for).
    for name in ("userinfo", "dsn_pg", "redis_bad"):
        out[name] = f"u{uuid.uuid4().hex}"
    return out


def draw_values() -> dict[str, str]:
    drawn: list[dict[str, str]] = []

    @settings(max_examples=1, database=None, suppress_health_check=list(HealthCheck))
    @given(secret_values())
    def pick(values: dict[str, str]) -> None:
        drawn.append(values)

    pick()
    return drawn[-1]


def forms(value: str) -> set[str]:
    """The value, URL-encoded (both ways), base64 alone and as basic auth ``user:value``."""
    out = {value, quote(value, safe=""), quote_plus(value), quote(value)}
    for raw in (value, f"u:{value}", f"smoke:{value}"):
        out.add(base64.b64encode(raw.encode()).decode())
    return out


class Servers:
    def __init__(self, values: dict[str, str]) -> None:
        self.pg = PostgresServer(password=values["ref_pg"])
        self.redis = RedisServer(password=values["redis"])
        self.mysql = MariaDBServer(password=values["mysql"])
        self.grpc = GrpcHealthServer(token=values["grpc"], echo_token=True)
        self.certs = tempfile.mkdtemp(prefix="sg-rel-certs-")
        ca = trustme.CA()
        issued = ca.issue_cert("localhost", "127.0.0.1")
        issued.cert_chain_pems[0].write_to_path(f"{self.certs}/server.crt")
        issued.private_key_pem.write_to_path(f"{self.certs}/server.key")
        ca.cert_pem.write_to_path(f"{self.certs}/ca.pem")
        self.tls = GrpcHealthServer(  # any TLS server does for the tls check: this one is quick
            tls_cert=f"{self.certs}/server.crt", tls_key=f"{self.certs}/server.key"
        )
        self.dns = DnsmasqServer(hosts={f"{values['kube']}.test": ["127.0.0.1"]})
        self.target = Target()
        # One after the other, from this thread: the servers die with the thread that started
        # them (PR_SET_PDEATHSIG), so a thread pool would kill them as its threads end.
        for server in self.all():
            server.__enter__()

    def all(self) -> tuple[Any, ...]:
        return (self.pg, self.redis, self.mysql, self.grpc, self.tls, self.dns)

    def close(self) -> None:
        self.target.close()
        for server in reversed(self.all()):
            server.__exit__(None, None, None)
        shutil.rmtree(self.certs, ignore_errors=True)


@pytest.fixture(scope="module")
def values() -> dict[str, str]:
    return draw_values()


@pytest.fixture(scope="module")
def servers(values: dict[str, str]) -> Iterator[Servers]:
    s = Servers(values)
    yield s
    s.close()


def suite_text(v: dict[str, str], s: Servers, dead_port: int) -> str:
    t = s.target
    pg, rd, my = s.pg, s.redis, s.mysql
    return f"""\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {{name: s}}
spec:
  defaults: {{timeout: 3s}}
  vars:
    token: ${{secret:creds/token}}
    var: {{value: "${{env:SG_REL_VAR}}", secret: true}}
    redis_pw: {{value: "${{env:SG_REL_REDIS}}", secret: true}}
    mysql_pw: {{value: "${{env:SG_REL_MYSQL}}", secret: true}}
    grpc_tok: {{value: "${{env:SG_REL_GRPC}}", secret: true}}
    kube_name: {{value: "${{env:SG_REL_KUBE}}", secret: true}}
  checks:
    - name: http-ok
      http:
        url: "{t.url}/health"
        headers: {{Authorization: "Bearer ${{token}}", X-Api-Key: "${{var}}"}}
    - name: http-body-has-token
      http:
        url: "{t.url}/health"
        headers: {{Authorization: "Bearer ${{token}}"}}
        expect: {{body: {{contains: "${{token}}"}}, headers: {{X-Echo: "${{var}}"}}}}
    - name: http-userinfo
      http: {{url: "http://smoke:{v["userinfo"]}@127.0.0.1:{t.port}/health"}}
    - name: http-userinfo-fails
      http:
        url: "http://smoke:{v["userinfo"]}@127.0.0.1:{t.port}/health"
        expect: {{status: 418}}
    - name: http-basic-auth-fails
      http:
        url: "{t.url}/health"
        basicAuth: {{username: u, password: "{v["basic"]}"}}
        expect: {{status: 401}}
    - name: tcp-send-fails
      tcp: {{host: 127.0.0.1, port: {dead_port}, send: "AUTH ${{var}}\\r\\n"}}
    - name: tcp-ok
      tcp: {{host: 127.0.0.1, port: {t.port}, send: "GET /${{var}} HTTP/1.0\\r\\n\\r\\n"}}
    - name: dns-ok
      dns:
        name: "${{kube_name}}.test"
        type: A
        nameserver: 127.0.0.1
        port: {s.dns.port}
        expect: {{contains: [127.0.0.1]}}
    - name: dns-fails
      dns: {{name: "${{var}}.invalid", type: A, nameserver: 127.0.0.1, port: {dead_port}}}
    - name: tls-ok-${{kube_name}}
      tls: {{host: 127.0.0.1, port: {s.tls.port}, ca: "{s.certs}/ca.pem"}}
    - name: tls-fails
      tls: {{host: 127.0.0.1, port: {t.port}, serverName: "x${{kube_name}}.invalid"}}
    - name: exec-ok
      exec:
        command: [{sys.executable}, -c, "import sys; print(sys.argv[1])", "${{var}}"]
        expect: {{exitCode: 0}}
    - name: exec-prints-secret-fails
      exec:
        command: [{sys.executable}, -c, "import sys; print(sys.argv[1])", "${{token}}"]
        expect: {{stdout: {{contains: "nothing like it"}}}}
    - name: postgres-ok
      postgres:
        host: 127.0.0.1
        port: {pg.port}
        user: {pg.user}
        database: postgres
        password: {{secretRef: {{name: creds, key: pg}}}}
        query: "SELECT 1 AS one"
    - name: postgres-echo-fails
      postgres:
        host: 127.0.0.1
        port: {pg.port}
        user: {pg.user}
        database: postgres
        password: {{secretRef: {{name: creds, key: pg}}}}
        query: "SELECT '${{token}}' AS leaked"
        expect: {{columns: {{leaked: nope}}}}
    - name: postgres-dsn-fails
      postgres: {{dsn: "postgresql://smoke:{v["dsn_pg"]}@127.0.0.1:{pg.port}/postgres"}}
    - name: redis-ok
      redis: {{host: 127.0.0.1, port: {rd.port}, password: "${{redis_pw}}"}}
    - name: redis-url-fails
      redis: {{url: "redis://smoke:{v["redis_bad"]}@127.0.0.1:{rd.port}/0"}}
    - name: mysql-ok
      mysql:
        host: 127.0.0.1
        port: {my.port}
        user: {my.user}
        database: {my.database}
        password: "${{mysql_pw}}"
    - name: mysql-echo-fails
      mysql:
        host: 127.0.0.1
        port: {my.port}
        user: {my.user}
        database: {my.database}
        password: "${{mysql_pw}}"
        query: "SELECT '${{var}}' AS leaked"
        expect: {{columns: {{leaked: nope}}}}
    - name: grpc-ok
      grpc:
        target: "{s.grpc.target}"
        metadata: {{authorization: "Bearer ${{grpc_tok}}"}}
    - name: grpc-rejected-fails
      grpc:
        target: "{s.grpc.target}"
        metadata: {{authorization: "Bearer {v["grpc_bad"]}"}}
    - name: kube-ok
      kube: {{absent: {{kind: ConfigMap, name: "${{kube_name}}"}}}}
    - name: kube-fails
      kube: {{ready: {{kind: Deployment, name: "${{kube_name}}"}}}}
      timeout: 2s
"""


EXPECTED = {  # check -> status (each failing one would carry a value in its message/evidence)
    "http-ok": "passed",
    "http-body-has-token": "failed",
    "http-userinfo": "passed",
    "http-userinfo-fails": "failed",
    "http-basic-auth-fails": "failed",
    "tcp-send-fails": "failed",
    "tcp-ok": "passed",
    "dns-ok": "passed",
    "dns-fails": "failed",
    "tls-ok-***": "passed",
    "tls-fails": "failed",
    "exec-ok": "passed",
    "exec-prints-secret-fails": "failed",
    "postgres-ok": "passed",
    "postgres-echo-fails": "failed",
    "postgres-dsn-fails": "failed",
    "redis-ok": "passed",
    "redis-url-fails": "failed",
    "mysql-ok": "passed",
    "mysql-echo-fails": "failed",
    "grpc-ok": "passed",
    "grpc-rejected-fails": "failed",
    "kube-ok": "passed",
    "kube-fails": "failed",
}


def env_for(v: dict[str, str]) -> dict[str, str]:
    return {
        "SG_REL_VAR": v["var"],
        "SG_REL_REDIS": v["redis"],
        "SG_REL_MYSQL": v["mysql"],
        "SG_REL_GRPC": v["grpc"],
        "SG_REL_KUBE": v["kube"],
    }


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
