"""The release flow as a library call (``app.release.run_release``), with an observer and a
notifier of the test's own: the phases in order, the verdict every notifier gets built from
the redacted run, and no report back without a verdict or without a HelmRelease.

The cluster is the real test apiserver (the test playing helm-controller: status patched
through the status subresource); the checks call a real HTTP server on loopback. The notifier
is not a stand-in for a server: it is a third implementation of the ``Notifier`` protocol,
which is the point.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_flux import apply, helmrelease, patch_status, status_ready
from kubeenv import KubeEnv
from tests.server.support import Target

SUITE = """\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {{name: s}}
spec:
  checks:
    - name: ok
      http: {{url: "{url}/health"}}
    - name: login-${{secret:login/password}}
      http: {{url: "{url}/health", expect: {{status: 418}}}}
"""


class Collecting:
    """A ``Notifier``: keeps the verdicts it was given."""

    name = "collect"

    def __init__(self) -> None:
        self.verdicts: list[Any] = []

    async def notify(self, verdict: Any) -> Any:
        from smokegate.app.notify import Delivery

        self.verdicts.append(verdict)
        return Delivery(self.name, True, "kept it", "kept")


class Recording:
    """A ``ReleaseObserver`` that writes down what it saw."""

    def __init__(self) -> None:
        self.phases: list[str] = []
        self.progress_lines: list[str] = []
        self.deliveries: list[Any] = []
        self.finished_with: Any = None

    def phase(self, name: str) -> None:
        self.phases.append(name)

    def progress(self, message: str) -> None:
        self.progress_lines.append(message)

    def discovered(self, discovery: Any) -> None:
        pass

    def helm_tests(self, results: list[Any]) -> None:
        pass

    def planned(self, plan: Any, helm_tests: list[Any]) -> bool:
        return True

    def run_observer(self, plan: Any) -> Any:
        return None

    def finished(self, run: Any, plan: Any) -> list[str]:
        self.finished_with = run
        return []

    def reported(self, delivery: Any) -> None:
        self.deliveries.append(delivery)


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


def _parsed(tmp_path: Path, url: str) -> list[Any]:
    from smokegate.suite.loader import parse_suites

    (tmp_path / "s.yaml").write_text(SUITE.format(url=url))
    return parse_suites([str(tmp_path / "s.yaml")])


def test_the_flow_reports_a_redacted_verdict_to_every_notifier(
    kube_env: KubeEnv, kube_namespace: str, tmp_path: Path, target: Target
) -> None:
    from smokegate.app.release import KubeCluster, ReleaseRequest, SuiteChoice, run_release
    from smokegate.kube.client import KubeOptions, load_config

    ns = kube_namespace
    kube_env.kubectl(
        "create", "secret", "generic", "login", "-n", ns, "--from-literal=password=hunter22"
    )
    apply(kube_env, helmrelease("web", ns))
    patch_status(kube_env, "hr", "web", ns, status_ready("web", ns, 1, "1.2.3", version=1))
    config = load_config(KubeOptions(kubeconfig=str(kube_env.kubeconfig)))
    first, second = Collecting(), Collecting()
    observer = Recording()
    request = ReleaseRequest(
        namespace=ns,
        name="web",
        suites=SuiteChoice(_parsed(tmp_path, target.url)),
        cluster=KubeCluster(config),
        wait_timeout=30,
        context={"trigger": "test"},
        notifiers=[first, second],
    )
    result = asyncio.run(run_release(request, observer))
    assert result.code == 1
    assert observer.phases == ["wait", "suites", "secrets", "plan", "run", "report"]
    assert any("is ready" in line for line in observer.progress_lines)
    assert result.run is observer.finished_with  # the observer renders the redacted run
    assert [r.id for r in result.run.results] == ["s/ok", "s/login-***"]
    assert result.run.context["trigger"] == "test"
    assert result.run.context["release"]["revision"] == "1.2.3"
    for notifier in (first, second):
        (verdict,) = notifier.verdicts
        assert verdict.outcome.failed_names == ("s/login-***",)
        assert verdict.outcome.message() == "1 passed, 1 failed: s/login-***"
        assert verdict.facts.helm_release == "web" and verdict.helmrelease["kind"] == "HelmRelease"
    assert [d.short for d in observer.deliveries] == ["kept", "kept"]
    assert result.deliveries == observer.deliveries


def test_without_a_helmrelease_or_a_cluster_nothing_is_reported(
    tmp_path: Path, target: Target
) -> None:
    """A run without Kubernetes (a schedule of a server without it): the facts given, the
    suites run, no notifier is asked (there is nothing to report on)."""
    from smokegate.app.release import ReleaseRequest, SuiteChoice, run_release
    from smokegate.flux.helmrelease import ReleaseFacts

    (tmp_path / "s.yaml").write_text(
        "apiVersion: smokegate.io/v1\nkind: Suite\nmetadata: {name: s}\nspec:\n  checks:\n"
        f'    - {{name: ok, http: {{url: "{target.url}/health?r=${{release.revision}}"}}}}\n'
    )
    from smokegate.suite.loader import parse_suites

    notifier = Collecting()
    facts = ReleaseFacts("web", "apps", "web", "apps", "9.9.9", "", "", "", None)
    request = ReleaseRequest(
        namespace="apps",
        name=None,
        suites=SuiteChoice(parse_suites([str(tmp_path / "s.yaml")])),
        facts=facts,
        notifiers=[notifier],
    )
    observer = Recording()
    result = asyncio.run(run_release(request, observer))
    assert result.code == 0 and result.helmrelease is None
    assert "/health?r=9.9.9" in target.requests
    assert observer.phases == ["suites", "plan", "run"]
    assert notifier.verdicts == [] and result.deliveries == []
