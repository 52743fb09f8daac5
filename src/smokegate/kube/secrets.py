"""Fetch the Secret values a suite references (``${secret:…}``, ``secretRef``) before it is
interpolated. Each Secret is read once, however many keys and suites use it.

Values leave this module only as ``core.secrets.Secret`` values inside the returned mapping
(which ``plan_run`` registers with the run's redactor): they render as ``***`` from the moment
they are decoded. Errors name the Secret and key, never a value.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass

from smokegate.core.secrets import Secret
from smokegate.kube.client import SECRET, KubeClient, KubeError
from smokegate.suite.interpolate import SecretKey


@dataclass(frozen=True, slots=True)
class SecretProblem:
    key: SecretKey
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


def decode_value(data: dict[str, str], key: str) -> str | None:
    """``data[key]`` of a Secret as text (the API returns base64); None when absent."""
    raw = data.get(key)
    if raw is None:
        return None
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise ValueError("value is not UTF-8 text") from None


async def fetch_secrets(
    client: KubeClient, keys: Iterable[SecretKey]
) -> tuple[dict[SecretKey, Secret], list[SecretProblem]]:
    """Values for ``keys`` (each must have its namespace filled in), and what went wrong.

    Missing Secrets or keys are problems of the suite (reported together). Any other API
    failure (forbidden, unreachable) raises ``KubeError``: nothing useful can run without it.
    """
    wanted = sorted(set(keys), key=lambda k: (k.namespace or "", k.name, k.key))
    objects = sorted({(k.namespace, k.name) for k in wanted}, key=lambda t: (t[0] or "", t[1]))

    async def read(ns: str | None, name: str) -> dict[str, str] | None:
        obj = await client.get_or_none(SECRET, name, ns)
        return None if obj is None else (obj.get("data") or {})

    found = await asyncio.gather(*(read(ns, name) for ns, name in objects))
    by_object = dict(zip(objects, found, strict=True))
    values: dict[SecretKey, Secret] = {}
    problems: list[SecretProblem] = []
    for key in wanted:
        data = by_object[(key.namespace, key.name)]
        if data is None:
            problems.append(SecretProblem(key, "the Secret does not exist"))
            continue
        try:
            value = decode_value(data, key.key)
        except ValueError as exc:
            problems.append(SecretProblem(key, str(exc)))
            continue
        if value is None:
            keys_there = ", ".join(sorted(data)) or "none"
            problems.append(SecretProblem(key, f"no such key (the Secret has: {keys_there})"))
            continue
        values[key] = Secret(value)
    return values, problems


__all__ = ["KubeError", "SecretProblem", "decode_value", "fetch_secrets"]
