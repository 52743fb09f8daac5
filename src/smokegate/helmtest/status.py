"""A test Pod's or Job's status in words: finished or not, passed or not, and what each
container did (the headers of the collected logs, the message of a failed test)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def _conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    conds = (obj.get("status") or {}).get("conditions") or []
    return {str(c.get("type")): c for c in conds if isinstance(c, Mapping)}


def finished(kind: str, obj: Mapping[str, Any]) -> bool:
    if kind == "Pod":
        return (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed")
    conds = _conditions(obj)
    return any(conds.get(t, {}).get("status") == "True" for t in ("Complete", "Failed"))


def succeeded(kind: str, obj: Mapping[str, Any]) -> bool:
    if kind == "Pod":
        return (obj.get("status") or {}).get("phase") == "Succeeded"
    return _conditions(obj).get("Complete", {}).get("status") == "True"


@dataclass(slots=True)
class ContainerState:
    name: str
    init: bool
    text: str
    exit_code: int | None = None


def container_states(pod: Mapping[str, Any]) -> list[ContainerState]:
    """Every container of a pod (init containers first) with its state in words."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    out = []
    for init, key, skey in (
        (True, "initContainers", "initContainerStatuses"),
        (False, "containers", "containerStatuses"),
    ):
        statuses = {s.get("name"): s for s in status.get(skey) or [] if isinstance(s, Mapping)}
        for c in spec.get(key) or []:
            s = statuses.get(c.get("name")) or {}
            state = s.get("state") or {}
            code = None
            if "terminated" in state:
                t = state["terminated"] or {}
                code = t.get("exitCode")
                reason = t.get("reason") or ""
                text = f"exited {code}" + (
                    f" ({reason})" if reason and reason != "Completed" else ""
                )
                if t.get("message"):
                    text += f": {str(t['message']).strip()[:200]}"
            elif "running" in state:
                text = "running"
            elif "waiting" in state:
                w = state["waiting"] or {}
                text = f"waiting: {w.get('reason') or 'unknown'}"
                if w.get("message"):
                    text += f" ({str(w['message']).strip()[:200]})"
            else:
                text = "not started"
            out.append(ContainerState(str(c.get("name")), init, text, code))
    return out


def container_label(c: ContainerState) -> str:
    return f"container {c.name}{' (init)' if c.init else ''}"


def pod_failure(pod: Mapping[str, Any]) -> str:
    """Why a Failed pod failed: the containers that exited non-zero, the pod's own reason."""
    status = pod.get("status") or {}
    parts = [
        f"{container_label(c)} {c.text}"
        for c in container_states(pod)
        if c.exit_code not in (None, 0)
    ]
    if status.get("reason"):
        parts.append(f"pod {status['reason']}: {str(status.get('message') or '').strip()}")
    return "; ".join(parts) or "pod Failed"


def pod_progress(pod: Mapping[str, Any]) -> str:
    """Where a pod that has not finished stands (for a timeout message)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    scheduled = _conditions(pod).get("PodScheduled") or {}
    if scheduled.get("status") == "False":
        return f"{phase}: not scheduled: {scheduled.get('reason')}: {scheduled.get('message', '')}"
    if not spec.get("nodeName"):
        return f"{phase}: not scheduled to a node yet"
    busy = [f"{container_label(c)} {c.text}" for c in container_states(pod) if c.exit_code is None]
    return f"{phase}: {'; '.join(busy)}" if busy else phase


def job_summary(job: Mapping[str, Any]) -> str:
    status = job.get("status") or {}
    counts = ", ".join(
        f"{status.get(k) or 0} {k}" for k in ("active", "succeeded", "failed") if status.get(k)
    )
    failed_cond = _conditions(job).get("Failed") or {}
    if failed_cond.get("status") == "True":
        return f"Failed: {failed_cond.get('reason')}: {failed_cond.get('message', '')}".rstrip()
    return counts or "no pods yet"
