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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from smokegate.core.durations import format_duration
from smokegate.core.outcome import ErrorKind, Mismatch
from smokegate.core.results import CheckResult, Status
from smokegate.helmtest.cleanup import resolutely
from smokegate.helmtest.hooks import TestHook, weight_groups
from smokegate.helmtest.logs import collect_logs
from smokegate.helmtest.objects import (
    HOOK_ANNOTATION,
    RELEASE_LABEL,
    REVISION_ANNOTATION,
    RUN_LABEL,
    Created,
    LastRun,
    new_run_id,
    object_name,
)
from smokegate.helmtest.results import HookOutcome, hook_result, skipped_result, verdict
from smokegate.helmtest.status import (
    container_states,
    finished,
    job_summary,
    pod_failure,
    pod_progress,
)
from smokegate.helmtest.target import LoadedRelease
from smokegate.kube.client import JOB, POD, KubeClient, KubeError, ResourceType

WATCH_SERVER_TIMEOUT = 240
"""Seconds after which the API server ends a watch; ``KubeClient`` resumes it."""

DEFAULT_TIMEOUT = 300.0  # per test, as `helm test --timeout`
LOG_BUDGET = 30.0  # seconds to read one test's logs
CLEANUP_BUDGET = 30.0  # seconds for the end-of-run sweep, even when interrupted


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


class _Gone(Exception):
    """The object was deleted by someone else before it finished."""


# --- the run ----------------------------------------------------------------------------------


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
            outcome = HookOutcome(Status.ERROR, "", str(exc), exc.error_kind)
            return self._result(hook, outcome, started, t0, details, None)
        self.note(f"started {hook.name} ({entry.ref})")
        self._latest[name] = created
        interrupted = False
        try:
            async with asyncio.timeout(budget):
                final = await self._wait(rt, created)
            outcome = verdict(hook, final)
        except TimeoutError:
            latest = self._latest.get(name, created)
            where = pod_progress(latest) if hook.kind == "Pod" else job_summary(latest)
            why = "the overall deadline (--deadline)" if clipped else "--timeout"
            msg = f"did not finish within {format_duration(budget)} ({why}): {where}"
            evidence = [Mismatch("finished within", format_duration(budget), where)]
            outcome = HookOutcome(Status.FAILED, "Failed", msg, ErrorKind.TIMEOUT, evidence)
        except _Gone:
            outcome = HookOutcome(
                Status.ERROR, "", f"{entry.ref} was deleted by someone else before it finished",
                ErrorKind.NOT_FOUND,
            )  # fmt: skip
        except KubeError as exc:
            outcome = HookOutcome(Status.ERROR, "", f"watching {entry.ref}: {exc}", exc.error_kind)
        except asyncio.CancelledError:
            interrupted = True
            outcome = HookOutcome(Status.SKIPPED, "", "interrupted while it ran")
        completed = time.time()
        # Logs first, whatever happened and whatever the hook's delete policy says.
        latest = self._latest.get(name, created)
        pods: list[Mapping[str, Any]] = []
        try:
            log, pods = await resolutely(collect_logs(self.kube, hook.kind, latest), LOG_BUDGET)
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
        outcome: HookOutcome,
        started: float,
        t0: float,
        details: dict[str, Any],
        log: str | None,
    ) -> CheckResult:
        return hook_result(hook, outcome, self.suite, self._source(hook), started, t0, details, log)

    def _skipped(self, hook: TestHook, reason: str) -> CheckResult:
        return skipped_result(hook, self.suite, self._source(hook), reason)
