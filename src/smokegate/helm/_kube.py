"""Listing objects by label with the project's ``KubeClient``.

``smokegate.kube.client.KubeClient`` has ``get`` but (yet) no ``list``; until it does, list
through the lightkube client it wraps. Once ``KubeClient.list`` exists it is used as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from smokegate.kube.client import ResourceType, api_error

Selector = Sequence[tuple[str, Any]]
"""Label requirements as lightkube takes them: ``[(key, "value" | operator), ...]``."""


async def list_objects(
    client: Any, rt: ResourceType, namespace: str, labels: Selector | None = None
) -> list[dict[str, Any]]:
    """Every ``rt`` in ``namespace`` matching ``labels``, as plain dicts. Raises ``KubeError``."""
    own = getattr(client, "list", None)
    if own is not None:
        return list(await own(rt, namespace, labels=list(labels) if labels else None))
    from smokegate.kube.client import _plain

    where = f"{rt.plural} in namespace {namespace}" if rt.namespaced else rt.plural
    try:
        return [
            _plain(obj)
            async for obj in client.api.list(
                client._class(rt),
                namespace=namespace if rt.namespaced else None,
                labels=list(labels) if labels else None,
            )
        ]
    except Exception as exc:
        raise api_error(exc, f"listing {where}") from None
