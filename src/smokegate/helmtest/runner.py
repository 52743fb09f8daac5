"""Run a release's test hooks: create, watch, collect logs, clean up. Every test runs; logs are
always kept; nothing is left behind.

For each selected hook, in Helm's order (weight, then name; ``parallel``: the hooks of one
weight at once):

1. **Create** the hook's object as the chart defines it, in the release namespace, with:
   - a unique name, ``<hook>-sg<run>``: never clashes with Helm's or Flux's own copy of the
     test pod (which their ``before-hook-creation`` policy leaves lying around), nor with a
     concurrent smokegate run, and means smokegate never deletes an object it did not create;
   - labels ``smokegate.io/helm-test-run=<run>`` and ``smokegate.io/helm-test-release=<release>``
     (on a Job's pod template too, so its pods carry them): what cleanup and ``--cleanup``
     find objects by;
   - annotations naming the hook and the release revision, and an ownerReference to the
     release Secret when it is in the same namespace, so uninstalling the release lets the
     garbage collector remove anything a crashed run left.
   Support objects (non-Pod/Job test hooks, e.g. the ConfigMap a test pod mounts) keep their
   chart names, since tests refer to them by name; one that already exists is used as is and
   left alone.
2. **Watch** it until it ends (Pod ``Succeeded``/``Failed``; Job ``Complete``/``Failed``), at
   most ``timeout`` (and never past the overall ``deadline``).
3. **Logs**, before any deletion and whatever ``helm.sh/hook-delete-policy`` says: every
   container of the pod (init containers first) or of each pod of the Job, each behind a header
   with its exit status. A test that timed out or was interrupted gets the logs it has so far.
4. **Delete** it (unless ``keep``): at once (grace period 0; the logs are already read and a
   test pod has no state worth a graceful shutdown), Jobs with their pods.

When the run ends, however it ends (success, failure, timeout, Ctrl-C/SIGTERM, cancellation of
the check that started it), everything labelled with the run's id is deleted too. Cleanup is
shielded from a second cancellation and bounded in time; what still could not be deleted is
listed in ``leftovers`` and found later by ``cleanup_leftovers`` (``helm-test --cleanup``).

Helm itself stops at the first failed test (``keep_going=False`` here does the same after the
in-flight tests of that weight finish).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from smokegate.checks.base import ErrorKind, Mismatch
from smokegate.durations import format_duration
from smokegate.engine.results import Attempt, CheckResult, Status
from smokegate.helmtest.hooks import TestHook, weight_groups
from smokegate.helmtest.target import LoadedRelease
from smokegate.kube.client import JOB, POD, KubeClient, KubeError, ResourceType

RUN_LABEL = "smokegate.io/helm-test-run"
RELEASE_LABEL = "smokegate.io/helm-test-release"
HOOK_ANNOTATION = "smokegate.io/helm-test-hook"
REVISION_ANNOTATION = "smokegate.io/helm-test-revision"
WATCH_SERVER_TIMEOUT = 240
"""Seconds after which the API server ends a watch; ``KubeClient`` resumes it."""

DEFAULT_TIMEOUT = 300.0  # per test, as `helm test --timeout`
LOG_TAIL_LINES = 5000
LOG_BYTES_PER_CONTAINER = 256 * 1024
LOG_BUDGET = 30.0  # seconds to read one test's logs
CLEANUP_BUDGET = 30.0  # seconds for the end-of-run sweep, even when interrupted
MAX_NAME = 63  # a Job's name becomes its pods' job-name label value

T = TypeVar("T")


@dataclass(slots=True)
class Options:
    timeout: float = DEFAULT_TIMEOUT
    """Per test: from creation until it ends."""
    deadline: float | None = None
    """The whole run: no test starts after it, a running test is stopped at it."""
    parallel: bool = False
    """Run the tests of one weight at once (Helm: always one by one)."""
    max_parallel: int = 8
    keep_going: bool = True
    """Run every test even after a failure (Helm stops at the first)."""
    keep: bool = False
    """Leave the created objects in place (for debugging); logs are still collected."""


class Observer(Protocol):
    def on_start(self, checks: Sequence[Any]) -> None: ...
    def on_result(self, result: CheckResult) -> None: ...


class Notes(Protocol):
    def __call__(self, message: str) -> None: ...


@dataclass(slots=True)
class LastRun:
    """What ``helm test`` records per hook (``last_run``)."""

    started_at: float
    completed_at: float | None
    phase: str


@dataclass(slots=True)
class Created:
    """One object this run created (or is creating: it is tracked before the request)."""

    rt: ResourceType
    name: str
    namespace: str
    hook: str
    deleted: bool = False

    @property
    def ref(self) -> str:
        return f"{self.rt.kind.lower()}/{self.name}"


class _Gone(Exception):
    """The object was deleted by someone else before it finished."""


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def object_name(hook: str, run_id: str) -> str:
    """``<hook>-sg<run>``, shortened (with a digest of the full name) to fit 63 characters."""
    suffix = f"sg{run_id}"
    name = f"{hook}-{suffix}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(hook.encode()).hexdigest()[:6]
    keep = MAX_NAME - len(suffix) - len(digest) - 2
    return f"{hook[:keep].rstrip('-.')}-{digest}-{suffix}"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


# --- object status, in words ----------------------------------------------------------------------


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


def _label(c: ContainerState) -> str:
    return f"container {c.name}{' (init)' if c.init else ''}"


def pod_failure(pod: Mapping[str, Any]) -> str:
    """Why a Failed pod failed: the containers that exited non-zero, the pod's own reason."""
    status = pod.get("status") or {}
    parts = [f"{_label(c)} {c.text}" for c in container_states(pod) if c.exit_code not in (None, 0)]
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
    busy = [f"{_label(c)} {c.text}" for c in container_states(pod) if c.exit_code is None]
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


# --- the run ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Outcome:
    status: Status
    phase: str
    message: str = ""
    error_kind: str | None = None
    evidence: list[Mismatch] = field(default_factory=list)


class HelmTestRun:
    """One run of a release's selected test hooks. ``await run()``; then read ``results``,
    ``last_runs``, ``interrupted`` and ``leftovers``."""

    def __init__(
        self,
        kube: KubeClient,
        release: LoadedRelease,
        hooks: Sequence[TestHook],
        options: Options | None = None,
        *,
        observer: Observer | None = None,
        note: Callable[[str], None] | None = None,
        run_id: str | None = None,
        suite: str | None = None,
    ) -> None:
        self.kube = kube
        self.release = release
        self.hooks = list(hooks)
        self.tests = [h for h in self.hooks if h.runnable]
        self.options = options or Options()
        self.observer = observer
        self.note = note or (lambda message: None)
        self.run_id = run_id or new_run_id()
        self.suite = suite or f"helm-test {release.target.namespace}/{release.target.release}"
        self.results: dict[str, CheckResult] = {}
        self.last_runs: dict[str, LastRun] = {}
        self.created: list[Created] = []
        self.leftovers: list[str] = []
        self.interrupted = False
        self._stop_reason: str | None = None
        self._deadline_at: float | None = None
        self._latest: dict[str, Mapping[str, Any]] = {}

    @property
    def namespace(self) -> str:
        return self.release.target.namespace

    # --- orchestration ------------------------------------------------------------------------

    async def run(self) -> list[CheckResult]:
        """Run every selected test; results in run order. Cleanup always happens before this
        returns or raises (``CancelledError`` after an interruption: ``results`` then holds what
        finished, ``interrupted`` is set)."""
        if self.observer is not None:
            self.observer.on_start(self.tests)
        loop = asyncio.get_running_loop()
        if self.options.deadline is not None:
            self._deadline_at = loop.time() + self.options.deadline
        try:
            for group in weight_groups(self.hooks):
                await self._run_group(group)
        except asyncio.CancelledError:
            self.interrupted = True
            raise
        finally:
            for hook in self.tests:
                if hook.name not in self.results:
                    reason = self._stop_reason or "not run: interrupted before it started"
                    self._finish(self._skipped(hook, reason))
            if not self.options.keep:
                try:
                    await resolutely(self._sweep(), CLEANUP_BUDGET)
                except Exception as exc:  # TimeoutError included: say so, never hide it
                    what = "did not finish in time" if isinstance(exc, TimeoutError) else exc
                    self.leftovers.append(
                        f"cleanup of run {self.run_id} {what}: objects labelled "
                        f"{RUN_LABEL}={self.run_id} may remain"
                    )
        return self.ordered_results()

    def ordered_results(self) -> list[CheckResult]:
        return [self.results[h.name] for h in self.tests if h.name in self.results]

    async def _run_group(self, group: list[TestHook]) -> None:
        for hook in group:  # support objects first: the group's tests may need them
            if not hook.runnable and self._stop_reason is None:
                await self._create_support(hook)
        tests = [h for h in group if h.runnable]
        if not self.options.parallel:
            for hook in tests:
                await self._guarded(hook)
            return
        gate = asyncio.Semaphore(max(1, self.options.max_parallel))

        async def bounded(hook: TestHook) -> None:
            async with gate:
                await self._guarded(hook)

        async with asyncio.TaskGroup() as tasks:
            for hook in tests:
                tasks.create_task(bounded(hook))

    async def _guarded(self, hook: TestHook) -> None:
        remaining = self._remaining()
        if self._stop_reason is None and remaining is not None and remaining <= 0:
            self._stop_reason = (
                f"not run: the overall deadline ({format_duration(self.options.deadline or 0)},"
                " --deadline) was reached"
            )
        if self._stop_reason is not None:
            self._finish(self._skipped(hook, self._stop_reason))
            return
        result = await self._run_test(hook)
        self._finish(result)
        if result.status in (Status.FAILED, Status.ERROR) and not self.options.keep_going:
            self._stop_reason = f"not run: --fail-fast after {hook.name} failed"

    def _remaining(self) -> float | None:
        if self._deadline_at is None:
            return None
        return self._deadline_at - asyncio.get_running_loop().time()

    def _finish(self, result: CheckResult) -> None:
        self.results[result.name] = result
        if self.observer is not None:
            self.observer.on_result(result)

    # --- one test -------------------------------------------------------------------------------

    def _owner(self, namespace: str) -> list[dict[str, Any]]:
        rel = self.release
        if namespace != rel.target.storage_namespace or not rel.secret_uid:
            return []  # owners must be in the same namespace
        return [{"apiVersion": "v1", "kind": "Secret", "name": rel.secret_name,
                 "uid": rel.secret_uid}]  # fmt: skip

    def build_object(self, hook: TestHook, name: str, namespace: str) -> dict[str, Any]:
        """The hook's object as the chart defines it, plus what identifies this run."""
        obj = copy.deepcopy(dict(hook.obj))
        meta = dict(obj.get("metadata") or {})
        for key in ("resourceVersion", "uid", "creationTimestamp", "generateName", "managedFields"):
            meta.pop(key, None)
        ids = {RUN_LABEL: self.run_id, RELEASE_LABEL: self.release.target.release}
        meta["name"] = name
        if namespace:
            meta["namespace"] = namespace
        else:  # a cluster-scoped support object
            meta.pop("namespace", None)
        meta["labels"] = {**(meta.get("labels") or {}), **ids}
        meta["annotations"] = {
            **(meta.get("annotations") or {}),
            HOOK_ANNOTATION: hook.name,
            REVISION_ANNOTATION: f"{self.release.target.release}.v{self.release.record.version}",
        }
        owners = [*(meta.get("ownerReferences") or []), *self._owner(namespace)]
        if owners:
            meta["ownerReferences"] = owners
        obj["metadata"] = meta
        if hook.kind == "Job":
            spec = obj.setdefault("spec", {})
            # A TTL (0 is common in test charts) lets the TTL controller delete the Job and its
            # pods, logs included, before they are read; this run deletes it itself right after.
            spec.pop("ttlSecondsAfterFinished", None)
            template = spec.setdefault("template", {})
            tmeta = template.setdefault("metadata", {})
            tmeta["labels"] = {**(tmeta.get("labels") or {}), **ids}
        return obj

    async def _create_support(self, hook: TestHook) -> None:
        namespace = hook.namespace or self.namespace
        try:
            rt = await self.kube.resolve(hook.api_version or None, hook.kind)
            ns = namespace if rt.namespaced else ""
            entry = Created(rt, hook.name, ns, hook.name)
            self.created.append(entry)
            await self.kube.create(rt, self.build_object(hook, hook.name, ns), ns)
            self.note(f"created support object {entry.ref} (test hook {hook.name})")
        except KubeError as exc:
            if exc.code == 409:
                # Already there (left by `helm test`, or shared): use it, and do not delete what
                # this run did not create.
                self.created.pop()
                self.note(
                    f"support object {hook.kind.lower()}/{hook.name} already exists: used as is"
                )
                return
            self.note(f"warning: test hook {hook.name}: {exc}")

    async def _run_test(self, hook: TestHook) -> CheckResult:
        started = time.time()
        t0 = time.perf_counter()
        rt = POD if hook.kind == "Pod" else JOB
        namespace = hook.namespace or self.namespace
        name = object_name(hook.name, self.run_id)
        entry = Created(rt, name, namespace, hook.name)
        budget, clipped = self.options.timeout, False
        remaining = self._remaining()
        if remaining is not None and remaining < budget:
            budget, clipped = max(remaining, 0.001), True
        details: dict[str, Any] = {
            "hook": hook.name,
            "kind": hook.kind,
            "weight": hook.weight,
            "object": f"{rt.kind.lower()}/{name}",
            "namespace": namespace,
            "release": f"{self.release.target.storage_namespace}/{self.release.target.release}",
            "revision": self.release.record.version,
            "run": self.run_id,
        }
        if hook.delete_policies:
            details["deletePolicies"] = list(hook.delete_policies)
        # Tracked before the request: if it is interrupted after the server acted, the sweep
        # still knows the name.
        self.created.append(entry)
        try:
            created = await self.kube.create(
                rt, self.build_object(hook, name, namespace), namespace
            )
        except KubeError as exc:
            entry.deleted = True
            outcome = _Outcome(Status.ERROR, "", str(exc), exc.error_kind)
            return self._result(hook, outcome, started, t0, details, None)
        self.note(f"started {hook.name} ({entry.ref})")
        self._latest[name] = created
        interrupted = False
        try:
            async with asyncio.timeout(budget):
                final = await self._wait(rt, created)
            outcome = self._verdict(hook, final)
        except TimeoutError:
            latest = self._latest.get(name, created)
            where = pod_progress(latest) if hook.kind == "Pod" else job_summary(latest)
            why = "the overall deadline (--deadline)" if clipped else "--timeout"
            msg = f"did not finish within {format_duration(budget)} ({why}): {where}"
            evidence = [Mismatch("finished within", format_duration(budget), where)]
            outcome = _Outcome(Status.FAILED, "Failed", msg, ErrorKind.TIMEOUT, evidence)
        except _Gone:
            outcome = _Outcome(
                Status.ERROR, "", f"{entry.ref} was deleted by someone else before it finished",
                ErrorKind.NOT_FOUND,
            )  # fmt: skip
        except KubeError as exc:
            outcome = _Outcome(Status.ERROR, "", f"watching {entry.ref}: {exc}", exc.error_kind)
        except asyncio.CancelledError:
            interrupted = True
            outcome = _Outcome(Status.SKIPPED, "", "interrupted while it ran")
        completed = time.time()
        # Logs first, whatever happened and whatever the hook's delete policy says.
        latest = self._latest.get(name, created)
        pods: list[Mapping[str, Any]] = []
        try:
            log, pods = await resolutely(self._logs(hook, latest), LOG_BUDGET)
        except TimeoutError:
            log = f"(no logs: reading them took longer than {LOG_BUDGET:.0f}s)\n"
        except Exception as exc:  # logs are evidence, not the verdict: note it and go on
            log = f"(no logs: {type(exc).__name__}: {exc})\n"
        if hook.kind == "Job" and outcome.status is Status.FAILED and pods:
            # A Job's condition says "BackoffLimitExceeded"; its pod says which container exited
            # (or, on a timeout, what it is still waiting for).
            failed_pods = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
            extra = ""
            if outcome.error_kind == ErrorKind.TIMEOUT:
                extra = f"pod {pods[-1]['metadata']['name']}: {pod_progress(pods[-1])}"
            elif failed_pods:
                extra = pod_failure(failed_pods[-1])
            if extra:
                outcome.message += f" ({extra})"
                for m in outcome.evidence:
                    m.actual += f" ({extra})"
        if not self.options.keep:
            try:
                await resolutely(self._delete(entry), CLEANUP_BUDGET)
            except Exception as exc:  # the end-of-run sweep tries again
                self.note(f"warning: could not delete {entry.ref}: {type(exc).__name__}: {exc}")
        details["phase"] = outcome.phase or None
        codes = {
            c.name: c.exit_code
            for p in pods
            for c in container_states(p)
            if c.exit_code is not None
        }
        if codes:
            details["exitCodes"] = codes
        if outcome.phase in ("Succeeded", "Failed"):
            self.last_runs[hook.name] = LastRun(started, completed, outcome.phase)
        result = self._result(hook, outcome, started, t0, details, log)
        if interrupted:
            self._finish(result)
            raise asyncio.CancelledError
        return result

    async def _wait(self, rt: ResourceType, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        """Watch until the object has finished. Raises _Gone, KubeError (401/403)."""
        name = obj["metadata"]["name"]
        namespace = obj["metadata"]["namespace"]
        latest = obj
        failures = 0
        while True:
            if finished(rt.kind, latest):
                return latest
            version = (latest.get("metadata") or {}).get("resourceVersion")
            try:
                async for event, item in self.kube.watch(
                    rt,
                    name,
                    namespace,
                    resource_version=version,
                    server_timeout=WATCH_SERVER_TIMEOUT,
                ):
                    failures = 0
                    if event == "DELETED":
                        raise _Gone
                    latest = item
                    self._latest[name] = item
                    if finished(rt.kind, item):
                        return item
            except KubeError as exc:
                if exc.code in (401, 403):
                    raise
                # 410 Gone or a dropped stream: re-read, then watch again.
                failures += 1
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))
            fresh = await self.kube.get_or_none(rt, name, namespace)
            if fresh is None:
                raise _Gone
            latest = fresh
            self._latest[name] = fresh

    def _verdict(self, hook: TestHook, obj: Mapping[str, Any]) -> _Outcome:
        if succeeded(hook.kind, obj):
            return _Outcome(Status.PASSED, "Succeeded")
        if hook.kind == "Pod":
            why = pod_failure(obj)
            return _Outcome(Status.FAILED, "Failed", f"pod failed: {why}", ErrorKind.EXPECTATION,
                            [Mismatch("pod phase", "Succeeded", f"Failed: {why}")])  # fmt: skip
        why = job_summary(obj)
        return _Outcome(Status.FAILED, "Failed", f"job {why}", ErrorKind.EXPECTATION,
                        [Mismatch("job", "Complete", why)])  # fmt: skip

    # --- logs -----------------------------------------------------------------------------------

    async def _pods_of(self, hook: TestHook, obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        if hook.kind == "Pod":
            # The freshest copy: container states are what the log headers show.
            meta = obj.get("metadata") or {}
            fresh = await self.kube.get_or_none(POD, meta["name"], meta["namespace"])
            return [fresh or obj]
        # A Job's pods, by the Job's own selector (what the job controller uses).
        meta = obj.get("metadata") or {}
        selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not selector:
            selector = {"job-name": meta["name"]}
        pods = await self.kube.list(POD, meta["namespace"], selector)
        return sorted(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")

    async def _logs(
        self, hook: TestHook, obj: Mapping[str, Any]
    ) -> tuple[str, list[Mapping[str, Any]]]:
        try:
            pods = await self._pods_of(hook, obj)
        except KubeError as exc:
            return f"(no logs: {exc})\n", []
        if not pods:
            return f"(no logs: job {obj['metadata']['name']} never started a pod)\n", []

        async def one(pod: Mapping[str, Any], c: ContainerState) -> str:
            meta = pod.get("metadata") or {}
            head = f"--- pod {meta.get('name')}, {_label(c)}: {c.text} ---\n"
            try:
                text = await self.kube.log(
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

    # --- cleanup --------------------------------------------------------------------------------

    async def _delete(self, entry: Created) -> None:
        try:
            await self.kube.delete(entry.rt, entry.name, entry.namespace, grace_period=0)
            if entry.rt is JOB:
                # The garbage collector deletes a Job's pods eventually; do it now, so "nothing
                # left" holds when the run ends (and where no collector runs).
                for pod in await self.kube.list(POD, entry.namespace, {RUN_LABEL: self.run_id}):
                    owners = (pod.get("metadata") or {}).get("ownerReferences") or []
                    if any(o.get("name") == entry.name and o.get("kind") == "Job" for o in owners):
                        await self.kube.delete(
                            POD, pod["metadata"]["name"], entry.namespace, grace_period=0
                        )
            entry.deleted = True
            self.note(f"deleted {entry.ref}")
        except KubeError as exc:
            self.note(f"warning: could not delete {entry.ref}: {exc}")

    async def _sweep(self) -> None:
        """Delete everything this run created that is still there: what it tracked, then anything
        carrying its run label (a Job's pods, objects whose create was interrupted)."""
        for entry in reversed(self.created):
            if not entry.deleted:
                await self._delete(entry)
        leftovers: list[str] = []
        kinds = {(e.rt, e.namespace) for e in self.created} | {(POD, self.namespace)}
        for rt, namespace in sorted(kinds, key=lambda k: (k[0] is POD, k[0].kind, k[1])):
            try:
                found = await self.kube.list(rt, namespace, {RUN_LABEL: self.run_id})
                for obj in found:
                    name = obj["metadata"]["name"]
                    try:
                        await self.kube.delete(rt, name, namespace, grace_period=0)
                    except KubeError as exc:
                        leftovers.append(f"{rt.kind.lower()}/{name} in {namespace} ({exc})")
            except KubeError as exc:
                leftovers.append(f"{rt.plural} in {namespace}: {exc}")
        self.leftovers.extend(leftovers)

    # --- results --------------------------------------------------------------------------------

    def _source(self, hook: TestHook) -> str:
        return f"{self.release.describe} {hook.path or hook.name}"

    def _result(
        self,
        hook: TestHook,
        outcome: _Outcome,
        started: float,
        t0: float,
        details: dict[str, Any],
        log: str | None,
    ) -> CheckResult:
        duration = time.perf_counter() - t0
        ok = outcome.status is Status.PASSED
        attempts = (
            []
            if outcome.status is Status.SKIPPED
            else [Attempt(1, started, duration, ok, outcome.message, outcome.error_kind)]
        )
        return CheckResult(
            id=hook.id,
            name=hook.name,
            suite=self.suite,
            kind="helm-test",
            status=outcome.status,
            tags=hook.tags,
            source=self._source(hook),
            description=f"Helm test hook ({hook.kind}, weight {hook.weight})",
            attempts=attempts,
            started_at=started,
            duration=duration,
            message=outcome.message,
            error_kind=outcome.error_kind,
            evidence=outcome.evidence,
            details=details,
            log=log or None,
        )

    def _skipped(self, hook: TestHook, reason: str) -> CheckResult:
        return CheckResult(
            id=hook.id,
            name=hook.name,
            suite=self.suite,
            kind="helm-test",
            status=Status.SKIPPED,
            tags=hook.tags,
            source=self._source(hook),
            description=f"Helm test hook ({hook.kind}, weight {hook.weight})",
            started_at=time.time(),
            message=reason,
            details={"hook": hook.name, "kind": hook.kind, "weight": hook.weight},
        )


def _cap(text: str) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= LOG_BYTES_PER_CONTAINER:
        return text
    tail = data[-LOG_BYTES_PER_CONTAINER:].decode("utf-8", "ignore")
    return f"[truncated {len(data) - len(tail.encode())} bytes]\n{tail}"


# --- leftovers of crashed runs ----------------------------------------------------------------


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
