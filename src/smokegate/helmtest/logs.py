"""Collecting a test's logs: every container of the Pod, or of each pod of the Job, read before
anything is deleted and whatever ``helm.sh/hook-delete-policy`` says."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from smokegate.helmtest.status import ContainerState, container_label, container_states
from smokegate.kube.client import POD, KubeClient, KubeError

LOG_TAIL_LINES = 5000
LOG_BYTES_PER_CONTAINER = 256 * 1024


async def pods_of(kube: KubeClient, kind: str, obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The test's pods: the Pod itself (re-read), or a Job's pods by its selector."""
    if kind == "Pod":
        # The freshest copy: container states are what the log headers show.
        meta = obj.get("metadata") or {}
        fresh = await kube.get_or_none(POD, meta["name"], meta["namespace"])
        return [fresh or obj]
    # A Job's pods, by the Job's own selector (what the job controller uses).
    meta = obj.get("metadata") or {}
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not selector:
        selector = {"job-name": meta["name"]}
    pods = await kube.list(POD, meta["namespace"], selector)
    return sorted(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")


async def collect_logs(
    kube: KubeClient, kind: str, obj: Mapping[str, Any]
) -> tuple[str, list[Mapping[str, Any]]]:
    """Every container's log (init containers first), each behind a header with its exit
    status, and the pods read; a log is capped (``LOG_TAIL_LINES``, ``LOG_BYTES_PER_CONTAINER``)."""
    try:
        pods = await pods_of(kube, kind, obj)
    except KubeError as exc:
        return f"(no logs: {exc})\n", []
    if not pods:
        return f"(no logs: job {obj['metadata']['name']} never started a pod)\n", []

    async def one(pod: Mapping[str, Any], c: ContainerState) -> str:
        meta = pod.get("metadata") or {}
        head = f"--- pod {meta.get('name')}, {container_label(c)}: {c.text} ---\n"
        try:
            text = await kube.log(
                meta["name"], meta["namespace"], c.name, tail_lines=LOG_TAIL_LINES
            )
        except KubeError as exc:
            return f"{head}(no log: {exc})\n"
        text = _cap(text)
        if text.count("\n") >= LOG_TAIL_LINES:
            head += f"[last {LOG_TAIL_LINES} lines]\n"
        return head + (text if text.endswith("\n") or not text else text + "\n")

    parts = await asyncio.gather(*(one(p, c) for p in pods for c in container_states(p)))
    return "".join(parts), pods


def _cap(text: str) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= LOG_BYTES_PER_CONTAINER:
        return text
    tail = data[-LOG_BYTES_PER_CONTAINER:].decode("utf-8", "ignore")
    return f"[truncated {len(data) - len(tail.encode())} bytes]\n{tail}"
