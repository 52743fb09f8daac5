"""lightkube resource classes for the kinds the server reads beyond ``KubeClient``'s verbs
(listing and watching across namespaces, Leases). Built as generic (dict-shaped) classes without
lightkube's process-wide registry, like ``smokegate.kube.client.KubeClient._class`` does."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def generic_class(group: str, version: str, kind: str, plural: str) -> Any:
    from lightkube.core.resource import ApiInfo, ResourceDef
    from lightkube.generic_resource import GenericNamespacedResource

    info = ApiInfo(
        resource=ResourceDef(group, version, kind),
        plural=plural,
        # global_*: list/watch in every namespace (namespace="*", kubernetes.namespaces empty).
        verbs=["get", "list", "watch", "global_list", "global_watch", "post", "put"],
    )
    return type(kind, (GenericNamespacedResource,), {"_api_info": info})


def helmrelease_class() -> Any:
    return generic_class("helm.toolkit.fluxcd.io", "v2", "HelmRelease", "helmreleases")


def lease_class() -> Any:
    return generic_class("coordination.k8s.io", "v1", "Lease", "leases")


def configmap_class() -> Any:
    return generic_class("", "v1", "ConfigMap", "configmaps")


def plain(obj: Any) -> dict[str, Any]:
    """A lightkube object as a plain dict."""
    from smokegate.kube.client import _plain

    return _plain(obj)
