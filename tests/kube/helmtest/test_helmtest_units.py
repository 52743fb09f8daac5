"""The pure parts of helm-test, without a cluster: hook order and selection, object names and
labels, the release-record write-back (with a conflicting writer), the suite outcome."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from smokegate.core.results import CheckResult, Status
from smokegate.core.selection import Selection
from smokegate.helm.release import HelmReleaseRecord, decode_release, encode_release
from smokegate.helmtest.hooks import choose, failed_last_time, parse_filters, release_tests
from smokegate.helmtest.objects import RELEASE_LABEL, RUN_LABEL, LastRun, object_name
from smokegate.helmtest.record import record_last_runs
from smokegate.helmtest.runner import HelmTestRun
from smokegate.helmtest.status import container_states, pod_failure, pod_progress
from smokegate.helmtest.target import HelmTestError, LoadedRelease, Target, split_target
from smokegate.kube.client import KubeError


def _hook(
    name: str,
    *,
    kind: str = "Pod",
    weight: Any = None,
    events: Any = ("test",),
    extra_annotations: dict[str, str] | None = None,
    last: str = "",
) -> dict[str, Any]:
    annotations = {"helm.sh/hook": ",".join(events), **(extra_annotations or {})}
    if weight is not None:
        annotations["helm.sh/hook-weight"] = str(weight)
    api = "v1" if kind == "Pod" else "batch/v1" if kind == "Job" else "v1"
    manifest = json.dumps(
        {
            "apiVersion": api,
            "kind": kind,
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"template": {"spec": {}}} if kind == "Job" else {},
        }
    )
    out: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "path": f"c/templates/{name}.yaml",
        "manifest": manifest,
        "events": list(events),
        "last_run": {"phase": last},
    }
    if isinstance(weight, int):
        out["weight"] = weight
    return out  # fmt: skip


def _release(hooks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "myapp", "namespace": "web", "version": 3, "info": {"status": "deployed"},
            "chart": {"metadata": {"name": "myapp", "version": "0.1.0"}}, "manifest": "",
            "hooks": hooks, "config": {"replicas": 2}}  # fmt: skip


HOOKS = [
    _hook("t-late", weight=5, last="Succeeded"),
    _hook("t-b", weight=0, last="Failed"),
    _hook("t-a"),
    _hook("t-bad-weight", weight="x"),  # not an integer: weight 0, as Go's Atoi error does
    _hook("legacy", events=("test-success",), weight=1),
    _hook("install-only", events=("post-install",)),
    _hook("t-job", kind="Job", weight=2, extra_annotations={"smokegate.io/tags": "db, slow"}),
    _hook("t-script", kind="ConfigMap", weight=-1),
]


def _tests() -> list[Any]:
    return release_tests(HelmReleaseRecord.from_json(_release(HOOKS)), "helm release web/myapp v3")


def test_test_hooks_in_helm_order() -> None:
    hooks = _tests()
    assert [(h.name, h.weight) for h in hooks] == [
        ("t-script", -1),
        ("t-a", 0),
        ("t-b", 0),
        ("t-bad-weight", 0),
        ("legacy", 1),
        ("t-job", 2),
        ("t-late", 5),
    ]
    assert [h.name for h in hooks if not h.runnable] == ["t-script"]
    assert next(h for h in hooks if h.name == "t-job").tags == ("db", "slow")


def test_filters_globs_exclusions_and_helm_syntax() -> None:
    f = parse_filters(["t-*", "!*-late", "name=legacy,!name=t-b"])
    assert f.include == ("t-*", "legacy") and f.exclude == ("*-late", "t-b")
    chosen = choose(_tests(), filters=f)
    assert [h.name for h in chosen.tests] == ["t-a", "t-bad-weight", "legacy", "t-job"]
    # The support object is kept: a selected test may mount it.
    assert chosen.selected[0].name == "t-script"
    reasons = {c.hook.name: c.reason for c in chosen.choices if not c.selected}
    assert reasons == {
        "t-b": "excluded by --filter '!t-b'",
        "t-late": "excluded by --filter '!*-late'",
    }
    for bad in ("foo=bar", "!", "name="):
        with pytest.raises(HelmTestError):
            parse_filters([bad])


def test_selection_flags_tags_and_rerun_failed() -> None:
    hooks = _tests()
    by_tag = choose(hooks, selection=Selection(tags=("db",)))
    assert [h.name for h in by_tag.tests] == ["t-job"]
    by_k = choose(hooks, selection=Selection(patterns=("helm-test/t-*", "!t-b*")))
    assert [h.name for h in by_k.tests] == ["t-a", "t-job", "t-late"]
    failed = failed_last_time(hooks, {})
    assert failed == {"t-b"}
    assert failed_last_time(hooks, {"t-a": {"phase": "Failed"}, "t-b": {}}) == {"t-a"}
    rerun = choose(hooks, only=failed)
    assert [h.name for h in rerun.tests] == ["t-b"]
    none = choose(hooks, only=set())
    assert none.tests == [] and none.selected == []  # no support object without a test
    flux = choose(hooks, flux_filters=[{"name": "t-a"}, {"name": "t-job"}])
    assert [h.name for h in flux.tests] == ["t-a", "t-job"]


def test_split_target() -> None:
    # A plain name is a Helm release; everything else names a HelmRelease as `gate` takes it.
    assert split_target("myapp") == (False, None, "myapp")
    assert split_target("myapp", "web") == (False, "web", "myapp")
    assert split_target("hr/podinfo") == (True, None, "podinfo")
    assert split_target("HelmRelease/podinfo", "apps") == (True, "apps", "podinfo")
    assert split_target("apps/podinfo") == (True, "apps", "podinfo")
    assert split_target("hr/apps/podinfo", "apps") == (True, "apps", "podinfo")
    with pytest.raises(HelmTestError, match="is in namespace 'apps' but -n says 'web'"):
        split_target("apps/podinfo", "web")
    for bad in ("", " ", "hr/", "a/b/c", "hr/a/b/c", "deployment.apps/x"):
        with pytest.raises(HelmTestError, match="name a Helm release"):
            split_target(bad)


def test_object_names_fit_63_characters_and_stay_distinct() -> None:
    assert object_name("myapp-test-db", "0123abcd") == "myapp-test-db-sg0123abcd"
    long_a, long_b = "x" * 60 + "-a", "x" * 60 + "-b"
    a, b = object_name(long_a, "0123abcd"), object_name(long_b, "0123abcd")
    assert len(a) <= 63 and len(b) <= 63 and a != b and a.endswith("-sg0123abcd")


def _loaded(storage: str = "web") -> LoadedRelease:
    record = HelmReleaseRecord.from_json(_release(HOOKS))
    return LoadedRelease(Target("myapp", "myapp", "web", storage), record,
                         "sh.helm.release.v1.myapp.v3", "uid-1", "7")  # fmt: skip


def test_build_object_keeps_the_chart_and_adds_the_run_identity() -> None:
    job = next(h for h in _tests() if h.name == "t-job")
    job_obj = dict(job.obj)
    job_obj["spec"] = {
        "ttlSecondsAfterFinished": 0,
        "template": {"metadata": {"labels": {"a": "b"}}},
    }
    job = type(job)(**{**{f: getattr(job, f) for f in job.__dataclass_fields__}, "obj": job_obj})
    run = HelmTestRun(object(), _loaded(), [job], run_id="0123abcd")  # type: ignore[arg-type]
    obj = run.build_object(job, "t-job-sg0123abcd", "web")
    meta = obj["metadata"]
    assert meta["name"] == "t-job-sg0123abcd" and meta["namespace"] == "web"
    assert meta["labels"] == {RUN_LABEL: "0123abcd", RELEASE_LABEL: "myapp"}
    assert meta["annotations"]["helm.sh/hook"] == "test"  # the chart's own stay
    assert meta["annotations"]["smokegate.io/helm-test-hook"] == "t-job"
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "name": "sh.helm.release.v1.myapp.v3",
            "uid": "uid-1",
        }
    ]
    assert "ttlSecondsAfterFinished" not in obj["spec"]
    assert obj["spec"]["template"]["metadata"]["labels"] == {
        "a": "b",
        RUN_LABEL: "0123abcd",
        RELEASE_LABEL: "myapp",
    }
    assert job.obj["metadata"].get("labels") is None  # the hook itself is untouched
    # Storage namespace elsewhere (Flux storageNamespace): no cross-namespace owner.
    other = HelmTestRun(object(), _loaded("flux-system"), [job], run_id="0123abcd")  # type: ignore[arg-type]
    assert "ownerReferences" not in other.build_object(job, "n", "web")["metadata"]


def test_pod_status_in_words() -> None:
    pod = {
        "spec": {"nodeName": "n", "initContainers": [{"name": "wait"}],
                 "containers": [{"name": "test"}, {"name": "side"}]},
        "status": {
            "phase": "Failed",
            "initContainerStatuses": [
                {"name": "wait", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
            ],
            "containerStatuses": [
                {"name": "test", "state": {"terminated": {"exitCode": 2, "reason": "Error"}}},
                {"name": "side", "state": {"waiting": {"reason": "ImagePullBackOff",
                                                       "message": "Back-off pulling image"}}},
            ],
        },
    }  # fmt: skip
    states = container_states(pod)
    assert [(s.name, s.init, s.text) for s in states] == [
        ("wait", True, "exited 0"),
        ("test", False, "exited 2 (Error)"),
        ("side", False, "waiting: ImagePullBackOff (Back-off pulling image)"),
    ]
    assert pod_failure(pod) == "container test exited 2 (Error)"
    pod["status"]["phase"] = "Pending"
    assert pod_progress(pod) == (
        "Pending: container side waiting: ImagePullBackOff (Back-off pulling image)"
    )
    assert pod_progress({"spec": {}, "status": {}}) == "Pending: not scheduled to a node yet"


class _FakeSecrets:
    """Kube stand-in for record.py: a Secret that another writer changes once, in between."""

    def __init__(self, release: dict[str, Any]) -> None:
        payload = encode_release(release)
        self.secret = {
            "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": "sh.helm.release.v1.myapp.v3", "namespace": "web",
                         "resourceVersion": "1",
                         "labels": {"owner": "helm", "name": "myapp", "status": "deployed"}},
            "data": {"release": base64.b64encode(payload.encode()).decode()},
        }  # fmt: skip
        self.puts = 0
        self.conflicted = False

    async def get(self, rt: Any, name: str, namespace: str) -> dict[str, Any]:
        return copy.deepcopy(self.secret)

    async def replace(self, rt: Any, obj: dict[str, Any]) -> dict[str, Any]:
        self.puts += 1
        if not self.conflicted:
            # Flux upgraded meanwhile: the revision is now superseded.
            self.conflicted = True
            self.secret["metadata"]["labels"]["status"] = "superseded"
            self.secret["metadata"]["resourceVersion"] = "2"
            raise KubeError("conflict", code=409)
        assert obj["metadata"]["resourceVersion"] == self.secret["metadata"]["resourceVersion"]
        self.secret = obj
        return obj


async def test_record_retries_on_conflict_and_changes_only_last_run() -> None:
    fake = _FakeSecrets(_release(HOOKS))
    note = await record_last_runs(
        fake,  # type: ignore[arg-type]
        _loaded(),
        {"t-a": LastRun(1700000000.5, 1700000003.25, "Succeeded"),
         "t-job": LastRun(1700000000.0, None, "Failed")},
    )  # fmt: skip
    assert note.startswith("recorded 2 test results in helm release web/myapp v3")
    assert fake.puts == 2
    assert fake.secret["metadata"]["labels"]["status"] == "superseded"  # their write is kept
    stored = base64.b64decode(fake.secret["data"]["release"])
    assert base64.b64decode(stored)[:2] == b"\x1f\x8b"  # still gzip, as Helm writes it
    release = decode_release(stored)
    runs = {h["name"]: h["last_run"] for h in release["hooks"]}
    assert runs["t-a"] == {
        "started_at": "2023-11-14T22:13:20.500000Z",
        "completed_at": "2023-11-14T22:13:23.250000Z",
        "phase": "Succeeded",
    }
    assert runs["t-job"] == {"started_at": "2023-11-14T22:13:20.000000Z", "phase": "Failed"}
    assert runs["t-b"] == {"phase": "Failed"}  # not run: its last result stays
    untouched = _release(HOOKS)
    for h in release["hooks"]:
        h.pop("last_run")
    for h in untouched["hooks"]:
        h.pop("last_run")
    assert release == untouched


def test_suite_outcome_puts_failed_logs_last() -> None:
    from smokegate.checks.helmtest import outcome_of

    def res(name: str, status: Status, log: str, message: str = "") -> CheckResult:
        kind = "expectation" if status is Status.FAILED else None
        return CheckResult(
            name, name, "s", "helm-test", status, message=message, log=log, error_kind=kind
        )

    out = outcome_of(
        [res("a", Status.FAILED, "A failed\n", "pod failed: x"), res("b", Status.PASSED, "B ok\n")],
        {"release": "r"},
    )
    assert not out.ok and out.message == "1 of 2 Helm tests failed: a: pod failed: x"
    assert out.details["log"].index("B ok") < out.details["log"].index("A failed")
    assert out.error_kind == "expectation"


async def test_resolutely_finishes_cleanup_despite_cancellation() -> None:
    import asyncio

    from smokegate.helmtest.cleanup import resolutely

    done: list[str] = []

    async def cleanup() -> str:
        await asyncio.sleep(0.2)
        done.append("cleaned")
        return "ok"

    async def interrupted_run() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            assert await resolutely(cleanup(), 5) == "ok"

    task = asyncio.ensure_future(interrupted_run())
    await asyncio.sleep(0.05)
    task.cancel()  # Ctrl-C
    await asyncio.sleep(0.05)
    task.cancel()  # a second Ctrl-C while cleaning up: cleanup still finishes
    with pytest.raises(asyncio.CancelledError):
        await task
    assert done == ["cleaned"]

    async def stuck() -> None:
        await asyncio.sleep(10)

    with pytest.raises(TimeoutError):
        await resolutely(stuck(), 0.1)

    async def broken() -> None:
        raise KubeError("deleting pod web/x: forbidden", code=403)

    with pytest.raises(KubeError):
        await resolutely(broken(), 1)
