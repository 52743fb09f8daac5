"""What the runner pod's ``smokegate`` container is doing, read from the pod's status, and
which waiting states mean it will never start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smokegate.helmtest.status import pod_progress
from smokegate.incluster.manifests import CONTAINER

NEVER_STARTS = frozenset(
    {"InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError"}
)
"""Waiting reasons the kubelet does not recover from by itself."""
PULL_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff"})
"""Waiting reasons the kubelet retries (a registry hiccup heals): fatal once they persist."""
PULL_GRACE = 60.0


@dataclass(frozen=True, slots=True)
class ContainerNow:
    state: str
    """``waiting``, ``running``, ``terminated`` or ``unknown`` (no status yet)."""
    reason: str = ""
    message: str = ""
    exit_code: int | None = None

    @property
    def started(self) -> bool:
        return self.state in ("running", "terminated")


def container_now(pod: Mapping[str, Any] | None) -> ContainerNow:
    status = (pod or {}).get("status") or {}
    for s in status.get("containerStatuses") or []:
        if isinstance(s, Mapping) and s.get("name") == CONTAINER:
            state = s.get("state") or {}
            if "terminated" in state:
                t = state["terminated"] or {}
                return ContainerNow(
                    "terminated", t.get("reason") or "", (t.get("message") or "").strip(),
                    t.get("exitCode"),
                )  # fmt: skip
            if "running" in state:
                return ContainerNow("running")
            if "waiting" in state:
                w = state["waiting"] or {}
                return ContainerNow("waiting", w.get("reason") or "", w.get("message") or "")
    return ContainerNow("unknown")


def describe(pod: Mapping[str, Any]) -> str:
    """Where the pod stands, in words (``Pending: not scheduled: Unschedulable: …``)."""
    return pod_progress(pod)


def pod_gave_up(pod: Mapping[str, Any]) -> str | None:
    """Why a pod ended without its container ever running (evicted, rejected by the kubelet),
    or None."""
    status = pod.get("status") or {}
    if status.get("phase") == "Failed" and not container_now(pod).started:
        reason = status.get("reason") or "Failed"
        return f"pod {reason}: {str(status.get('message') or '').strip()}".rstrip(": ")
    return None
