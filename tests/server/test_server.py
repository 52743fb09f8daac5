"""``smokegate serve`` end to end, as a subprocess, on SQLite and on a real PostgreSQL: Flux
webhooks (signed, both metadata shapes, refusals), dedup, a crash after 202, graceful shutdown,
the API (manual runs, downloads), gates, metrics, OpenAPI and ``smokegate trigger``."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.support import (
    REPO,
    SECRET,
    TOKEN,
    ServeProcess,
    Target,
    flux_event,
    get_json,
    hook_headers,
    request,
    write_suites,
)


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


@pytest.fixture
def workdir(tmp_path: Path, target: Target) -> Path:
    write_suites(tmp_path / "suites", target.url)
    return tmp_path


@pytest.fixture
def server(workdir: Path, store_url: str) -> Iterator[ServeProcess]:
    proc = ServeProcess.for_store(workdir, store_url).start()
    yield proc
    proc.stop()
    assert SECRET not in proc.log and TOKEN not in proc.log  # secrets are never logged


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


# --- Flux webhooks ----------------------------------------------------------------------------


@pytest.mark.parametrize("prefixed", [False, True], ids=["nc-v1.5+", "nc-before-v1.5"])
def test_signed_event_triggers_exactly_one_run(
    server: ServeProcess, target: Target, prefixed: bool
) -> None:
    body = flux_event(revision="6.6.1", prefixed=prefixed)
    status, answer = server.post_hook(body)
    assert status == 202 and answer["queued"] and answer["revision"] == "6.6.1"
    status, again = server.post_hook(body)  # Flux retries, replicas, or the TestSucceeded event
    assert status == 202 and again == {**answer, "queued": False, "duplicate": True}
    status, _ = server.post_hook(flux_event(revision="6.6.1", reason="TestSucceeded"))
    assert status == 202
    (run,) = server.wait_for_runs(1)
    server.wait_idle()
    assert len(server.runs()) == 1
    assert run["release"] == "apps/podinfo" and run["revision"] == "6.6.1"
    assert run["trigger"] == "webhook" and run["verdict"] == "passed", run
    assert run["counts"]["passed"] == 2
    full = get_json(f"{server.url}/api/v1/runs/{run['id']}")
    assert full["report"]["context"]["event"]["reason"] == "UpgradeSucceeded"
    assert target.hits["/health"] == 2


def test_refused_events_trigger_nothing(server: ServeProcess) -> None:
    body = flux_event(revision="9.9.9")
    assert server.post_hook(body, hook_headers(body, secret="wrong"))[0] == 401
    assert server.post_hook(body, hook_headers(body, secret=None))[0] == 401
    tampered = body.replace(b"9.9.9", b"9.9.8")
    assert server.post_hook(tampered, hook_headers(body))[0] == 401
    big = flux_event(revision="9.9.7").replace(b'"message":"', b'"message":"' + b"x" * 1_100_000)
    assert _raw_post(server.port, "/hooks/flux", big, hook_headers(big)) == 413
    # Without Content-Length (chunked): refused once the limit is crossed.
    assert _raw_post(server.port, "/hooks/flux", big, hook_headers(big), chunked=True) == 413
    # Ignored (200, nothing queued): other reasons, other kinds, releases no suite maps to.
    for ignored in (
        flux_event(reason="UpgradeFailed"),
        flux_event(kind="Kustomization"),
        flux_event(namespace="other"),
    ):
        status, answer = server.post_hook(ignored)
        assert status == 200 and answer["queued"] is False and answer["ignored"]
    no_revision = json.loads(body)
    no_revision["metadata"] = {}
    raw = json.dumps(no_revision).encode()
    assert server.post_hook(raw)[0] == 422
    assert server.post_hook(b"{not json")[0] == 400
    time.sleep(0.5)
    assert server.runs() == []
    assert get_json(f"{server.url}/api/v1/releases")["items"] == []


def _raw_post(
    port: int, path: str, body: bytes, headers: dict[str, str], *, chunked: bool = False
) -> int:
    """POST over a bare socket and return the status. The server may answer 413 and close
    before the body is sent (it should: it refuses without reading); urllib would report that
    as a broken pipe, so the sending errors are ignored here and the answer is read."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\n{framing}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        try:
            s.sendall(head.encode())
            for i in range(0, len(body), 65536):
                chunk = body[i : i + 65536]
                s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk)
            if chunked:
                s.sendall(b"0\r\n\r\n")
        except OSError:
            pass
        return int(s.recv(4096).split(b" ", 2)[1])


def test_failed_run_keeps_the_evidence(server: ServeProcess, target: Target) -> None:
    target.healthy = False
    assert server.post_hook(flux_event(revision="7.0.0"))[0] == 202
    (run,) = server.wait_for_runs(1)
    assert run["verdict"] == "failed" and run["release"] == "apps/podinfo"
    assert "web/health" in run["message"]
    report = get_json(f"{server.url}/api/v1/runs/{run['id']}")["report"]
    health = next(r for r in report["results"] if r["name"] == "health")
    assert health["status"] == "failed"
    assert {"subject": "status", "expected": "200", "actual": "503"} in health["evidence"]


# --- crashes and shutdown ---------------------------------------------------------------------


def test_killed_after_202_the_queued_run_still_happens(workdir: Path, store_url: str) -> None:
    # First life: HTTP only (no worker slot), so the job is certainly still queued when killed.
    first = ServeProcess.for_store(workdir, store_url, worker=", concurrency: 0").start()
    assert first.post_hook(flux_event(revision="8.0.0"))[0] == 202
    first.kill()
    second = ServeProcess.for_store(workdir, store_url).start()
    try:
        (run,) = second.wait_for_runs(1)
        assert run["revision"] == "8.0.0" and run["verdict"] == "passed"
    finally:
        second.stop()


def test_killed_mid_run_the_job_is_taken_over_after_its_lease(
    workdir: Path, store_url: str, target: Target
) -> None:
    rules = "  - match: {namespace: apps}\n    suites: [slow]\n"
    target.slow = 30
    first = ServeProcess.for_store(workdir, store_url, rules=rules).start()
    assert first.post_hook(flux_event(revision="8.1.0"))[0] == 202
    deadline = time.monotonic() + 15
    while not target.hits.get("/slow") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert target.hits.get("/slow") == 1  # the run is in progress
    first.kill()
    target.slow = 0
    second = ServeProcess.for_store(workdir, store_url, rules=rules).start()
    try:
        started = time.monotonic()
        (run,) = second.wait_for_runs(1, timeout=30)
        assert run["verdict"] == "passed" and run["revision"] == "8.1.0"
        assert time.monotonic() - started < 10  # lease 3s, poll 200ms
        job = get_json(f"{second.url}/api/v1/jobs/{run['jobId']}")
        assert job["attempts"] == 2
    finally:
        second.stop()


def test_sigterm_requeues_a_running_job_for_the_next_replica(
    workdir: Path, store_url: str, target: Target
) -> None:
    rules = "  - match: {namespace: apps}\n    suites: [slow]\n"
    target.slow = 30
    first = ServeProcess.for_store(workdir, store_url, rules=rules).start()
    assert first.post_hook(flux_event(revision="8.2.0"))[0] == 202
    deadline = time.monotonic() + 15
    while not target.hits.get("/slow") and time.monotonic() < deadline:
        time.sleep(0.05)
    t0 = time.monotonic()
    # uvicorn re-raises the SIGTERM it handled once shutdown is complete: -15 is a clean exit.
    assert first.stop() in (0, -15)
    assert time.monotonic() - t0 < 15  # grace 2s, then the run is cancelled and handed back
    assert "re-queued" in first.log and "Application shutdown complete" in first.log
    target.slow = 0
    second = ServeProcess.for_store(workdir, store_url, rules=rules).start()
    try:
        started = time.monotonic()
        (run,) = second.wait_for_runs(1)
        assert time.monotonic() - started < 5  # no lease to wait out: it was handed back
        job = get_json(f"{second.url}/api/v1/jobs/{run['jobId']}")
        assert job["attempts"] == 1  # an orderly hand-back is not a failed attempt
    finally:
        second.stop()


# --- API --------------------------------------------------------------------------------------


def test_manual_runs_need_the_token_and_always_run(server: ServeProcess) -> None:
    body = json.dumps({"release": "apps/podinfo", "revision": "6.6.1"}).encode()
    url = server.url + "/api/v1/runs"
    assert request("POST", url, body, {"Content-Type": "application/json"})[0] == 401
    assert request("POST", url, body, auth("wrong"))[0] == 401
    assert request("POST", url, b'{"release": "not a release"}', auth())[0] == 422
    ids = []
    for _ in range(2):  # a manual request is a re-run: never deduplicated
        status, _, raw = request("POST", url, body, auth())
        assert status == 202
        ids.append(json.loads(raw)["jobId"])
    assert len(set(ids)) == 2
    runs = server.wait_for_runs(2)
    assert {r["trigger"] for r in runs} == {"manual"}
    job = get_json(f"{server.url}/api/v1/jobs/{ids[0]}")
    assert job["state"] == "done" and job["runId"] in {r["id"] for r in runs}


def test_run_downloads_as_json_report_and_junit(server: ServeProcess, target: Target) -> None:
    import jsonschema

    from smokegate.report.jsonreport import load_schema

    target.healthy = False
    server.post_hook(flux_event(revision="6.7.0"))
    (run,) = server.wait_for_runs(1)
    status, headers, raw = request("GET", f"{server.url}/api/v1/runs/{run['id']}?format=json")
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert "attachment" in headers["content-disposition"]
    report = json.loads(raw)
    jsonschema.validate(report, load_schema())
    assert report["runId"] == run["id"] and not report["ok"]
    status, headers, raw = request("GET", f"{server.url}/api/v1/runs/{run['id']}?format=junit")
    assert status == 200 and headers["content-type"].startswith("application/xml")
    suites = ET.fromstring(raw)
    assert suites.get("failures") == "2" and suites.find(".//failure") is not None
    assert request("GET", f"{server.url}/api/v1/runs/{run['id']}?format=pdf")[0] == 400
    assert request("GET", f"{server.url}/api/v1/runs/nope")[0] == 404
    releases = get_json(f"{server.url}/api/v1/releases")["items"]
    assert [(r["release"], r["revision"], r["verdict"]) for r in releases] == [
        ("apps/podinfo", "6.7.0", "failed")
    ]
    assert get_json(f"{server.url}/api/v1/runs?release=apps/other")["items"] == []


def test_trigger_command_asks_the_server_and_waits_for_the_verdict(server: ServeProcess) -> None:
    env_cmd = [sys.executable, "-m", "smokegate", "trigger"]
    env = {"SMOKEGATE_API_TOKEN": TOKEN, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [*env_cmd, "hr/podinfo", "-n", "apps", "--server", server.url, "--wait", "--timeout", "30"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "queued job" in done.stdout and "passed: 2 passed, 0 failed" in done.stdout
    denied = subprocess.run(
        [*env_cmd, "apps/podinfo", "--server", server.url],
        capture_output=True,
        text=True,
        env={**env, "SMOKEGATE_API_TOKEN": "nope"},
        timeout=60,
    )
    assert denied.returncode == 4 and "HTTP 401" in denied.stderr
    no_ns = subprocess.run(
        [*env_cmd, "hr/podinfo", "--server", server.url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert no_ns.returncode == 2 and "namespace" in no_ns.stderr


# --- gates ------------------------------------------------------------------------------------


def test_flagger_gate_answers_200_on_pass_and_412_on_fail(
    server: ServeProcess, target: Target
) -> None:
    def call(checksum: str, namespace: str = "apps") -> tuple[int, str]:
        payload = {
            "name": "podinfo",
            "namespace": namespace,
            "phase": "Progressing",
            "checksum": checksum,
            "metadata": {"type": "pre-rollout"},
        }
        status, _, raw = request(
            "POST",
            server.url + "/gates/flagger",
            json.dumps(payload).encode(),
            {"Content-Type": "application/json"},
        )
        return status, raw.decode()

    status, text = call("85d557f47b")
    assert status == 200 and text.startswith("smokegate passed: apps/podinfo 85d557f47b"), text
    assert call("85d557f47b")[0] == 200  # looked up, not run again
    target.healthy = False
    status, text = call("99aa00bb11")
    assert status == 412 and "failed" in text and "web/health" in text
    status, text = call("whatever", namespace="unmapped")
    assert status == 404 and "no suites map to unmapped/podinfo" in text
    runs = server.runs("apps/podinfo")
    assert sorted(r["revision"] for r in runs) == ["85d557f47b", "99aa00bb11"]
    assert request("POST", server.url + "/gates/flagger", b"{}", {})[0] == 400


def test_flagger_gate_answers_503_while_the_run_is_pending(
    workdir: Path, store_url: str, target: Target
) -> None:
    target.slow = 4
    rules = "  - match: {namespace: apps}\n    suites: [slow]\n"
    proc = ServeProcess.for_store(
        workdir, store_url, rules=rules, extra="gates: {flaggerWait: 500ms}\n"
    ).start()
    try:
        payload = json.dumps({"name": "podinfo", "namespace": "apps", "checksum": "c1"}).encode()
        status, headers, _ = request("POST", proc.url + "/gates/flagger", payload)
        assert status == 503 and headers["retry-after"] == "5"
        proc.wait_for_runs(1)
        assert request("POST", proc.url + "/gates/flagger", payload)[0] == 200
    finally:
        proc.stop()


def test_argo_web_metric(server: ServeProcess, target: Target) -> None:
    url = server.url + "/gates/argo?release=apps/podinfo"
    status, _, raw = request("GET", url)
    assert status == 404 and "no run" in json.loads(raw)["error"]
    assert request("GET", server.url + "/gates/argo")[0] == 400
    server.post_hook(flux_event(revision="1.0.0"))
    server.wait_for_runs(1)
    body = get_json(url)
    assert body["passed"] is True and body["verdict"] == "passed" and body["revision"] == "1.0.0"
    assert body["counts"]["passed"] == 2 and body["runId"]
    target.healthy = False
    server.post_hook(flux_event(revision="1.0.1"))
    server.wait_for_runs(2)
    body = get_json(url)
    assert body["passed"] is False and body["revision"] == "1.0.1" and body["counts"]["failed"] == 2
    assert get_json(url + "&revision=1.0.0")["passed"] is True
    assert request("GET", url + "&revision=0.0.1")[0] == 404


# --- metrics, OpenAPI, probes -----------------------------------------------------------------


def test_metrics_describe_the_latest_run_with_bounded_labels(
    server: ServeProcess, target: Target
) -> None:
    server.post_hook(flux_event(revision="2.0.0"))
    server.post_hook(flux_event(name="other", revision="3.0.0"))
    server.wait_for_runs(2)
    target.healthy = False
    server.post_hook(flux_event(name="other", revision="3.0.1"))
    server.wait_for_runs(3)
    time.sleep(5.1)  # the per-release gauges are cached for 5s
    status, headers, raw = request("GET", server.url + "/metrics")
    text = raw.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert 'smokegate_check_success{check="health",release="apps/podinfo",suite="web"} 1.0' in text
    assert 'smokegate_check_success{check="health",release="apps/other",suite="web"} 0.0' in text
    assert re.search(
        r'smokegate_check_duration_seconds\{check="health",release="apps/podinfo",'
        r'suite="web"\} \d',
        text,
    )
    assert 'smokegate_release_verdict{release="apps/podinfo"} 1.0' in text
    assert 'smokegate_release_verdict{release="apps/other"} 0.0' in text
    assert 'smokegate_runs_total{outcome="passed",trigger="webhook"} 2.0' in text
    assert 'smokegate_runs_total{outcome="failed",trigger="webhook"} 1.0' in text
    assert 'smokegate_queue_depth{state="queued"} 0.0' in text
    assert "revision" not in "".join(x for x in text.splitlines() if not x.startswith("#"))


def test_openapi_documents_every_route_and_probes_answer(server: ServeProcess) -> None:
    from smokegate.server.app import routes

    doc = get_json(server.url + "/openapi.json")
    assert doc["openapi"].startswith("3.")
    for route in routes():
        if route.path.startswith(("/releases/", "/runs/")) or route.path == "/":
            continue  # the dashboard's HTML pages
        for method in route.methods or ():
            if method != "HEAD":
                assert method.lower() in doc["paths"][route.path], (method, route.path)
    assert request("GET", server.url + "/healthz")[:1] == (200,)
    assert request("GET", server.url + "/readyz")[:1] == (200,)


def test_server_imports_stay_out_of_the_cli_path() -> None:
    code = (
        "import sys, smokegate.cli, smokegate.cli.serve; "
        "heavy = {'starlette', 'uvicorn', 'sqlalchemy', 'prometheus_client', 'aiosqlite'}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_check_flag_validates_and_store_errors_are_one_line(workdir: Path) -> None:
    bad = ServeProcess.for_store(workdir, "sqlite:////nonexistent-dir/x/history.db")
    cmd = [sys.executable, "-m", "smokegate", "serve", "--config", str(bad.config_path)]
    env = {
        "SG_TEST_WEBHOOK_SECRET": "s",
        "SG_TEST_API_TOKEN": "t",
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO / "src"),
    }
    ok = subprocess.run([*cmd, "--check"], capture_output=True, text=True, env=env, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("ok: listen 127.0.0.1:"), ok.stderr
    failed = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert failed.returncode == 4
    assert failed.stderr == (
        "smokegate: cannot open the store sqlite:////nonexistent-dir/x/history.db: "
        "directory /nonexistent-dir/x does not exist\n"
    )
    env.pop("SG_TEST_API_TOKEN")
    missing = subprocess.run([*cmd, "--check"], capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode == 2 and "$SG_TEST_API_TOKEN is not set" in missing.stderr


def test_store_down_means_503_not_202(workdir: Path) -> None:
    """Never answer 202 for an event that is not durably queued: Flux retries on 5xx."""
    from tests.server.conftest import fresh_pg_database
    from tests.servers.postgres import PostgresServer

    pg = PostgresServer().start()
    proc = ServeProcess.for_store(workdir, fresh_pg_database(pg)).start()
    try:
        assert proc.post_hook(flux_event(revision="1.0.0"))[0] == 202
        pg.stop()
        status, answer = proc.post_hook(flux_event(revision="1.0.1"))
        assert status == 503 and "unavailable" in answer["error"]
        assert request("GET", proc.url + "/readyz")[0] == 503
        assert request("GET", proc.url + "/healthz")[0] == 200
    finally:
        proc.stop()
        pg.stop()


def test_kubernetes_configuration_errors_are_one_line(workdir: Path) -> None:
    proc = ServeProcess.for_store(
        workdir,
        f"sqlite:///{workdir / 'h.db'}",
        extra="kubernetes: {enabled: true, kubeconfig: /nonexistent/kubeconfig}\n",
    )
    env = {"SG_TEST_WEBHOOK_SECRET": "s", "SG_TEST_API_TOKEN": "t", "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(REPO / "src")}  # fmt: skip
    cmd = [sys.executable, "-m", "smokegate", "serve", "--config", str(proc.config_path)]
    failed = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert failed.returncode == 2
    assert failed.stderr.startswith("smokegate: kubeconfig /nonexistent/kubeconfig:"), failed.stderr
    assert "Traceback" not in failed.stderr
