"""Fixtures for ``smokegate helm-test`` against the real apiserver, real ``helm`` and a stand-in
kubelet (helmtest_cluster.py says what the test plays: scheduler, kubelet, job controller).

- ``stand_in_node`` (session): ``scripts/kube/stand-in-kubelet.py`` + a Node pointing at it;
- ``actors`` (function): scheduler/kubelet/job controller for ``kube_namespace``;
- ``helm`` (session): the real helm v4 binary against the test apiserver;
- ``base_chart`` (session): ``helm create myapp``; ``make_chart`` adds test hooks to a copy;
- ``ns`` (function): ``kube_namespace`` with all of the above at hand (``Namespace``).

Helpers that are not fixtures live in helmtest_support.py.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from helmtest_cluster import Api, ClusterActors, StandInNode  # noqa: E402
from helmtest_support import Helm, Namespace  # noqa: E402
from kubeenv import REPO_ROOT, KubeEnv  # noqa: E402


@pytest.fixture(scope="session")
def api(kube_env: KubeEnv) -> Api:
    return Api(kube_env.server, kube_env.token)


@pytest.fixture(scope="session")
def stand_in_node(api: Api, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandInNode]:
    node = StandInNode(
        api, REPO_ROOT, tmp_path_factory.mktemp("stand-in-node"), f"helmtest-{secrets.token_hex(3)}"
    )
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def actors(api: Api, stand_in_node: StandInNode, kube_namespace: str) -> Iterator[ClusterActors]:
    a = ClusterActors(api, kube_namespace, stand_in_node.name, stand_in_node.logs_dir).start()
    try:
        yield a
    finally:
        a.stop()
    assert not a.errors, a.errors


@pytest.fixture(scope="session")
def helm(kube_env: KubeEnv, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    assert kube_env.kubeconfig is not None
    return Helm(kube_env.helm_path, kube_env.kubeconfig, tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def base_chart(helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("charts")
    r = subprocess.run(
        [str(helm.path), "create", "myapp"], cwd=where, capture_output=True, text=True, check=True
    )
    assert "Creating myapp" in r.stdout
    return where / "myapp"


@pytest.fixture
def make_chart(base_chart: Path, tmp_path: Path) -> Callable[..., Path]:
    """A copy of ``helm create myapp`` with extra test hooks ``{file name: manifest}`` under
    templates/tests/ (``keep_default=False`` drops helm create's own test-connection)."""

    def make(hooks: dict[str, str], *, keep_default: bool = True) -> Path:
        chart = tmp_path / f"chart-{secrets.token_hex(3)}" / "myapp"
        shutil.copytree(base_chart, chart)
        tests = chart / "templates" / "tests"
        if not keep_default:
            (tests / "test-connection.yaml").unlink()
        for name, text in hooks.items():
            (tests / name).write_text(text)
        return chart

    return make


@pytest.fixture(name="kubeconfig")
def kubeconfig_fixture(kube_env: KubeEnv) -> Path:
    assert kube_env.kubeconfig is not None
    return kube_env.kubeconfig


@pytest.fixture
def ns(
    kube_env: KubeEnv,
    api: Api,
    helm: Helm,
    make_chart: Callable[..., Path],
    kube_namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
) -> Namespace:
    """The scenario's namespace. Without ``actors`` nothing runs the pods smokegate creates:
    a test that needs them to run asks for ``actors`` too."""
    return Namespace(kube_namespace, kube_env, api, helm, make_chart, kubeconfig, tmp_path)
