"""Compatibility shim: helm-test's API verbs (list, delete, pod logs, replace) are
``smokegate.kube.client.KubeClient``'s own now, and helm-test uses that client directly.

``Kube(client)`` returns ``client`` unchanged, for callers written against the old wrapper.
"""

from __future__ import annotations

from smokegate.kube.client import JOB, POD, SECRET, KubeClient

__all__ = ["JOB", "POD", "SECRET", "Kube"]


def Kube(client: KubeClient) -> KubeClient:
    """``client`` itself: ``KubeClient`` has every verb helm-test needs."""
    return client
