"""Leader election with a coordination.k8s.io/v1 Lease, the way client-go's leaderelection
package does it, so that of several replicas exactly one watches HelmReleases and runs the
schedules (webhooks and the job queue need no leader: the store serializes them).

* A replica becomes leader by writing its identity into the Lease (create, or a ``PUT`` with the
  resourceVersion it read: a concurrent writer gets 409 Conflict and loses the race).
* The leader renews ``renewTime`` every ``renewEvery``. A follower takes over when the Lease
  record has not changed for ``leaseDuration`` *as measured by the follower's own monotonic
  clock* (client-go's rule: no trust in the other node's wall clock).
* A leader that cannot renew for ``leaseDuration`` steps down on its own, before anyone else
  can take over, so two leaders never overlap (given renewEvery < leaseDuration).
* On shutdown the leader releases the Lease (empty holder), so a follower takes over at its
  next attempt instead of waiting out the duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from smokegate.server.kubeobj import lease_class
from smokegate.server.kubeobj import plain as _plain

log = logging.getLogger("smokegate.server")


def micro_time(now: datetime | None = None) -> str:
    """``metav1.MicroTime``: RFC 3339 with microseconds."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        kube: Any,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float,
        renew_every: float,
        on_start: Callable[[], Awaitable[None]],
        on_stop: Callable[[], Awaitable[None]],
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = lease_duration
        self.renew_every = renew_every
        self._on_start = on_start
        self._on_stop = on_stop
        self.is_leader = False
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._last_renew = 0.0
        self._cls = lease_class()
        self._task: asyncio.Task[None] | None = None
        self._client: Any = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="smokegate-leader")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.is_leader:
            await self._step_down()
            with contextlib.suppress(Exception):
                await self._release()
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _loop(self) -> None:
        self._client = self.kube.client(self.namespace)
        while True:
            try:
                won = await self._try()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("leader election: %s", str(exc).splitlines()[0] if str(exc) else exc)
                won = False
            now = time.monotonic()
            if won:
                self._last_renew = now
                if not self.is_leader:
                    self.is_leader = True
                    log.info("leader election: %s is the leader (lease %s/%s)", self.identity,
                             self.namespace, self.name)  # fmt: skip
                    await self._on_start()
            elif self.is_leader and now - self._last_renew >= self.duration - self.renew_every:
                # Could not renew in time: stop acting as leader before another replica may.
                log.warning("leader election: lost the lease; stepping down")
                await self._step_down()
            await asyncio.sleep(self.renew_every)

    async def _step_down(self) -> None:
        self.is_leader = False
        await self._on_stop()

    async def _try(self) -> bool:
        """One acquire-or-renew attempt; True if we hold the lease afterwards."""
        from lightkube import ApiError

        api = self._client.api
        try:
            lease = await api.get(self._cls, self.name, namespace=self.namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            return await self._create(api)
        obj = _plain(lease)
        spec = obj.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), spec.get("leaseTransitions"))
        now = time.monotonic()
        if record != self._observed:
            self._observed, self._observed_at = record, now
        duration = float(spec.get("leaseDurationSeconds") or self.duration)
        if holder and holder != self.identity and now < self._observed_at + duration:
            return False  # another replica holds a lease that is still valid
        stamp = micro_time()
        taking_over = holder != self.identity
        spec = {
            **spec,
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.duration),
            "renewTime": stamp,
        }
        if taking_over:
            spec["acquireTime"] = stamp
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if holder else 0)
        obj["spec"] = spec
        try:
            # The resourceVersion read above makes this a compare-and-swap.
            await api.replace(self._cls(obj), namespace=self.namespace)
        except ApiError as exc:
            if exc.status.code == 409:
                return False  # someone else wrote it first
            raise
        self._observed = (self.identity, stamp, spec.get("leaseTransitions"))
        self._observed_at = time.monotonic()
        return True

    async def _create(self, api: Any) -> bool:
        from lightkube import ApiError

        stamp = micro_time()
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.duration),
                "acquireTime": stamp,
                "renewTime": stamp,
                "leaseTransitions": 0,
            },
        }
        try:
            await api.create(self._cls(body), namespace=self.namespace)
        except ApiError as exc:
            if exc.status.code == 409:
                return False  # created by another replica a moment ago
            raise
        return True

    async def _release(self) -> None:
        """Give the lease up so a follower need not wait out its duration."""
        api = self._client.api
        lease = _plain(await api.get(self._cls, self.name, namespace=self.namespace))
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") != self.identity:
            return
        lease["spec"] = {**spec, "holderIdentity": "", "leaseDurationSeconds": 1}
        await api.replace(self._cls(lease), namespace=self.namespace)
        log.info("leader election: released the lease")
