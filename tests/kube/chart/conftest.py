"""Fixtures for the chart tests: the real helm v4 (from scripts/kube/ensure.sh), without and with
the test apiserver."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from chart_support import HelmCli  # noqa: E402
from kubeenv import KubeEnv  # noqa: E402


@pytest.fixture(scope="session")
def helm_cli(kube_bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> HelmCli:
    """helm for lint and template: no cluster."""
    return HelmCli(kube_bin_dir / "helm", tmp_path_factory.mktemp("chart-helm-home"))


@pytest.fixture(scope="session")
def cluster_helm(kube_env: KubeEnv, tmp_path_factory: pytest.TempPathFactory) -> HelmCli:
    """helm against the test apiserver (admin)."""
    assert kube_env.kubeconfig is not None
    return HelmCli(
        kube_env.helm_path, tmp_path_factory.mktemp("chart-helm-home"), kube_env.kubeconfig
    )
