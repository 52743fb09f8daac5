"""Fixtures for tests against a real kube-apiserver (see kubeenv.py).

- ``kube_bin_dir`` (session): the binaries' dir; runs scripts/kube/ensure.sh once if any is missing.
- ``kube_env`` (session): a started KubeEnv with the HelmRelease CRD applied; stopped at the end.
- ``kube_namespace`` (function): a fresh namespace name, deleted afterwards.
"""

from __future__ import annotations

import re
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# kubeenv.py sits next to this file; make it importable whatever pytest's import mode is.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from kubeenv import KubeEnv, ensure_binaries


@pytest.fixture(scope="session")
def kube_bin_dir() -> Path:
    env = KubeEnv()
    if env.missing_binaries():
        ensure_binaries(
            env.bin_dir
        )  # slow once (builds kube-apiserver), raises KubeEnvError on failure
    env.check_binaries()
    return env.bin_dir


@pytest.fixture(scope="session")
def kube_env(kube_bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeEnv]:
    env = KubeEnv(kube_bin_dir)
    env.start(tmp_path_factory.mktemp("kube-env"))
    try:
        env.apply_crd()
        yield env
    finally:
        env.stop()


@pytest.fixture
def kube_namespace(kube_env: KubeEnv, request: pytest.FixtureRequest) -> Iterator[str]:
    # Readable (test name) and unique (random suffix); a DNS label of at most 63 characters.
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:50].strip("-") or "t"
    name = f"{base}-{secrets.token_hex(3)}"
    kube_env.kubectl("create", "namespace", name)
    yield name
    # No namespace controller runs, so the namespace stays `Terminating` with its objects until the
    # env stops; --wait=false keeps teardown from hanging on that. Names never repeat, so no clash.
    kube_env.kubectl("delete", "namespace", name, "--wait=false")
