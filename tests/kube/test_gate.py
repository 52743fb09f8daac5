"""``smokegate gate`` against a real kube-apiserver, with the test playing Flux helm-controller.

No controller runs here: each test writes the HelmRelease ``status`` through the status
subresource exactly as helm-controller v1.x does (conditions, observedGeneration, history), while
the real CLI (a subprocess) waits, runs a suite and reports back.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from fixtures_flux import (  # noqa: F401  (*_fixture: fixtures, used by name)
    NotifyServer,
    apply,
    cond,
    events_for,
    helmrelease,
    kubeconfig_fixture,
    notify_server_fixture,
    patch_status,
    snapshot,
    start_cli,
    status_ready,
    status_reconciling,
    status_upgrade_failed,
)
from kubeenv import KubeEnv
from tests.helpers import load_json, run_cli, write_suite

SUITE = """
- name: config-for-${release.name}-${release.revision}
  kube:
    exists: {kind: ConfigMap, name: "${release.name}-config"}
- name: release-ready
  kube:
    ready: {kind: HelmRelease, name: podinfo, namespace: "${release.namespace}"}
"""


def _upgrading(env: KubeEnv, ns: str) -> None:
    """podinfo was at 6.6.1 (generation 1); a merge bumped it to 6.6.2 (generation 2) and
    helm-controller is mid-upgrade."""
    env.kubectl("create", "configmap", "podinfo-config", "-n", ns)
    hr = helmrelease("podinfo", ns)
    apply(env, hr)
    patch_status(env, "hr", "podinfo", ns, status_ready("podinfo", ns, 1, "6.6.1", version=1))
    hr["spec"]["chart"]["spec"]["version"] = "6.6.2"
    assert apply(env, hr)["metadata"]["generation"] == 2
    patch_status(
        env,
        "hr",
        "podinfo",
        ns,
        status_reconciling(2, "6.6.2", snapshot("podinfo", ns, "6.6.1", version=1)),
    )


def _ready(env: KubeEnv, ns: str, revision: str = "6.6.2", **kw: object) -> None:
    patch_status(env, "hr", "podinfo", ns, status_ready("podinfo", ns, 2, revision, **kw))


def test_gate_waits_for_the_revision_then_runs_the_suite(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    _upgrading(kube_env, ns)
    suite = write_suite(tmp_path, SUITE)
    report = tmp_path / "report.json"
    gate = start_cli(
        "gate", "helmrelease/podinfo", "-n", ns, "--revision", "6.6.2", "--timeout", "60s",
        "--kubeconfig", kubeconfig, str(suite), "--report", f"json={report}",
    )  # fmt: skip
    # The gate shows Flux's own progress message while it waits.
    gate.wait_for_stderr("Running 'upgrade' action with timeout of 5m0s")
    time.sleep(0.3)
    assert gate.proc.poll() is None, "the gate must wait while Flux is reconciling"

    _ready(kube_env, ns)  # helm-controller finishes the upgrade at 6.6.2
    code, out, err, _ = gate.finish()

    assert code == 0, out + err
    assert "helmrelease " + ns + "/podinfo is ready: Ready=True (UpgradeSucceeded)" in err
    assert "t/config-for-podinfo-6.6.2" in out  # ${release.name} and ${release.revision}
    assert "PASSED 2 passed" in out
    data = load_json(report)
    assert data["context"]["release"] == {
        "name": "podinfo",
        "namespace": ns,
        "revision": "6.6.2",
        "appVersion": "6.6.2",
        "digest": "sha256:" + "d" * 64,
        "chart": "podinfo",
        "version": 2,
    }
    assert data["context"]["helmRelease"] == f"{ns}/podinfo"

    # Reported back where Flux users look: an Event on the HelmRelease in the real apiserver.
    events = events_for(kube_env, ns, "podinfo")
    assert len(events) == 1, events
    ev = events[0]
    assert (ev["type"], ev["reason"], ev["message"]) == (
        "Normal",
        "SmokeTestSucceeded",
        "2 passed, 0 failed",
    )
    assert ev["source"]["component"] == "smokegate" and ev["reportingComponent"] == "smokegate"
    assert ev["involvedObject"]["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    hr_uid = kube_env.kubectl_json("get", "hr", "podinfo", "-n", ns)["metadata"]["uid"]
    assert ev["involvedObject"]["uid"] == hr_uid
    # ... and `kubectl describe hr` shows it, as `flux events` would.
    described = kube_env.kubectl("describe", "hr", "podinfo", "-n", ns).stdout
    assert re.search(r"Normal\s+SmokeTestSucceeded\s+.*smokegate\s+2 passed, 0 failed", described)


def test_a_stale_ready_of_the_previous_generation_is_not_trusted(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    """`kubectl wait --for=condition=ready` would pass here: Ready=True, but for generation 1."""
    ns = kube_namespace
    kube_env.kubectl("create", "configmap", "podinfo-config", "-n", ns)
    hr = helmrelease("podinfo", ns)
    apply(kube_env, hr)
    patch_status(kube_env, "hr", "podinfo", ns, status_ready("podinfo", ns, 1, "6.6.1", version=1))
    hr["spec"]["values"] = {"replicaCount": 2}  # a spec change: generation 2, not observed yet
    apply(kube_env, hr)
    gate = start_cli(
        "gate", f"{ns}/podinfo", "--timeout", "60s", "--kubeconfig", kubeconfig,
        str(write_suite(tmp_path, SUITE)),
    )  # fmt: skip
    gate.wait_for_stderr("generation 2 not reconciled yet (observed 1)")
    _ready(kube_env, ns, "6.6.1")
    code, out, err, _ = gate.finish()
    assert code == 0, out + err


def test_gate_exits_1_when_a_check_fails(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    _upgrading(kube_env, ns)
    _ready(kube_env, ns)
    suite = write_suite(
        tmp_path,
        SUITE
        + """
- name: missing-thing
  kube:
    exists: {kind: Service, name: not-there}
""",
    )
    r = run_cli("gate", "hr/podinfo", "-n", ns, "--kubeconfig", kubeconfig, str(suite))
    assert r.code == 1, r.text
    assert f"service {ns}/not-there: not found" in r.out
    assert "Traceback" not in r.text
    (ev,) = events_for(kube_env, ns, "podinfo")
    assert (ev["type"], ev["reason"]) == ("Warning", "SmokeTestFailed")
    assert ev["message"] == "2 passed, 1 failed: t/missing-thing"


def test_upgrade_failed_exits_3_within_a_second_with_fluxs_message(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    _upgrading(kube_env, ns)
    gate = start_cli(
        "gate", "hr/podinfo", "-n", ns, "--revision", "6.6.2", "--timeout", "60s",
        "--kubeconfig", kubeconfig, str(write_suite(tmp_path, SUITE)),
    )  # fmt: skip
    gate.wait_for_stderr("waiting for helmrelease")
    flipped = time.monotonic()
    patch_status(kube_env, "hr", "podinfo", ns, status_upgrade_failed("podinfo", ns, 2, "6.6.2"))
    code, out, err, ended = gate.finish()

    assert code == 3, out + err
    assert ended - flipped < 1.0, f"took {ended - flipped:.2f}s after Flux reported the failure"
    assert "Ready=False (UpgradeFailed)" in err
    assert (
        f"Helm upgrade failed for release {ns}/podinfo with chart podinfo@6.6.2: "
        "context deadline exceeded"
    ) in err
    assert "Traceback" not in err and out == ""  # nothing ran
    assert events_for(kube_env, ns, "podinfo") == []


def test_already_failed_release_fails_fast(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    _upgrading(kube_env, ns)
    status = status_upgrade_failed("podinfo", ns, 2, "6.6.2")
    status["conditions"].append(
        cond("Stalled", "True", "RetriesExceeded", "Failed to upgrade after 1 attempt(s)", 2)
    )
    patch_status(kube_env, "hr", "podinfo", ns, status)
    started = time.monotonic()
    r = run_cli(
        "gate", "hr/podinfo", "-n", ns, "--timeout", "60s", "--kubeconfig", kubeconfig,
        str(write_suite(tmp_path, SUITE)),
    )  # fmt: skip
    assert r.code == 3, r.text
    assert time.monotonic() - started < 5
    assert "stalled: Stalled=True (RetriesExceeded): Failed to upgrade after 1 attempt(s)" in r.err


def test_no_change_before_the_timeout_exits_3(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    _upgrading(kube_env, ns)
    started = time.monotonic()
    r = run_cli(
        "gate", "hr/podinfo", "-n", ns, "--revision", "6.6.2", "--timeout", "5s",
        "--kubeconfig", kubeconfig, str(write_suite(tmp_path, SUITE)),
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert r.code == 3, r.text
    assert 5 <= elapsed < 15, elapsed
    assert f"helmrelease {ns}/podinfo not ready after 5" in r.err
    assert "Running 'upgrade' action" in r.err  # the last thing Flux said
    assert "Traceback" not in r.err


def test_check_errors_fail_before_the_wait(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    """A typo in a check is exit 2 at once, not after waiting up to --timeout for Flux."""
    ns = kube_namespace
    _upgrading(kube_env, ns)  # never becomes ready: a wait would last the whole timeout
    suite = write_suite(
        tmp_path,
        """
        - name: version
          http:
            url: "http://podinfo/${release.appVersion}"
            expect: {statuss: 200}
        """,
    )
    started = time.monotonic()
    r = run_cli(
        "gate", "hr/podinfo", "-n", ns, "--timeout", "60s", "--kubeconfig", kubeconfig, str(suite)
    )  # fmt: skip
    assert r.code == 2, r.text
    assert time.monotonic() - started < 15
    assert f"{suite}:9:18: unknown field 'statuss'" in r.err
    assert "waiting for" not in r.err


def test_waiting_for_a_revision_flux_has_not_released(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    _upgrading(kube_env, ns)
    _ready(kube_env, ns, "6.6.2+0cc9a8446c95")  # Flux appends the OCI digest as build metadata
    suite = str(write_suite(tmp_path, SUITE))
    r = run_cli(
        "gate", "hr/podinfo", "-n", ns, "--revision", "6.6.2", "--kubeconfig", kubeconfig, suite
    )
    assert r.code == 0, r.text
    r = run_cli(
        "gate", "hr/podinfo", "-n", ns, "--revision", "6.7.0", "--timeout", "2s",
        "--kubeconfig", kubeconfig, suite,
    )  # fmt: skip
    assert r.code == 3
    assert "waiting for revision 6.7.0 (released: 6.6.2+0cc9a8446c95)" in r.err


def test_missing_helmrelease_times_out_naming_it(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    r = run_cli(
        "gate", "hr/nope", "-n", kube_namespace, "--timeout", "2s", "--kubeconfig", kubeconfig,
        str(write_suite(tmp_path, SUITE)),
    )  # fmt: skip
    assert r.code == 3
    assert f"helmrelease {kube_namespace}/nope not ready after" in r.err
    assert "not found (yet)" in r.err


def test_target_forms_and_usage_errors(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    _upgrading(kube_env, ns)
    _ready(kube_env, ns)
    suite = str(write_suite(tmp_path, SUITE))
    for target, extra in (
        ("helmrelease/podinfo", ["-n", ns]),
        ("hr/podinfo", ["-n", ns]),
        (f"{ns}/podinfo", []),
        (f"hr/{ns}/podinfo", []),
    ):
        r = run_cli("gate", target, *extra, "--kubeconfig", kubeconfig, "--no-event", suite)
        assert r.code == 0, (target, r.text)
    r = run_cli("gate", f"{ns}/podinfo", "-n", "other", "--kubeconfig", kubeconfig, suite)
    assert r.code == 2 and "but -n says 'other'" in r.err
    r = run_cli("gate", "deployment.apps/podinfo", "--kubeconfig", kubeconfig, suite)
    assert r.code == 2 and "only HelmReleases" in r.err
    r = run_cli("gate", "hr/podinfo", "--timeout", "soon", suite)
    assert r.code == 2 and "not a duration" in r.err
    r = run_cli("gate", "hr/podinfo", "--context", "nope", "--kubeconfig", kubeconfig, suite)
    assert r.code == 2 and "context 'nope' not found" in r.err
    # A broken suite is reported before any waiting (exit 2, no wait for --timeout).
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: smokegate.io/v1\nkind: Suite\nmetadata: {name: b}\nspec: {checks: 3}\n"
    )
    r = run_cli("gate", "hr/absent", "-n", ns, "--kubeconfig", kubeconfig, str(bad))
    assert r.code == 2, r.text


def test_release_facts_follow_target_namespace(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    """HelmRelease in one namespace, workloads in spec.targetNamespace: `kube` checks and
    Secret references default to the release namespace, as ${release.namespace} says."""
    ns = kube_namespace
    target = f"{ns}-w"[:63]
    kube_env.kubectl("create", "namespace", target)
    try:
        kube_env.kubectl("create", "configmap", f"{target}-podinfo-config", "-n", target)
        apply(kube_env, helmrelease("podinfo", ns, targetNamespace=target))
        status = status_ready("podinfo", ns, 1, "6.6.1", version=1)
        status["history"] = [snapshot(f"{target}-podinfo", target, "6.6.1")]
        patch_status(kube_env, "hr", "podinfo", ns, status)
        suite = write_suite(
            tmp_path,
            """
- name: in-${release.namespace}
  kube:
    exists: {kind: ConfigMap, name: "${release.name}-config"}
""",
        )
        r = run_cli("gate", "hr/podinfo", "-n", ns, "--kubeconfig", kubeconfig, str(suite))
        assert r.code == 0, r.text
        assert f"t/in-{target}" in r.out
        assert len(events_for(kube_env, ns, "podinfo")) == 1  # the Event is on the HelmRelease
    finally:
        kube_env.kubectl("delete", "namespace", target, "--wait=false")


# --- Flux's Helm test results ------------------------------------------------------------------

HOOKS = {
    "podinfo-grpc-test-a1b2c": {
        "lastStarted": "2025-01-01T00:00:01Z",
        "lastCompleted": "2025-01-01T00:00:04Z",
        "phase": "Succeeded",
    },
    "podinfo-jwt-test-d3e4f": {
        "lastStarted": "2025-01-01T00:00:04Z",
        "lastCompleted": "2025-01-01T00:00:09Z",
        "phase": "Failed",
    },
    "podinfo-service-test-g5h6i": {},  # never started: Helm stops at the first failed test
}


def _tested(env: KubeEnv, ns: str, *, success: bool) -> None:
    hooks = HOOKS if not success else {"podinfo-grpc-test-a1b2c": HOOKS["podinfo-grpc-test-a1b2c"]}
    env.kubectl("create", "configmap", "podinfo-config", "-n", ns)
    # test.ignoreFailures: a failed test leaves Ready=True (TestSuccess=False only).
    apply(env, helmrelease("podinfo", ns, test={"enable": True, "ignoreFailures": True}))
    patch_status(
        env,
        "hr",
        "podinfo",
        ns,
        status_ready("podinfo", ns, 1, "6.6.1", version=1, test_hooks=hooks, test_success=success),
    )


def test_flux_helm_tests_become_test_cases(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    _tested(kube_env, ns, success=False)
    report = tmp_path / "r.json"
    suite = str(write_suite(tmp_path, SUITE))
    r = run_cli(
        "gate",
        "hr/podinfo",
        "-n",
        ns,
        "--kubeconfig",
        kubeconfig,
        suite,
        "--report",
        f"json={report}",
    )
    assert r.code == 1, r.text
    results = {x["id"]: x for x in load_json(report)["results"]}
    assert results["helm-test/podinfo-grpc-test-a1b2c"]["status"] == "passed"
    assert results["helm-test/podinfo-grpc-test-a1b2c"]["kind"] == "helm-test"
    assert results["helm-test/podinfo-grpc-test-a1b2c"]["duration"] == 3.0
    failed = results["helm-test/podinfo-jwt-test-d3e4f"]
    assert failed["status"] == "failed"
    assert "Helm test failed: pod failed" in failed["message"]  # TestSuccess's message
    assert results["helm-test/podinfo-service-test-g5h6i"]["status"] == "skipped"
    assert results["t/release-ready"]["status"] == "passed"  # the suite still ran
    assert "helm-test/podinfo-jwt-test-d3e4f" in r.out
    (ev,) = events_for(kube_env, ns, "podinfo")
    assert ev["message"] == "3 passed, 1 failed: helm-test/podinfo-jwt-test-d3e4f"

    r = run_cli(
        "gate", "hr/podinfo", "-n", ns, "--kubeconfig", kubeconfig, "--ignore-helm-tests", suite
    )
    assert r.code == 0, r.text
    assert "ignored: --ignore-helm-tests" in r.out


def test_passing_helm_tests_pass(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    _tested(kube_env, kube_namespace, success=True)
    r = run_cli(
        "gate", "hr/podinfo", "-n", kube_namespace, "--kubeconfig", kubeconfig,
        str(write_suite(tmp_path, SUITE)),
    )  # fmt: skip
    assert r.code == 0, r.text
    assert "✓ helm-test/podinfo-grpc-test-a1b2c" in r.out
    assert "PASSED 3 passed" in r.out


def test_gate_waits_for_flux_helm_tests_to_finish(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    """Ready=True after the upgrade is not final while tests are enabled (helm-controller#717)."""
    ns = kube_namespace
    kube_env.kubectl("create", "configmap", "podinfo-config", "-n", ns)
    apply(kube_env, helmrelease("podinfo", ns, test={"enable": True}))
    patch_status(kube_env, "hr", "podinfo", ns, status_ready("podinfo", ns, 1, "6.6.1", version=1))
    gate = start_cli(
        "gate", "hr/podinfo", "-n", ns, "--timeout", "60s", "--kubeconfig", kubeconfig,
        str(write_suite(tmp_path, SUITE)),
    )  # fmt: skip
    gate.wait_for_stderr("waiting for Flux's Helm tests")
    patch_status(
        kube_env,
        "hr",
        "podinfo",
        ns,
        status_ready(
            "podinfo", ns, 1, "6.6.1", version=1,
            test_hooks={"podinfo-grpc-test-a1b2c": HOOKS["podinfo-grpc-test-a1b2c"]},
            test_success=True,
        ),
    )  # fmt: skip
    code, out, err, _ = gate.finish()
    assert code == 0, out + err
    assert "helm-test/podinfo-grpc-test-a1b2c" in out


# --- --notify-flux ---------------------------------------------------------------------------


def test_notify_flux_posts_a_flux_event(
    kube_env: KubeEnv,
    kube_namespace: str,
    kubeconfig: str,
    tmp_path: Path,
    notify_server: NotifyServer,
) -> None:
    ns = kube_namespace
    _upgrading(kube_env, ns)
    _ready(kube_env, ns)
    failing = SUITE + "\n- name: broken\n  kube:\n    exists: {kind: Secret, name: nope}\n"
    r = run_cli(
        "gate", "hr/podinfo", "-n", ns, "--kubeconfig", kubeconfig, "--revision", "6.6.2",
        "--notify-flux", notify_server.url, str(write_suite(tmp_path, failing)),
    )  # fmt: skip
    assert r.code == 1, r.text
    assert f"notified Flux at {notify_server.url}: HTTP 202" in r.err
    (req,) = notify_server.received
    assert req.headers["content-type"] == "application/json"
    assert req.headers["gotk-component"] == "smokegate"
    body = req.json()
    hr = kube_env.kubectl_json("get", "hr", "podinfo", "-n", ns)
    # flux_helm.md §3.2: a serialized eventv1.Event, these fields and no others.
    assert set(body) == {
        "involvedObject", "severity", "timestamp", "message", "reason", "metadata",
        "reportingController", "reportingInstance",
    }  # fmt: skip
    assert body["involvedObject"] == {
        "kind": "HelmRelease",
        "namespace": ns,
        "name": "podinfo",
        "uid": hr["metadata"]["uid"],
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "resourceVersion": hr["metadata"]["resourceVersion"],
    }
    assert body["severity"] == "error"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["timestamp"])
    assert body["reason"] == "SmokeTestFailed"
    assert body["message"] == "2 passed, 1 failed: t/broken"
    assert body["reportingController"] == "smokegate"
    assert isinstance(body["reportingInstance"], str) and body["reportingInstance"]
    meta = body["metadata"]
    assert all(isinstance(v, str) for v in meta.values())
    assert meta["revision"] == "6.6.2"
    assert meta["summary"].startswith("smoke tests failed for podinfo 6.6.2")
    # What notification-controller keeps and forwards (group-prefixed keys, prefix stripped).
    assert meta["helm.toolkit.fluxcd.io/revision"] == "6.6.2"
    assert meta["helm.toolkit.fluxcd.io/summary"] == meta["summary"]


def test_notify_flux_success_and_unreachable(
    kube_env: KubeEnv,
    kube_namespace: str,
    kubeconfig: str,
    tmp_path: Path,
    notify_server: NotifyServer,
) -> None:
    ns = kube_namespace
    _upgrading(kube_env, ns)
    _ready(kube_env, ns)
    suite = str(write_suite(tmp_path, SUITE))
    r = run_cli(
        "gate", "hr/podinfo", "-n", ns, "--kubeconfig", kubeconfig, "--notify-flux",
        notify_server.url, suite,
    )  # fmt: skip
    assert r.code == 0, r.text
    body = notify_server.received[0].json()
    assert (body["severity"], body["reason"], body["message"]) == (
        "info",
        "SmokeTestSucceeded",
        "2 passed, 0 failed",
    )
    # A notification that cannot be delivered is a warning; the suite's verdict stands.
    notify_server.status[0] = 400
    r = run_cli(
        "gate", "hr/podinfo", "-n", ns, "--kubeconfig", kubeconfig, "--notify-flux",
        notify_server.url, suite,
    )  # fmt: skip
    assert r.code == 0, r.text
    assert f"warning: could not notify Flux at {notify_server.url}: HTTP 400" in r.err
    r = run_cli("gate", "hr/podinfo", "-n", ns, "--notify-flux", "ftp://x", suite)
    assert r.code == 2 and "--notify-flux" in r.err


def test_event_payload_is_json_serializable_for_every_outcome() -> None:
    """Unit-level: the builder never emits non-string metadata (Go's map[string]string)."""
    from smokegate.flux.helmrelease import release_facts
    from smokegate.flux.notify import GateOutcome, build_event

    facts = release_facts(
        {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "a", "namespace": "b", "uid": "u", "resourceVersion": "1"},
            "status": {"history": [{"chartVersion": "1.0.0", "version": 3}]},
        }
    )
    outcome = GateOutcome(False, 1, 2, ("s/x", "s/y"), 3, 1.5)
    body = json.loads(json.dumps(build_event(facts, outcome)))
    assert body["message"] == "1 passed, 2 failed: s/x, s/y"
    assert all(isinstance(v, str) for v in body["metadata"].values())
    many = GateOutcome(False, 0, 500, tuple(f"suite/check-{i}" for i in range(500)), 500, 1.0)
    assert len(many.message(200)) <= 200 and "more)" in many.message(200)


# --- status semantics, unit-level (the shapes above, without a process per case) ---------------


def _hr(generation: int, *conditions: dict, observed: int | None = None, **status: object) -> dict:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "podinfo", "namespace": "apps", "generation": generation},
        "spec": status.pop("spec", {}),
        "status": {
            "observedGeneration": generation if observed is None else observed,
            "conditions": list(conditions),
            **status,
        },
    }


def test_terminal_reasons_and_what_is_not_terminal() -> None:
    from smokegate.flux.helmrelease import TERMINAL_REASONS, evaluate

    for reason in sorted(TERMINAL_REASONS):
        state = evaluate(_hr(2, cond("Ready", "False", reason, "boom", 2)))
        assert state.terminal and not state.ready, reason
        assert state.summary == f"Ready=False ({reason}): boom"
    for reason in ("Progressing", "DependencyNotReady", "ArtifactFailed", "TestFailed"):
        state = evaluate(_hr(2, cond("Ready", "False", reason, "wait", 2)))
        assert not state.terminal and not state.ready, reason
    # A failure of the previous generation is stale: helm-controller has not acted on the new spec.
    stale = evaluate(_hr(3, cond("Ready", "False", "UpgradeFailed", "old", 2), observed=2))
    assert not stale.terminal and "generation 3 not reconciled yet" in stale.summary
    # A failure of another revision than the one the gate waits for is not this revision's.
    other = _hr(2, cond("Ready", "False", "UpgradeFailed", "x", 2), lastAttemptedRevision="6.6.1")
    assert not evaluate(other, "6.6.2").terminal
    assert evaluate(other, "6.6.1").terminal
    stalled = _hr(
        2, cond("Stalled", "True", "RetriesExceeded", "Failed to install after 3 attempt(s)", 2)
    )
    assert evaluate(stalled).terminal


def test_suspended_and_test_failures() -> None:
    from smokegate.checks.kube import object_readiness as kube_ready
    from smokegate.flux.helmrelease import evaluate

    suspended = _hr(
        2, cond("Ready", "True", "UpgradeSucceeded", "ok", 1), observed=1, spec={"suspend": True}
    )
    state = evaluate(suspended)
    assert state.terminal and "suspended (spec.suspend: true)" in state.summary
    deployed_tests_failed = _hr(
        1,
        cond("Ready", "False", "TestFailed", "Helm test failed", 1),
        cond("Released", "True", "UpgradeSucceeded", "ok", 1),
        cond("TestSuccess", "False", "TestFailed", "Helm test failed", 1),
        spec={"test": {"enable": True}},
    )
    assert evaluate(deployed_tests_failed, accept_test_failure=True).ready  # the gate goes on
    assert not kube_ready(deployed_tests_failed).ready  # kube.ready says no


def test_release_facts_name_the_helm_release_like_helm_controller() -> None:
    import hashlib

    from smokegate.flux.helmrelease import release_facts

    hr: dict[str, Any] = {"metadata": {"name": "podinfo"}, "spec": {"targetNamespace": "apps"}}
    assert release_facts(hr).name == "apps-podinfo"  # no history yet: derived as Flux does
    hr["spec"]["releaseName"] = "custom"
    assert release_facts(hr).name == "custom"
    long = "x" * 60
    expected = long[:40] + "-" + hashlib.sha256(long.encode()).hexdigest()[:12]
    assert release_facts({"metadata": {"name": long}, "spec": {}}).name == expected
    hr["status"] = {"history": [{"name": "from-history"}]}
    assert release_facts(hr).name == "from-history"


def test_parse_target_forms() -> None:
    import pytest

    from smokegate.core.errors import UsageError
    from smokegate.flux.helmrelease import parse_target

    for text, ns, expected in (
        ("podinfo", None, (None, "podinfo")),
        ("podinfo", "apps", ("apps", "podinfo")),
        ("hr/podinfo", "apps", ("apps", "podinfo")),
        ("HelmRelease/podinfo", None, (None, "podinfo")),
        ("helmreleases/podinfo", None, (None, "podinfo")),
        ("helmreleases.helm.toolkit.fluxcd.io/podinfo", None, (None, "podinfo")),
        ("apps/podinfo", None, ("apps", "podinfo")),
        ("apps/podinfo", "apps", ("apps", "podinfo")),
        ("hr/apps/podinfo", None, ("apps", "podinfo")),
        (" hr/podinfo ", None, (None, "podinfo")),
    ):
        assert parse_target(text, ns) == expected, text
    with pytest.raises(UsageError, match="is in namespace 'apps' but -n says 'web'"):
        parse_target("hr/apps/podinfo", "web")
    with pytest.raises(UsageError, match="only HelmReleases"):
        parse_target("deployment.apps/podinfo", None)
    for bad in ("", "hr/", "a/b/c", "hr/a/b/c", "/podinfo", "apps/"):
        with pytest.raises(UsageError, match="use helmrelease/NAME, hr/NAME or NAMESPACE/NAME"):
            parse_target(bad, None)


def test_trigger_timeout_is_a_duration() -> None:
    from smokegate.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["trigger", "hr/podinfo", "-n", "apps", "--timeout", "1m30s"])
    assert args.timeout == 90.0
    assert parser.parse_args(["trigger", "apps/podinfo"]).timeout == 900.0
    for bad in ("-5", "-5s", "soon"):
        r = run_cli("trigger", "apps/podinfo", f"--timeout={bad}")
        assert r.code == 2 and "not a duration" in r.err, (bad, r.text)
