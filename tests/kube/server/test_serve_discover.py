"""``smokegate serve`` with discovery (``discover: true`` on a release rule, or the
``smokegate.io/discover`` annotation) against the real test apiserver: the test plays
helm-controller (a Helm release Secret holding the rendered chart, the HelmRelease's status
patched Ready) and the app is a real nginx on loopback, reached through the rule's ``resolve``
entries, since the discovered checks name cluster DNS names."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_flux import apply, helmrelease, patch_status, status_ready
from kubeenv import KubeEnv
from tests.helm_records import release_secret
from tests.helpers import free_port
from tests.server.support import (
    TOKEN,
    ServeProcess,
    Target,
    config_text,
    flux_event,
    get_json,
    request,
    write_suites,
)
from tests.servers.nginx import NginxServer

from smokegate.server.config import parse_config
from smokegate.server.execute import JobRunner
from smokegate.store.base import Job, JobState, Verdict

# nginx's /healthz: 200 while the file `healthy` exists in its document root, else 503.
HEALTHZ = 'if (!-f $document_root/healthy) { return 503 "broken\\n"; } return 200 "ok\\n";'


def chart(name: str, port: int) -> str:
    """What Helm rendered: a Deployment with an httpGet readiness probe and the Service exposing
    its port (``port`` is nginx's, so one resolve entry reaches it)."""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - name: {name}
          image: nginx:1.27
          ports: [{{name: http, containerPort: {port}}}]
          readinessProbe:
            httpGet: {{path: /healthz, port: http}}
            periodSeconds: 1
            failureThreshold: 2
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: {port}, targetPort: http}}]
"""


def publish(
    env: KubeEnv,
    ns: str,
    name: str,
    *,
    port: int | None = None,
    annotations: dict[str, str] | None = None,
    revision: str = "1.0.0",
) -> None:
    """A HelmRelease Flux has installed: its release Secret (``port``: the chart above; None:
    no Secret, nothing to discover) and a Ready status at ``revision``."""
    hr = helmrelease(name, ns)
    if annotations:
        hr["metadata"]["annotations"] = annotations
    apply(env, hr)
    if port is not None:
        apply(
            env,
            release_secret(
                name, ns, 1, "deployed", chart(name, port), chart=name, storage_namespace=ns
            ),
        )
    patch_status(env, "hr", name, ns, status_ready(name, ns, 1, revision, version=1))


@pytest.fixture
def nginx() -> Iterator[NginxServer]:
    with NginxServer(locations={"= /healthz": HEALTHZ}, files={"healthy": "yes"}) as srv:
        yield srv


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


def start_serve(tmp_path: Path, env: KubeEnv, target: Target, rules: str) -> ServeProcess:
    write_suites(tmp_path / "suites", target.url)
    port = free_port()
    kube = f"kubernetes:\n  enabled: true\n  kubeconfig: {env.kubeconfig}\n  waitTimeout: 30s\n"
    text = config_text(port, f"sqlite:///{tmp_path / 'h.db'}", extra=kube, rules=rules)
    return ServeProcess(tmp_path, text, port=port).start()


def report_of(proc: ServeProcess, run: dict[str, Any]) -> dict[str, Any]:
    return get_json(f"{proc.url}/api/v1/runs/{run['id']}")["report"]


def results(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(r["id"], r["kind"], r["status"]) for r in report["results"]]


def resolve_entry(name: str, ns: str, port: int) -> str:
    return f"{name}.{ns}.svc.cluster.local:{port}:127.0.0.1"


def discovered_file(report: dict[str, Any], suite: str) -> Path:
    (path,) = [Path(s["file"]) for s in report["suites"] if s["name"] == suite]
    return path


def manual_run(proc: ServeProcess, release: str) -> None:
    body = json.dumps({"release": release}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    status, _, answer = request("POST", f"{proc.url}/api/v1/runs", body, headers)
    assert status == 202, answer


def test_discovered_checks_run_pass_then_fail(
    tmp_path: Path, kube_env: KubeEnv, kube_namespace: str, nginx: NginxServer, target: Target
) -> None:
    """A rule with ``discover: true`` and no suites: the run is the release's derived checks,
    against the real app; breaking the app's readiness endpoint fails the next run."""
    ns = kube_namespace
    publish(kube_env, ns, "web", port=nginx.port)
    rules = (
        f"  - match: {{namespace: {ns}, name: web}}\n"
        "    discover: true\n"
        f'    resolve: ["{resolve_entry("web", ns, nginx.port)}"]\n'
    )
    proc = start_serve(tmp_path, kube_env, target, rules)
    try:
        assert proc.post_hook(flux_event(name="web", namespace=ns, revision="1.0.0"))[0] == 202
        (run,) = proc.wait_for_runs(1)
        report = report_of(proc, run)
        assert run["verdict"] == "passed", report
        assert results(report) == [("discovered-web/web-readiness", "http", "passed")]
        discovery = report["context"]["discovery"]
        assert discovery["source"] == (
            f"Helm release web revision 1 (web-1.1.0; Secret {ns}/sh.helm.release.v1.web.v1)"
        )
        assert discovery["checks"] == ["web-readiness"]
        assert report["context"]["release"]["revision"] == "1.0.0"
        assert target.requests == []  # no suite of the suites directory ran
        # The run's discovered suite lived in memory only: no file was written for it.
        assert discovered_file(report, "discovered-web") == Path("<discovered-web>")

        # Break the app: the probe-derived check fails in the next run (a manual re-run).
        assert nginx.prefix is not None
        (nginx.prefix / "html" / "healthy").unlink()
        manual_run(proc, f"{ns}/web")
        runs = proc.wait_for_runs(2)
        failed = next(r for r in runs if r["id"] != run["id"])
        report = report_of(proc, failed)
        assert failed["verdict"] == "failed", report
        assert failed["trigger"] == "manual"
        assert results(report) == [("discovered-web/web-readiness", "http", "failed")]
        assert "503" in report["results"][0]["message"], report["results"][0]
        assert failed["message"] == "0 passed, 1 failed: discovered-web/web-readiness"
        assert discovered_file(report, "discovered-web") == Path("<discovered-web>")
    finally:
        proc.stop()


def test_annotation_turns_discovery_on_and_off_and_failures_are_error_runs(
    tmp_path: Path, kube_env: KubeEnv, kube_namespace: str, nginx: NginxServer, target: Target
) -> None:
    """``smokegate.io/discover`` wins over the rule's ``discover`` either way; discovered checks
    join the rule's suites; a release with nothing to discover is an error run, not a crash."""
    ns = kube_namespace
    publish(kube_env, ns, "api", port=nginx.port, annotations={"smokegate.io/discover": "true"})
    publish(kube_env, ns, "quiet", annotations={"smokegate.io/discover": "false"})
    publish(kube_env, ns, "ghost")  # no release Secret, no labelled objects
    rules = (
        f"  - match: {{namespace: {ns}, name: api}}\n"
        "    suites: [web]\n"
        f'    resolve: ["{resolve_entry("api", ns, nginx.port)}"]\n'
        f"  - match: {{namespace: {ns}, name: quiet}}\n"
        "    suites: [web]\n"
        "    discover: true\n"
        f"  - match: {{namespace: {ns}, name: ghost}}\n"
        "    discover: true\n"
    )
    proc = start_serve(tmp_path, kube_env, target, rules)
    try:
        for name in ("api", "quiet", "ghost"):
            event = flux_event(name=name, namespace=ns, revision="1.0.0")
            assert proc.post_hook(event)[0] == 202
        proc.wait_for_runs(3)
        (api,) = proc.runs(f"{ns}/api")
        report = report_of(proc, api)
        assert api["verdict"] == "passed", report
        assert results(report) == [
            ("web/health", "http", "passed"),
            ("web/health-again", "http", "passed"),
            ("discovered-api/api-readiness", "http", "passed"),
        ]
        (quiet,) = proc.runs(f"{ns}/quiet")
        report = report_of(proc, quiet)
        assert quiet["verdict"] == "passed", report
        assert [r[0] for r in results(report)] == ["web/health", "web/health-again"]
        assert "discovery" not in report["context"]
        (ghost,) = proc.runs(f"{ns}/ghost")
        report = report_of(proc, ghost)
        assert ghost["verdict"] == "error", report
        assert ghost["message"].startswith(
            f"discovery for {ns}/ghost failed: nothing to discover for Helm release 'ghost'"
        ), ghost["message"]
        assert results(report) == [("smokegate/setup", "setup", "error")]
        assert "Traceback" not in proc.log
    finally:
        proc.stop()


async def test_without_kubernetes_discovery_is_skipped_with_one_warning(
    tmp_path: Path, target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    """No cluster, no release Secret to read: a warning at start, then runs without discovery
    (a rule with discovery only has nothing to run)."""
    write_suites(tmp_path / "suites", target.url)
    config = parse_config(
        "apiVersion: smokegate.io/v1\nkind: ServerConfig\n"
        "suites: {directories: [suites]}\nreleases:\n"
        "  - {match: {name: only-discovered}, discover: true}\n"
        "  - {match: {namespace: apps}, suites: [web], discover: true}\n",
        str(tmp_path / "serve.yaml"),
    )

    def job(release: str) -> Job:
        return Job(1, release, "1.0.0", "webhook", "", JobState.RUNNING, time.time(), 1, {})

    with caplog.at_level(logging.WARNING, logger="smokegate.server"):
        runner = JobRunner(config)
        assert (await runner.run(job("apps/only-discovered"))).run is None
        ran = (await runner.run(job("apps/podinfo"))).run
        assert (await runner.run(job("apps/podinfo"))).run is not None
    assert ran is not None and ran.verdict is Verdict.PASSED, ran
    assert ran.counts["passed"] == 2 and "discovery" not in ran.report["context"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        "releases: discover: true needs kubernetes.enabled (discovery reads the Helm release "
        "Secret): runs of those releases skip discovery"
    ]
