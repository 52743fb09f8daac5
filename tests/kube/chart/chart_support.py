"""Helpers for the chart tests (deploy/chart/smokegate): the real helm v4 binary, rendered
manifests as Python objects, a rendered serve.yaml laid out on disk the way the pod sees it."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CHART = REPO / "deploy" / "chart" / "smokegate"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
RULES = REPO / "deploy" / "alerts" / "smokegate.rules.yaml"

for extra in (HERE.parent, HERE.parent / "helmtest"):  # kubeenv, helmtest_cluster
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


@dataclass
class HelmCli:
    """The real helm, with its own home (no user config leaks in) and a kubeconfig."""

    path: Path
    home: Path
    kubeconfig: Path | None = None

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        env.pop("KUBECONFIG", None)
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        r = subprocess.run(
            [str(self.path), *args], capture_output=True, text=True, env=env, timeout=timeout
        )
        if check and r.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} exited {r.returncode}:\n{r.stderr}")
        return r


class Rendered:
    """The documents of `helm template` (or of a release's manifest)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.docs = [d for d in yaml.safe_load_all(text) if d]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d.get("kind") == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [d for d in self.all(kind) if name is None or d["metadata"]["name"] == name]
        assert len(found) == 1, f"{len(found)} {kind} named {name!r}: {self.kinds()}"
        return found[0]

    def kinds(self) -> list[str]:
        return sorted(f"{d['kind']}/{d['metadata']['name']}" for d in self.docs)

    @property
    def deployment(self) -> dict[str, Any]:
        return self.one("Deployment")

    @property
    def container(self) -> dict[str, Any]:
        return self.deployment["spec"]["template"]["spec"]["containers"][0]

    def serve_config(self) -> dict[str, Any]:
        cm = [c for c in self.all("ConfigMap") if c["metadata"]["name"].endswith("-config")]
        assert len(cm) == 1, self.kinds()
        return yaml.safe_load(cm[0]["data"]["serve.yaml"])

    def serve_config_text(self) -> str:
        (cm,) = [c for c in self.all("ConfigMap") if c["metadata"]["name"].endswith("-config")]
        return cm["data"]["serve.yaml"]

    def test_pod(self) -> dict[str, Any]:
        (pod,) = [
            p
            for p in self.all("Pod")
            if (p["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"
        ]
        return pod


def set_args(values: Mapping[str, Any] | None) -> list[str]:
    """``--set-json`` for each value (types kept: numbers stay numbers, lists stay lists)."""
    import json

    out: list[str] = []
    for key, value in (values or {}).items():
        out += ["--set-json", f"{key}={json.dumps(value)}"]
    return out


def values_args(files: Iterable[Path | str] = (), values: Mapping[str, Any] | None = None) -> list:
    args: list[str] = []
    for f in files:
        args += ["-f", str(f)]
    return args + set_args(values)


def template(
    helm: HelmCli,
    files: Iterable[Path | str] = (),
    values: Mapping[str, Any] | None = None,
    *,
    release: str = "sg",
    namespace: str = "smokegate",
    extra: Iterable[str] = (),
) -> Rendered:
    r = helm("template", release, str(CHART), "-n", namespace, *values_args(files, values), *extra)
    return Rendered(r.stdout)


def template_error(
    helm: HelmCli, files: Iterable[Path | str] = (), values: Mapping[str, Any] | None = None
) -> str:
    r = helm(
        "template", "sg", str(CHART), "-n", "smokegate", *values_args(files, values), check=False
    )
    assert r.returncode != 0, f"rendered although it should not:\n{r.stdout[:2000]}"
    return r.stderr


def ci(name: str) -> Path:
    path = CHART / "ci" / f"{name}-values.yaml"
    assert path.is_file(), path
    return path


# --- the pod's filesystem, laid out locally ---------------------------------------------------


def write_configmap_volume(directory: Path, data: Mapping[str, str]) -> None:
    """A ConfigMap volume as the kubelet writes it: the files in a timestamped hidden directory,
    ``..data`` pointing at it, and one symlink per key through ``..data``."""
    stamp = directory / "..2026_01_01_00_00_00.000000001"
    stamp.mkdir(parents=True)
    for key, text in data.items():
        (stamp / key).write_text(text)
    (directory / "..data").symlink_to(stamp.name)
    for key in data:
        (directory / key).symlink_to(f"..data/{key}")


def secret_env(
    container: Mapping[str, Any], secrets: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """The container's ``env`` as the kubelet resolves it: values, and ``secretKeyRef`` read from
    ``secrets`` (Secret name -> data, already decoded). A missing Secret or key is an error, as
    it is for the kubelet (CreateContainerConfigError)."""
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = (item.get("valueFrom") or {}).get("secretKeyRef")
        if ref is None:
            continue  # fieldRef etc.: nothing the tests use
        data = secrets.get(ref["name"])
        assert data is not None, f"env {item['name']}: Secret {ref['name']} not found"
        assert ref["key"] in data, f"env {item['name']}: key {ref['key']} not in {ref['name']}"
        env[item["name"]] = data[ref["key"]]
    return env


def decode_secret(secret: Mapping[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def remap(text: str, mounts: Mapping[str, Path]) -> str:
    """Absolute pod paths (mount points) -> their local directories: one pass, longest first,
    whole path components only (so a replaced path is never replaced again)."""
    import re

    alternatives = "|".join(re.escape(p) for p in sorted(mounts, key=len, reverse=True))
    # Not inside another path (".../pod/etc/…"), but after sqlite:/// (sqlite:////var/…).
    pattern = re.compile(rf"(?<![\w.-])(?<![\w.-]/)({alternatives})(?=/|[^\w.-]|$)")
    return pattern.sub(lambda m: str(mounts[m.group(1)]), text)


@dataclass
class PodLayout:
    """A Deployment's container laid out locally as the kubelet would run it (see lay_out_pod)."""

    args: list[str]
    env: dict[str, str]
    config: Path
    mounts: dict[str, Path]


def lay_out_pod(
    deployment: Mapping[str, Any],
    configmaps: Mapping[str, Mapping[str, str]],
    secrets: Mapping[str, Mapping[str, str]],
    root: Path,
) -> PodLayout:
    """Play the kubelet for the smokegate container of ``deployment``: write each ConfigMap
    volume (from ``configmaps``: name -> data) as the kubelet does, make emptyDir/PVC volumes
    empty directories, resolve env from ``secrets``, and map the pod's absolute paths (args and
    serve.yaml) to those local directories. No chroot here: the paths are rewritten instead."""
    spec = deployment["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == "smokegate"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts: dict[str, Path] = {}
    for m in container["volumeMounts"]:
        local = root / m["mountPath"].lstrip("/")
        mounts[m["mountPath"]] = local
        source = volumes[m["name"]]
        if "configMap" in source:
            name = source["configMap"]["name"]
            assert name in configmaps, f"volume {m['name']}: ConfigMap {name} not found"
            write_configmap_volume(local, configmaps[name])
        else:
            local.mkdir(parents=True, exist_ok=True)
    # The directories the runtime creates above the mount points (/etc/smokegate/suites).
    for pod_path in list(mounts):
        parent = Path(pod_path).parent
        if len(parent.parts) > 2:
            mounts.setdefault(str(parent), root / str(parent).lstrip("/"))
            mounts[str(parent)].mkdir(parents=True, exist_ok=True)
    args = [remap(a, mounts) for a in container.get("args") or []]
    config = Path(args[args.index("--config") + 1])
    local_config = root / "serve.local.yaml"
    local_config.write_text(remap(config.read_text(), mounts))
    args[args.index("--config") + 1] = str(local_config)
    return PodLayout(args, secret_env(container, secrets), local_config, mounts)
