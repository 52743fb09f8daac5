"""Cleaning up: ``resolutely`` (the end-of-run sweep, shielded from a second cancellation and
bounded in time) and ``cleanup_leftovers`` (``helm-test --cleanup``: what crashed runs left,
found by the run label)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from smokegate.helmtest.objects import HOOK_ANNOTATION, RELEASE_LABEL, RUN_LABEL
from smokegate.kube.client import JOB, POD, KubeClient, KubeError

T = TypeVar("T")


async def resolutely(coro: Awaitable[T], limit: float) -> T:
    """Await ``coro`` to the end even if the caller is cancelled meanwhile (this is the cleanup
    the cancellation asks for), for at most ``limit`` seconds. Then re-raise the cancellation if
    there was one; else return its result, raise its exception, or ``TimeoutError``."""
    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    cancelled = timed_out = False
    while not task.done():
        remaining = end - loop.time()
        if remaining <= 0 and not timed_out:
            timed_out = True
            task.cancel()
            end = loop.time() + 1.0  # a moment for it to unwind
            continue
        if remaining <= 0:
            break
        try:
            await asyncio.wait({task}, timeout=remaining)
        except asyncio.CancelledError:
            cancelled = True  # keep waiting
    if task.done() and not task.cancelled():
        task.exception()  # retrieved, so asyncio does not warn about it
    if cancelled:
        raise asyncio.CancelledError
    if timed_out or not task.done() or task.cancelled():
        raise TimeoutError
    return task.result()


SWEEP_KINDS = ("job", "pod", "configmap", "secret", "serviceaccount", "service")


async def cleanup_leftovers(
    kube: KubeClient,
    namespace: str,
    *,
    release: str | None = None,
    older_than: float | None = None,
    note: Callable[[str], None] | None = None,
) -> tuple[list[str], list[str]]:
    """Delete objects a helm-test run created and did not remove (it crashed or ran with
    ``--keep``), found by the run label: Jobs first, then pods, then support objects.
    ``release`` limits it to one release's, ``older_than`` (seconds) to objects at least that
    old (so a run still in progress elsewhere is spared). Returns (deleted, problems)."""
    from lightkube import operators

    from smokegate.kube.client import BUILTIN

    labels: dict[str, Any] = {RUN_LABEL: operators.exists()}
    if release:
        labels[RELEASE_LABEL] = release
    now = time.time()
    deleted: list[str] = []
    problems: list[str] = []
    for kind in SWEEP_KINDS:
        rt = BUILTIN[kind]
        try:
            found = await kube.list(rt, namespace, labels)
        except KubeError as exc:
            if rt in (JOB, POD) or not exc.forbidden:
                problems.append(str(exc))
            continue  # no permission on a support kind: this run never created one there
        for obj in found:
            meta = obj.get("metadata") or {}
            if older_than is not None and _age(meta, now) < older_than:
                continue
            what = f"{rt.kind.lower()}/{meta.get('name')}"
            try:
                if await kube.delete(rt, meta["name"], namespace, grace_period=0):
                    deleted.append(
                        f"{what} (run {(meta.get('labels') or {}).get(RUN_LABEL)}, hook "
                        f"{(meta.get('annotations') or {}).get(HOOK_ANNOTATION, '?')})"
                    )
            except KubeError as exc:
                problems.append(str(exc))
    return deleted, problems


def _age(meta: Mapping[str, Any], now: float) -> float:
    text = meta.get("creationTimestamp")
    if not isinstance(text, str):
        return float("inf")
    try:
        return now - datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return float("inf")
