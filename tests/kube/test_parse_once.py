"""A release run parses each suite file once (issue 16): ``gate`` and a ``serve`` job each read
and parse every suite file exactly one time, Secrets and discovery included; the discovered
suite joins in memory and is parsed by nobody.

The counting hook wraps ``suite.parse.load_documents`` (the YAML parse of one file). The
cluster is the real test apiserver, the test playing helm-controller (a Helm release Secret
holding the rendered chart, the HelmRelease's status patched Ready); the suites' checks call a
real HTTP server on loopback.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_flux import apply, helmrelease, patch_status, status_ready
from kubeenv import KubeEnv
from tests.helm_records import release_secret
from tests.server.support import Target

CHART = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports: [{name: http, containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 1
            failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"""

SUITE_A = """\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {{name: a}}
spec:
  checks:
    - name: with-secret
      http:
        url: "{url}/health?release=${{release.name}}"
        headers: {{X-Token: "${{secret:api/token}}"}}
"""
SUITE_B = """\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {{name: b}}
spec:
  checks:
    - name: plain
      http: {{url: "{url}/health"}}
"""


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times each suite file was parsed."""
    from smokegate.suite import parse

    counts: Counter[str] = Counter()
    real = parse.load_documents

    def counting(text: str, file: str) -> list[object]:
        counts[file] += 1
        return real(text, file)

    monkeypatch.setattr(parse, "load_documents", counting)
    return counts


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


def _release(env: KubeEnv, ns: str) -> None:
    env.kubectl("create", "secret", "generic", "api", "-n", ns, "--from-literal=token=t0k3n")
    apply(env, helmrelease("web", ns))
    apply(env, release_secret("web", ns, 1, "deployed", CHART, chart="web", storage_namespace=ns))
    patch_status(env, "hr", "web", ns, status_ready("web", ns, 1, "1.0.0", version=1))


def _suites(directory: Path, url: str) -> list[str]:
    directory.mkdir()
    (directory / "a.yaml").write_text(SUITE_A.format(url=url))
    (directory / "b.yaml").write_text(SUITE_B.format(url=url))
    return [str(directory / "a.yaml"), str(directory / "b.yaml")]


def test_a_gate_run_parses_each_suite_file_once(
    kube_env: KubeEnv,
    kube_namespace: str,
    tmp_path: Path,
    target: Target,
    parses: Counter[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from smokegate.cli import main

    ns = kube_namespace
    _release(kube_env, ns)
    files = _suites(tmp_path / "suites", target.url)
    code = main(
        [
            "gate", f"{ns}/web", "--kubeconfig", str(kube_env.kubeconfig), "--no-event",
            str(tmp_path / "suites"), "--discover", "-k", "a/*", "-k", "b/*",
        ]
    )  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert "✓ a/with-secret" in out.out and "✓ b/plain" in out.out
    assert "/health?release=web" in target.requests  # the release's facts, after the wait
    # Each file once; the discovered suite (the readiness probe) was never parsed at all.
    assert "discovered-web/" not in out.out  # not selected: -k kept the suites' checks
    assert dict(parses) == dict.fromkeys(files, 1)


async def test_a_serve_job_parses_each_suite_file_once(
    kube_env: KubeEnv, kube_namespace: str, tmp_path: Path, target: Target, parses: Counter[str]
) -> None:
    from smokegate.server.config import parse_config
    from smokegate.server.execute import JobRunner, KubeAccess
    from smokegate.store.base import Job, JobState, Verdict

    ns = kube_namespace
    _release(kube_env, ns)
    files = _suites(tmp_path / "suites", target.url)
    config = parse_config(
        "apiVersion: smokegate.io/v1\nkind: ServerConfig\n"
        "suites: {directories: [suites]}\n"
        f"releases:\n  - {{match: {{namespace: {ns}}}, suites: [a, b], discover: true,\n"
        # The discovered check goes to loopback port 80, where nothing listens: refused at once.
        f"      resolve: ['web.{ns}.svc.cluster.local:80:127.0.0.1']}}\n"
        "kubernetes: {enabled: true, recordEvents: false, waitTimeout: 30s}\n",
        str(tmp_path / "serve.yaml"),
        check_suites=False,
    )
    runner = JobRunner(config, KubeAccess(str(kube_env.kubeconfig), None))
    job = Job(1, f"{ns}/web", "1.0.0", "webhook", "", JobState.RUNNING, time.time(), 1, {})
    outcome = await runner.run(job)
    run = outcome.run
    assert run is not None, outcome
    ids = [r["id"] for r in run.report["results"]]
    assert ids[:2] == ["a/with-secret", "b/plain"], run.report
    assert any(i.startswith("discovered-web/") for i in ids), ids  # discovery joined the run
    assert run.report["context"]["discovery"]["suite"] == "discovered-web"
    assert {r["id"]: r["status"] for r in run.report["results"]}["a/with-secret"] == "passed"
    assert run.verdict in (Verdict.PASSED, Verdict.FAILED)  # discovered checks: cluster DNS
    assert dict(parses) == dict.fromkeys(files, 1)
