"""Fixtures for ``run --in-cluster`` against the real apiserver (incluster_kubelet.py says what
the test plays: job controller, scheduler, kubelet running ``smokegate``).

- ``runner_node`` (session): scripts/kube/stand-in-kubelet.py + a Node pointing at it;
- ``actors`` (function): ``RunnerActors`` for ``kube_namespace``;
- ``cluster`` (function): the namespace with its ServiceAccounts, and the helpers of a scenario
  (``incluster_support.Cluster``).
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for where in (HERE, HERE.parent / "helmtest"):
    if str(where) not in sys.path:
        sys.path.insert(0, str(where))

from helmtest_cluster import Api, StandInNode  # noqa: E402
from incluster_kubelet import RunnerActors  # noqa: E402
from incluster_support import Cluster  # noqa: E402
from kubeenv import REPO_ROOT, KubeEnv  # noqa: E402


@pytest.fixture(scope="session")
def runner_api(kube_env: KubeEnv) -> Api:
    return Api(kube_env.server, kube_env.token)


@pytest.fixture(scope="session")
def runner_node(runner_api: Api, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandInNode]:
    node = StandInNode(
        runner_api,
        REPO_ROOT,
        tmp_path_factory.mktemp("runner-node"),
        f"incluster-{secrets.token_hex(3)}",
    )
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def actors(
    runner_api: Api, runner_node: StandInNode, kube_namespace: str
) -> Iterator[RunnerActors]:
    a = RunnerActors(runner_api, kube_namespace, runner_node.name, runner_node.logs_dir).start()
    try:
        yield a
    finally:
        a.stop()
    assert not a.errors, a.errors


@pytest.fixture
def cluster(
    kube_env: KubeEnv, runner_api: Api, actors: RunnerActors, kube_namespace: str, tmp_path: Path
) -> Cluster:
    return Cluster(kube_namespace, kube_env, runner_api, actors, tmp_path).setup()
