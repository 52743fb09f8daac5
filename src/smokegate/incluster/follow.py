"""Create the run's Job and ConfigMap, follow the pod, collect its report, delete everything.

1. **Create** the Job, then the ConfigMap owned by it (an ownerReference needs the Job's uid;
   a pod that starts first waits for its volume, as the kubelet retries a missing ConfigMap).
2. **Wait** for the Job's pod and its ``smokegate`` container to start, saying where it stands
   (scheduling, pulling the image). A container that cannot start (invalid image, bad config,
   an image that cannot be pulled for ``PULL_GRACE``), a pod that fails before it starts, a Job
   that fails without a pod: the run ends at once with the reason. While no pod appears the
   Job's Warning Events (``FailedCreate``: quota, admission, a missing ServiceAccount) are shown.
3. **Stream** the container's log to ``output`` as it is written, minus the report block
   (``report.logblock``), which is collected. A dropped stream is reopened and the lines
   already seen are skipped. When the container has ended, a report block the stream missed is
   read from the whole log once.
4. **Stop** (``timeout``, or the caller cancelled: Ctrl-C, SIGTERM): delete the Job first (so
   the job controller cannot start a replacement pod), then the pod with its grace period: its
   smokegate gets SIGTERM, ends its checks as a local run does on Ctrl-C and prints the report
   of what finished, which is still collected (for at most ``STOP_GRACE`` + 5 s;
   ``hurry()``, a second Ctrl-C, skips the wait).
5. **Clean up**, whatever happened: the Job (propagation ``Background``), its pods (grace 0:
   the log is read, and "nothing left" must hold when the command returns, also where no
   garbage collector runs), the ConfigMap, then anything still carrying the run label. Shielded
   from a second cancellation and bounded in time; what could not be deleted is listed in
   ``leftovers`` (the TTL and the ownerReference delete it later in a real cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smokegate.core.durations import format_duration
from smokegate.helmtest.cleanup import resolutely
from smokegate.incluster.manifests import CONTAINER, RUN_LABEL, STOP_GRACE
from smokegate.incluster.podstate import (
    NEVER_STARTS,
    PULL_FAILURES,
    PULL_GRACE,
    container_now,
    describe,
    pod_gave_up,
)
from smokegate.kube.client import BUILTIN, EVENT, JOB, POD, KubeClient, KubeError
from smokegate.report.logblock import LogBlockError, LogBlockReader

CONFIGMAP = BUILTIN["configmap"]
CLEANUP_BUDGET = 30.0
POLL_FAST, POLL_SLOW = 0.25, 1.0
EVENTS_AFTER = 3.0
"""Seconds without a pod before the Job's Events are read for the reason."""


class NeverStarted(Exception):
    """The runner container will not start; the message says why."""


@dataclass(slots=True)
class Collected:
    """What the run left to report: the report (or why there is none) and the pod's end."""

    run_id: str
    job: str
    namespace: str
    pod: str | None = None
    node: str | None = None
    exit_code: int | None = None
    termination: str = ""
    """The container's terminated reason and message (``OOMKilled``, its last log lines)."""
    started: bool = False
    """The container ran (it was seen running or terminated)."""
    last_state: str = ""
    """Where the pod stood when last seen waiting (for a message when it never ran)."""
    report_json: str | None = None
    report_problem: str = ""
    never_started: str = ""
    timed_out: bool = False
    interrupted: bool = False
    kept: bool = False
    created: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)


class JobFollower:
    """One in-cluster run: ``await run()`` returns ``Collected``; a cancellation is re-raised
    after the stop and the cleanup (``collected`` then holds what was gathered)."""

    def __init__(
        self,
        client: KubeClient,
        job: Mapping[str, Any],
        configmap: Callable[[Mapping[str, Any]], dict[str, Any]],
        *,
        run_id: str,
        timeout: float,
        output: Callable[[str], None],
        progress: Callable[[str], None],
        keep: bool = False,
    ) -> None:
        self.client = client
        self.job = job
        self.make_configmap = configmap
        self.namespace = str(job["metadata"]["namespace"])
        self.name = str(job["metadata"]["name"])
        self.timeout = timeout
        self.output = output
        self.progress = progress
        self.keep = keep
        self.collected = Collected(run_id, self.name, self.namespace)
        self._reader = LogBlockReader()
        self._seen_lines = 0
        self._pod: dict[str, Any] | None = None
        self._job_deleted = False
        self._drain: asyncio.Task[None] | None = None
        self._hurried = False

    @property
    def labels(self) -> dict[str, str]:
        return {RUN_LABEL: self.collected.run_id}

    # --- the run --------------------------------------------------------------------------------

    async def run(self) -> Collected:
        c = self.collected
        try:
            try:
                async with asyncio.timeout(self.timeout):
                    await self._create()
                    await self._follow()
            except TimeoutError:
                c.timed_out = True
                self.progress(
                    f"the in-cluster run did not finish within {format_duration(self.timeout)} "
                    "(the job timeout): stopping it"
                )
                await self._stop()
            except NeverStarted as exc:
                c.never_started = str(exc)
        except asyncio.CancelledError:
            c.interrupted = True
            self.progress("interrupted: stopping the runner pod and collecting its report")
            # A second interruption cuts the stop short: on to the cleanup at once.
            with contextlib.suppress(asyncio.CancelledError):
                await self._stop()
            raise
        finally:
            self._take_report()
            if self.keep:
                c.kept = True
            else:
                try:
                    await resolutely(self._cleanup(), CLEANUP_BUDGET)
                except Exception as exc:  # TimeoutError included: say so, never hide it
                    what = "did not finish in time" if isinstance(exc, TimeoutError) else exc
                    c.leftovers.append(
                        f"cleanup of run {c.run_id} {what}: objects labelled "
                        f"{RUN_LABEL}={c.run_id} in {self.namespace} may remain"
                    )
        return c

    def hurry(self) -> None:
        """Stop waiting for the stopped pod's report (a second Ctrl-C): clean up now."""
        self._hurried = True
        if self._drain is not None:
            self._drain.cancel()

    # --- 1. create ------------------------------------------------------------------------------

    async def _create(self) -> None:
        # Tracked before the request: if it is interrupted after the server acted, the cleanup
        # still finds the object (by name, and by the run label).
        self.collected.created.append(f"job/{self.name}")
        job = await self.client.create(JOB, self.job, self.namespace)
        self.collected.created.append(f"configmap/{self.name}")
        await self.client.create(CONFIGMAP, self.make_configmap(job), self.namespace)
        image = self.job["spec"]["template"]["spec"]["containers"][0]["image"]
        self.progress(f"created job {self.namespace}/{self.name} (image {image})")

    # --- 2. wait for the pod --------------------------------------------------------------------

    async def _follow(self) -> None:
        pod = await self._wait_for_start()
        await self._stream(pod["metadata"]["name"])
        await self._finish()

    async def _wait_for_start(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        began = loop.time()
        said = ""
        events_seen: set[str] = set()
        pull_since: float | None = None
        while True:
            pods = await self.client.list(POD, self.namespace, self.labels)
            pods.sort(key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
            waited = loop.time() - began
            if not pods:
                job = await self.client.get_or_none(JOB, self.name, self.namespace)
                failed = _job_failed(job)
                if failed:
                    raise NeverStarted(f"job {self.name} failed before a pod ran: {failed}")
                if waited >= EVENTS_AFTER:
                    for message in await self._job_warnings():
                        if message not in events_seen:
                            events_seen.add(message)
                            self.progress(f"job {self.name}: {message}")
                await asyncio.sleep(POLL_FAST if waited < 10 else POLL_SLOW)
                continue
            pod = pods[-1]
            self._remember(pod)
            now = container_now(pod)
            if now.started:
                self.collected.started = True
                node = (pod.get("spec") or {}).get("nodeName")
                self.progress(
                    f"pod {pod['metadata']['name']} started" + (f" on node {node}" if node else "")
                )
                return pod
            gave_up = pod_gave_up(pod)
            if gave_up:
                raise NeverStarted(gave_up)
            if now.state == "waiting" and now.reason in NEVER_STARTS:
                raise NeverStarted(
                    f"container {CONTAINER} cannot start: {now.reason}: {now.message}"
                )
            if now.state == "waiting" and now.reason in PULL_FAILURES:
                pull_since = pull_since if pull_since is not None else loop.time()
                if loop.time() - pull_since >= PULL_GRACE:
                    raise NeverStarted(
                        f"image cannot be pulled for {format_duration(PULL_GRACE)}: "
                        f"{now.reason}: {now.message}"
                    )
            else:
                pull_since = None
            text = describe(pod)
            self.collected.last_state = text
            if text != said:
                said = text
                self.progress(f"pod {pod['metadata']['name']}: {text}")
            await asyncio.sleep(POLL_FAST if waited < 10 else POLL_SLOW)

    async def _job_warnings(self) -> list[str]:
        """The Job's Warning Events (why the job controller creates no pod); [] if unreadable."""
        try:
            events = await self.client.list(
                EVENT,
                self.namespace,
                fields={"involvedObject.kind": "Job", "involvedObject.name": self.name},
            )
        except KubeError:
            return []  # no `list` on events: the timeout message says where the pod stands
        return [
            f"{e.get('reason')}: {str(e.get('message') or '').strip()}"
            for e in events
            if e.get("type") == "Warning"
        ]

    def _remember(self, pod: dict[str, Any]) -> None:
        self._pod = pod
        self.collected.pod = pod["metadata"]["name"]
        self.collected.node = (pod.get("spec") or {}).get("nodeName") or self.collected.node
        now = container_now(pod)
        if now.state == "terminated":
            self.collected.exit_code = now.exit_code
            self.collected.termination = " ".join(p for p in (now.reason, now.message) if p)

    # --- 3. stream ------------------------------------------------------------------------------

    async def _stream(self, pod: str) -> None:
        """Follow the log until the container has ended (or the pod is gone)."""
        failures = 0
        while True:
            index = 0
            try:
                async for line in self.client.stream_log(pod, self.namespace, CONTAINER):
                    index += 1
                    if index <= self._seen_lines:
                        continue  # a reopened stream starts from the first line again
                    self._seen_lines += 1
                    kept = self._reader.feed(line)
                    if kept is not None:
                        self.output(kept)
            except KubeError as exc:
                if exc.code in (401, 403):
                    raise
                failures += 1
                if failures > 30:
                    raise
            fresh = await self.client.get_or_none(POD, pod, self.namespace)
            if fresh is None:
                return
            self._remember(fresh)
            if container_now(fresh).state == "terminated":
                return
            await asyncio.sleep(min(0.2 * 2**failures, 2.0))

    async def _finish(self) -> None:
        """The container's exit code (its status may lag its log's end), and the report block
        from the whole log if the stream missed it."""
        pod = self.collected.pod
        assert pod is not None
        for _ in range(40):
            if self.collected.exit_code is not None:
                break
            fresh = await self.client.get_or_none(POD, pod, self.namespace)
            if fresh is None:
                break
            self._remember(fresh)
            await asyncio.sleep(POLL_FAST)
        if not self._reader.complete:
            try:
                log = await self.client.log(pod, self.namespace, CONTAINER)
            except KubeError as exc:
                if exc.code in (401, 403):
                    raise
                return  # the pod is gone: the report is missing, and the outcome says so
            reader = LogBlockReader()
            for line in log.splitlines(keepends=True):
                reader.feed(line)
            if reader.complete:
                self._reader = reader

    # --- 4. stop --------------------------------------------------------------------------------

    async def _stop(self) -> None:
        """Stop the pod gracefully and collect the report it prints on its way out. Kept runs
        (``keep``) are left alone: the Job's activeDeadlineSeconds stops the pod, its TTL
        deletes it."""
        if self.keep:
            return
        await self._delete_job()
        pod = self.collected.pod
        if pod is None:
            return
        try:
            await self.client.delete(POD, pod, self.namespace, grace_period=STOP_GRACE)
        except KubeError as exc:
            self.progress(f"warning: could not stop pod {pod}: {exc}")
            return
        if self._hurried or not container_now(self._pod).started:
            return
        self._drain = asyncio.ensure_future(self._stream(pod))
        try:
            await asyncio.wait({self._drain}, timeout=STOP_GRACE + 5)
        finally:
            if not self._drain.done():
                self._drain.cancel()
                await asyncio.gather(self._drain, return_exceptions=True)
            elif not self._drain.cancelled() and self._drain.exception() is not None:
                self.progress(f"warning: {self._drain.exception()}")
            self._drain = None

    def _take_report(self) -> None:
        c = self.collected
        if c.report_json is not None:
            return
        try:
            c.report_json = self._reader.report_json()
        except LogBlockError as exc:
            c.report_problem = str(exc)

    # --- 5. clean up ----------------------------------------------------------------------------

    async def _delete_job(self) -> None:
        if self._job_deleted:
            return
        try:
            await self.client.delete(JOB, self.name, self.namespace)
            self._job_deleted = True
        except KubeError as exc:  # the cleanup tries again, and lists it if it still fails
            self.progress(f"warning: could not delete job {self.name}: {exc}")

    async def _cleanup(self) -> None:
        c = self.collected
        leftovers: list[str] = []
        if not self._job_deleted:
            try:
                await self.client.delete(JOB, self.name, self.namespace)
                self._job_deleted = True
            except KubeError as exc:
                leftovers.append(f"job/{self.name} ({exc})")
        try:
            await self.client.delete(CONFIGMAP, self.name, self.namespace)
        except KubeError as exc:
            leftovers.append(f"configmap/{self.name} ({exc})")
        # The garbage collector deletes the Job's pods and the ConfigMap eventually; do it now,
        # so "nothing left" holds when the command returns (and where no collector runs).
        for rt in (JOB, POD, CONFIGMAP):
            try:
                found = await self.client.list(rt, self.namespace, self.labels)
            except KubeError as exc:
                leftovers.append(f"{rt.plural} in {self.namespace}: {exc}")
                continue
            for obj in found:
                name = obj["metadata"]["name"]
                try:
                    await self.client.delete(rt, name, self.namespace, grace_period=0)
                except KubeError as exc:
                    leftovers.append(f"{rt.kind.lower()}/{name} ({exc})")
        c.leftovers = [*dict.fromkeys([*c.leftovers, *leftovers])]
        if not c.leftovers:
            self.progress(f"deleted job {self.name}, its pod and configmap")


def _job_failed(job: Mapping[str, Any] | None) -> str:
    for cond in ((job or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return f"{cond.get('reason')}: {str(cond.get('message') or '').strip()}"
    return ""
