"""Fixtures of the pre-merge tests: real helm v4 and kubectl from the kube test env (no
network: charts come from the repository or a --chart-dir), and the GitOps repository of
``gitops.py`` built once per session with real git."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.premerge import gitops


@pytest.fixture(scope="session")
def tools_bin() -> Path:
    return gitops.ensure_tools()


@pytest.fixture(autouse=True)
def _helm_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # helm keeps repository config and caches under $HOME: give the tests their own, and a
    # chart pull cache of their own too.
    home = tmp_path_factory.mktemp("helm-home")
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        monkeypatch.setenv(var, str(home / var.lower()))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.setattr("smokegate.premerge.charts.CACHE", home / "charts")


@pytest.fixture(scope="session")
def gitops_repo(tools_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    work = tmp_path_factory.mktemp("gitops")
    commits = gitops.build_repo(work / "repo", work / "work")
    return {"repo": work / "repo", "chart_dir": work / "work" / "chart-dir", **commits}


def checkout(repo: Path, commit: str, dest: Path) -> Path:
    """A worktree of ``commit`` at ``dest`` (the shared repository is never switched)."""
    subprocess.run(
        ["git", "-C", str(repo), "worktree", "add", "--detach", "-q", str(dest), commit],
        check=True,
        capture_output=True,
        env={**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null"},
    )
    return dest
