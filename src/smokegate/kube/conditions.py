"""Kubernetes status conditions (``status.conditions``) as people read them. The lowest rung of
the readiness rules: ``kube.readiness`` (every kind) and ``flux.helmrelease`` (Flux's rules for
HelmReleases) both build on it."""

from __future__ import annotations

from typing import Any


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``status.conditions`` by type."""
    out: dict[str, dict[str, Any]] = {}
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type"):
            out[cond["type"]] = cond
    return out


def describe_condition(cond: dict[str, Any]) -> str:
    """``Ready=False (UpgradeFailed): helm upgrade failed: …``"""
    text = f"{cond.get('type')}={cond.get('status', 'Unknown')}"
    if cond.get("reason"):
        text += f" ({cond['reason']})"
    if cond.get("message"):
        text += f": {cond['message']}"
    return text
