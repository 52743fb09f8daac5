"""Record a Kubernetes Event on an object, the way client-go's event recorder does, so
``kubectl describe`` and ``flux events`` show it next to Flux's own events.

A core ``v1`` Event (what ``kubectl describe`` lists) named ``<object>.<hex nanoseconds>``,
in the object's namespace, with ``source.component`` and ``reportingComponent`` set to the
reporting controller.
"""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from typing import Any

from smokegate.kube.client import EVENT, KubeClient

# The events.k8s.io API rejects a `note` over 1 kB and tools render these on one line: keep the
# core Event's message within the same bound (the failed names are also in the reports).
MAX_EVENT_MESSAGE = 1024


def involved_object(obj: dict[str, Any]) -> dict[str, Any]:
    """A ``corev1.ObjectReference`` to ``obj`` (as ``reference.GetReference`` builds it)."""
    meta = obj.get("metadata") or {}
    ref = {
        "kind": obj.get("kind", ""),
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "apiVersion": obj.get("apiVersion", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    return {k: v for k, v in ref.items() if v}


def build_event(
    obj: dict[str, Any],
    *,
    reason: str,
    message: str,
    warning: bool,
    component: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    if len(message.encode()) > MAX_EVENT_MESSAGE:
        message = message.encode()[: MAX_EVENT_MESSAGE - 3].decode(errors="ignore") + "..."
    return {
        "metadata": {
            "name": f"{meta.get('name', 'object')}.{time.time_ns():x}",
            "namespace": meta.get("namespace") or "default",
        },
        "involvedObject": involved_object(obj),
        "reason": reason,
        "message": message,
        "type": "Warning" if warning else "Normal",
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": socket.gethostname(),
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


async def record_event(
    client: KubeClient,
    obj: dict[str, Any],
    *,
    reason: str,
    message: str,
    warning: bool,
    component: str = "smokegate",
) -> dict[str, Any]:
    """Create the Event; raises ``KubeError`` (e.g. forbidden: needs ``create`` on ``events``)."""
    event = build_event(obj, reason=reason, message=message, warning=warning, component=component)
    return await client.create(EVENT, event, event["metadata"]["namespace"])
