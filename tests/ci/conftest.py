"""Fixtures for the CI templates' tests: a real kube-apiserver with Flux's upstream CRDs.

- ``kube_env`` (session): a started KubeEnv (tests/kube/kubeenv.py) with every CRD in
  tests/kube/crds/ applied: the upstream HelmRelease, OCIRepository, Kustomization, Provider and
  Alert CRDs, and Argo's minimal WorkflowTemplate CRD (sources in tests/kube/crds/README.md). It
  is its own apiserver: tests/kube's uses smokegate's minimal HelmRelease CRD, and both cannot
  be installed at once.
- ``kube_namespace`` (function): a fresh namespace, deleted afterwards.
- ``kubeconfig``: the admin kubeconfig's path (from tests/kube/fixtures_flux.py).
- ``nginx`` (module): a real nginx, the target of tests/ci/scenario.py's suite.
- ``release``: HelmRelease podinfo in ``kube_namespace``, Ready at 6.6.2 as helm-controller
  leaves it (status written by the test), and the Secret ``api`` a check reads: (namespace,
  the Secret's value).
- ``workspace``: a checkout holding the suite at smoke/podinfo.yaml.
"""

from __future__ import annotations

import re
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci.scenario import SUITE
from tests.servers.nginx import NginxServer

KUBE_TESTS = Path(__file__).resolve().parents[1] / "kube"
if str(KUBE_TESTS) not in sys.path:
    sys.path.insert(0, str(KUBE_TESTS))

from fixtures_flux import (  # noqa: E402
    apply,
    helmrelease,
    kubeconfig_fixture,  # noqa: F401  (a fixture, used by name)
    patch_status,
    status_ready,
)
from kubeenv import KubeEnv, ensure_binaries  # noqa: E402

CRD_DIR = KUBE_TESTS / "crds"


def upstream_crds() -> list[Path]:
    return sorted(CRD_DIR.glob("*.yaml"))


@pytest.fixture(scope="session")
def kube_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeEnv]:
    env = KubeEnv()
    if env.missing_binaries():
        ensure_binaries(env.bin_dir)  # slow once (builds kube-apiserver); raises on failure
    env.start(tmp_path_factory.mktemp("kube-env-flux"))
    try:
        for crd in upstream_crds():
            # --validate=false: kubectl's client-side schema check knows the v1.20 CRD schema,
            # which has no x-kubernetes-validations (CEL); the apiserver then drops those keys.
            # tests/ci/test_gitops.py proves they are dropped and evaluates the rules itself.
            env.kubectl("apply", "--validate=false", "-f", str(crd))
        env.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        yield env
    finally:
        env.stop()


@pytest.fixture
def kube_namespace(kube_env: KubeEnv, request: pytest.FixtureRequest) -> Iterator[str]:
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:50].strip("-") or "t"
    name = f"{base}-{secrets.token_hex(3)}"
    kube_env.kubectl("create", "namespace", name)
    yield name
    # No namespace controller runs: --wait=false keeps teardown from hanging on `Terminating`.
    kube_env.kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture(scope="module")
def nginx() -> Iterator[NginxServer]:
    with NginxServer() as server:
        yield server


@pytest.fixture
def release(kube_env: KubeEnv, kube_namespace: str) -> Iterator[tuple[str, str]]:
    ns = kube_namespace
    hr = apply(kube_env, helmrelease("podinfo", ns))
    assert hr["metadata"]["generation"] == 1
    patch_status(kube_env, "hr", "podinfo", ns, status_ready("podinfo", ns, 1, "6.6.2"))
    token = "tok-" + secrets.token_hex(12)
    kube_env.kubectl(
        "create", "secret", "generic", "api", "-n", ns, f"--from-literal=token={token}"
    )
    yield ns, token


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    (ws / "smoke").mkdir(parents=True)
    (ws / "smoke" / "podinfo.yaml").write_text(SUITE)
    return ws
