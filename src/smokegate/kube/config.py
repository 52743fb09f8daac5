"""Connecting to Kubernetes the way kubectl does (``load_config``), in kubectl's order:

1. ``--kubeconfig FILE``;
2. ``$KUBECONFIG`` (a ``:``-separated list, merged like kubectl: the first file to define a
   cluster/context/user or ``current-context`` wins; missing files are skipped);
3. ``~/.kube/config``;
4. in-cluster: the pod's service account (token, CA, namespace), when running in a pod.

``--context`` picks a context; the namespace is ``-n`` or else the context's (or the service
account's) namespace, else ``default``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smokegate.core.errors import UsageError

if TYPE_CHECKING:
    from lightkube.config.kubeconfig import SingleConfig

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_KUBECONFIG = "~/.kube/config"


@dataclass(frozen=True, slots=True)
class KubeOptions:
    """What the user said about the cluster: ``--kubeconfig``, ``--context``, ``-n``."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None


_FILE_KEYS = {
    "clusters": ("cluster", ("certificate-authority",)),
    "users": ("user", ("client-certificate", "client-key", "tokenFile")),
}


def _read_kubeconfig(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise UsageError(f"kubeconfig {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"kubeconfig {path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"kubeconfig {path}: not a kubeconfig (expected a mapping)")
    # Relative file references are relative to the file they are written in; make them absolute
    # before merging files from different directories.
    for section, (inner, keys) in _FILE_KEYS.items():
        for entry in data.get(section) or []:
            body = entry.get(inner) if isinstance(entry, dict) else None
            if isinstance(body, dict):
                for key in keys:
                    value = body.get(key)
                    if isinstance(value, str) and value and not os.path.isabs(value):
                        body[key] = str(path.parent / value)
    return data


def _merge(files: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    """kubectl's merge rule: the first file that names a cluster/context/user wins."""
    merged: dict[str, Any] = {"clusters": [], "contexts": [], "users": []}
    for _, data in files:
        for section in ("clusters", "contexts", "users"):
            seen = {e.get("name") for e in merged[section]}
            for entry in data.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") not in seen:
                    merged[section].append(entry)
        if not merged.get("current-context") and data.get("current-context"):
            merged["current-context"] = data["current-context"]
    return merged


def _in_cluster_available() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.isfile(
        os.path.join(SERVICE_ACCOUNT_DIR, "token")
    )


def load_config(options: KubeOptions) -> SingleConfig:
    """The cluster, user and context to use, or a ``UsageError`` that says what is missing."""
    from lightkube import ConfigError, KubeConfig

    if options.kubeconfig:
        candidates = [Path(options.kubeconfig).expanduser()]
        explicit = True
    elif os.environ.get("KUBECONFIG"):
        candidates = [Path(p).expanduser() for p in os.environ["KUBECONFIG"].split(os.pathsep) if p]
        explicit = False
    else:
        candidates = [Path(DEFAULT_KUBECONFIG).expanduser()]
        explicit = False
    files = [(p, _read_kubeconfig(p)) for p in candidates if explicit or p.is_file()]

    if not files:
        if _in_cluster_available():
            if options.context:
                raise UsageError(
                    f"--context {options.context}: no kubeconfig, and the in-cluster "
                    "service-account configuration has no contexts"
                )
            try:
                in_cluster = KubeConfig.from_service_account(SERVICE_ACCOUNT_DIR).get()
            except (ConfigError, KeyError) as exc:
                raise UsageError(f"in-cluster configuration: {exc}") from None
            assert in_cluster is not None  # from_one() always sets the current context
            return in_cluster
        raise UsageError(
            "no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, create "
            f"{DEFAULT_KUBECONFIG}, or run inside a pod with a service account"
        )

    source = ", ".join(str(p) for p, _ in files)
    merged = _merge(files)
    try:
        config = KubeConfig.from_dict(merged, fname=files[0][0]).get(options.context)
    except ConfigError as exc:
        if options.context:
            known = ", ".join(c.get("name", "?") for c in merged["contexts"]) or "none"
            raise UsageError(
                f"context {options.context!r} not found in {source} (contexts: {known})"
            ) from None
        raise UsageError(f"kubeconfig {source}: {exc} (use --context)") from None
    except KeyError as exc:
        raise UsageError(f"kubeconfig {source}: context refers to unknown cluster {exc}") from None
    except Exception as exc:  # malformed entries: msgspec validation errors and the like
        raise UsageError(f"kubeconfig {source}: {exc}") from None
    if config is None:
        raise UsageError(f"kubeconfig {source}: no current-context (use --context)")
    if config.user is None:
        raise UsageError(
            f"kubeconfig {source}: context {config.context_name!r} has no user; "
            "smokegate needs credentials"
        )
    return config


def effective_namespace(config: SingleConfig, options: KubeOptions) -> str:
    """``-n`` if given, else the context's namespace (the service account's in a pod)."""
    return options.namespace or config.namespace
