"""The watch trigger: list and watch HelmReleases; when one is Ready at a revision (chart
version) and digest not seen before, queue a ``watch`` job for it.

The usual list-then-watch protocol, so nothing published while the connection was down is
missed:

1. **list** (all namespaces, or each configured one) and take the list's resourceVersion;
2. **watch** from that version; every event carries the object's new version, which is
   remembered; lightkube re-opens the stream from it when the API server ends one normally
   (``server_timeout``);
3. on a dropped connection (an API server restart, a network blip) the watch is **resumed**
   from the last version after a short backoff;
4. on **410 Gone** (that version was compacted away) it starts over at 1: a re-list. Releases
   the re-list finds Ready at an already-tested revision are queued again, and the store
   answers "duplicate" — the (release, revision, trigger, digest) key is unique — so nothing
   is run twice, whichever replica did the first run.

The digest (``status.history[0].digest``) is part of the key (the job's nonce): a values-only
change releases a new digest at the same chart version, and that deserves a run too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from smokegate.server.config import SUITES_ANNOTATION, ServeConfig
from smokegate.server.kubeobj import helmrelease_class
from smokegate.server.kubeobj import plain as _plain
from smokegate.store.base import Store

log = logging.getLogger("smokegate.server")

WATCH_SERVER_TIMEOUT = 290  # the API server ends a watch after this; lightkube re-opens it


class Gone(Exception):
    """The watch's resourceVersion is too old (410): re-list."""


class ReleaseWatcher:
    """One list/watch loop per configured namespace (or one for all namespaces)."""

    def __init__(
        self, config: ServeConfig, store: Store, kube: Any, wake: Callable[[], None]
    ) -> None:
        self.config = config
        self.store = store
        self.kube = kube
        self._wake = wake
        self._seen: dict[str, tuple[str, str]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.relists = 0
        self.resumes = 0

    def start(self) -> None:
        namespaces = self.config.kubernetes.namespaces or ["*"]
        for ns in namespaces:
            self._tasks.append(asyncio.create_task(self._loop(ns), name=f"smokegate-watch-{ns}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # --- deciding -------------------------------------------------------------------------------

    def _mapped(self, hr: dict[str, Any]) -> bool:
        meta = hr.get("metadata") or {}
        if (meta.get("annotations") or {}).get(SUITES_ANNOTATION):
            return True
        from smokegate.server.config import discover_annotation

        if discover_annotation(hr):  # `smokegate.io/discover: "true"` alone is enough
            return True
        rule = self.config.rule_for(
            meta.get("namespace", ""), meta.get("name", ""), meta.get("labels") or {}
        )
        return rule is not None

    async def consider(self, hr: dict[str, Any]) -> bool:
        """Queue a run if ``hr`` is Ready at a revision/digest not queued before; True if a new
        job was queued."""
        from smokegate.flux.helmrelease import current_revision, evaluate

        meta = hr.get("metadata") or {}
        release = f"{meta.get('namespace')}/{meta.get('name')}"
        if not self._mapped(hr):
            return False
        # Deployed with failed Helm tests counts: the run reports those tests as failed checks.
        if not evaluate(hr, accept_test_failure=True).ready:
            return False
        revision = current_revision(hr) or ""
        history = (hr.get("status") or {}).get("history") or [{}]
        digest = str((history[0] or {}).get("digest") or "")
        key = (revision, digest)
        if self._seen.get(release) == key:
            return False  # status updates of a release already handled: skip the store
        result = await self.store.enqueue(
            release,
            revision,
            "watch",
            nonce=digest.removeprefix("sha256:")[:16],
            payload={"event": {"reason": "Ready", "digest": digest}},
        )
        self._seen[release] = key
        if result.created:
            log.info("watch: %s is ready at %s; run queued (job %s)", release, revision,
                     result.job_id)  # fmt: skip
            self._wake()
        return result.created

    # --- list and watch -------------------------------------------------------------------------

    async def _loop(self, namespace: str) -> None:
        cls = helmrelease_class()
        failures = 0
        version: str | None = None
        while True:
            client = self.kube.client("default")
            try:
                if version is None:
                    version = await self._list(client.api, cls, namespace)
                    self.relists += 1
                version = await self._watch(client.api, cls, namespace, version)
            except asyncio.CancelledError:
                raise
            except Gone:
                log.info("watch %s: resourceVersion expired (410); re-listing", namespace)
                version = None
                continue
            except Exception as exc:
                if isinstance(exc, _Interrupted):
                    version = exc.version  # resume from the last event's version
                failures += 1
                delay = min(0.2 * 2**failures, 5.0)
                log.warning("watch %s: %s; resuming in %.1fs", namespace, _short(exc), delay)
                await asyncio.sleep(delay)
                self.resumes += 1
                continue
            finally:
                with contextlib.suppress(Exception):
                    await client.close()
            failures = 0

    async def _list(self, api: Any, cls: Any, namespace: str) -> str:
        items = api.list(cls, namespace=namespace)
        async for obj in items:
            await self.consider(_plain(obj))
        return str(items.resourceVersion)

    async def _watch(self, api: Any, cls: Any, namespace: str, version: str) -> str:
        from lightkube.types import OnErrorAction, OnErrorResult

        def raise_all(exc: BaseException, count: int) -> Any:
            return OnErrorResult(OnErrorAction.RAISE)

        stream = api.watch(
            cls,
            namespace=namespace,
            resource_version=version,
            server_timeout=WATCH_SERVER_TIMEOUT,
            on_error=raise_all,
        )
        try:
            async with contextlib.aclosing(stream):
                async for event, obj in stream:
                    hr = _plain(obj)
                    if event in ("ADDED", "MODIFIED"):
                        await self.consider(hr)
                    # Only once the event is handled: if queueing it failed (the store is
                    # down), the resumed watch starts before it and delivers it again.
                    version = (hr.get("metadata") or {}).get("resourceVersion") or version
        except Exception as exc:
            if _code(exc) == 410:
                raise Gone() from None
            # Resuming must start from the last version seen, not the one we started with.
            raise _Interrupted(version, exc) from exc
        return version


def _code(exc: BaseException) -> int | None:
    """The HTTP status of a failed watch: an ERROR event in the stream (``ApiError``) or the
    response status when the server refused the request outright."""
    status = getattr(exc, "status", None)
    code = getattr(status, "code", None)
    if code is None:
        code = getattr(getattr(exc, "response", None), "status_code", None)
    return code if isinstance(code, int) else None


class _Interrupted(Exception):
    def __init__(self, version: str, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.version = version
        self.cause = cause


def _short(exc: BaseException) -> str:
    cause = getattr(exc, "cause", exc)
    text = str(cause).splitlines()[0] if str(cause) else ""
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__
