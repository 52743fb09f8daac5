"""``helm-test hr/NAME``: a Flux HelmRelease's tests, with the test playing helm-controller.

helm-controller installs a HelmRelease with targetNamespace B from namespace A as Helm release
``B-<name>``, its objects in B and its release Secrets in A (the storage namespace). The test
reproduces that with the real ``helm`` (install into B, then move the release Secret to A, as
the storage driver would have written it there) and writes the HelmRelease's ``status``
(``history[0].testHooks``, one hook Failed) the way helm-controller does after ``spec.test``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helmtest_cluster import Api, ClusterActors, StandInNode
from helmtest_support import ORDERS_LOG, THREE_HOOKS, Namespace, helm_release, helm_test
from kubeenv import KubeEnv

T0 = "2025-01-01T00:00:00Z"


@pytest.fixture
def target_ns(
    kube_env: KubeEnv, api: Api, stand_in_node: StandInNode
) -> Iterator[tuple[str, ClusterActors]]:
    """A second namespace (the HelmRelease's targetNamespace), with its own actors."""
    ns = f"target-{secrets.token_hex(3)}"
    kube_env.kubectl("create", "namespace", ns)
    a = ClusterActors(api, ns, stand_in_node.name, stand_in_node.logs_dir).start()
    try:
        yield ns, a
    finally:
        a.stop()
        kube_env.kubectl("delete", "namespace", ns, "--wait=false")
    assert not a.errors, a.errors


def _move_release_secret(kube_env: KubeEnv, release: str, src: str, dst: str) -> None:
    secret = kube_env.kubectl_json("get", "secret", f"sh.helm.release.v1.{release}.v1", "-n", src)
    meta = secret["metadata"]
    secret["metadata"] = {"name": meta["name"], "namespace": dst, "labels": meta["labels"]}
    kube_env.kubectl("create", "-f", "-", input=json.dumps(secret))
    kube_env.kubectl("delete", "secret", meta["name"], "-n", src)


def _flux_tested(name: str, ns: str, release: str, target: str) -> dict[str, Any]:
    """helm-controller's status after `spec.test` ran: the middle hook failed, so Helm stopped
    and never ran the Job (no phase)."""
    done = {"lastStarted": T0, "lastCompleted": T0}
    return {
        "observedGeneration": 1,
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "TestFailed", "lastTransitionTime": T0,
             "message": f"Helm test failed for release {target}/{release}.v1 with chart "
                        "myapp@0.1.0: pod myapp-test-orders failed", "observedGeneration": 1},
            {"type": "TestSuccess", "status": "False", "reason": "TestFailed",
             "lastTransitionTime": T0, "message": "pod myapp-test-orders failed",
             "observedGeneration": 1},
        ],
        "history": [{
            "name": release, "namespace": target, "version": 1, "status": "deployed",
            "chartName": "myapp", "chartVersion": "0.1.0", "appVersion": "1.16.0",
            "configDigest": "sha256:" + "c" * 64, "digest": "sha256:" + "d" * 64,
            "firstDeployed": T0, "lastDeployed": T0,
            "testHooks": {
                f"{release}-test-connection": {**done, "phase": "Succeeded"},
                f"{release}-test-orders": {**done, "phase": "Failed"},
                f"{release}-test-db": {},
            },
        }],
    }  # fmt: skip


def test_rerun_failed_reruns_exactly_the_failed_hook_of_a_helmrelease(
    ns: Namespace, target_ns: tuple[str, ClusterActors]
) -> None:
    flux_ns, (target, _) = ns.name, target_ns
    release = f"{target}-myapp"  # Flux: <targetNamespace>-<name>
    # fullnameOverride keeps hook names independent of the (long) release name.
    ns.install(THREE_HOOKS, "--set", "fullnameOverride=myapp", release=release, namespace=target)
    _move_release_secret(ns.kube_env, release, target, flux_ns)
    hr = helm_release(flux_ns, {"enable": True}, targetNamespace=target)
    ns.apply(hr)
    status = _flux_tested("myapp", flux_ns, "myapp", target)
    ns.kube_env.kubectl(
        "patch", "helmrelease", "myapp", "-n", flux_ns, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip

    listed = ns.helm_test("hr/myapp", "--rerun-failed", "--list", code=0)
    assert f"helm release {flux_ns}/{release} v1" in listed.out
    assert f"tests run in namespace {target}" in listed.out
    assert "1 of 3 tests selected" in listed.err

    r = ns.run("hr/myapp", "--rerun-failed", code=1)
    assert ORDERS_LOG in r.out  # its log, in the console
    res = r.results
    assert list(res) == ["myapp-test-orders"]
    assert res["myapp-test-orders"]["details"]["namespace"] == target
    assert ORDERS_LOG in res["myapp-test-orders"]["log"]
    assert ns.left(target) == []
    assert ns.left() == []

    # The HelmRelease's spec.test.filters apply (as Flux would), unless told otherwise.
    hr["spec"]["test"]["filters"] = [{"name": "myapp-test-orders", "exclude": True}]
    ns.apply(hr)
    r = ns.helm_test("hr/myapp", "--list")
    assert "excluded by the HelmRelease's spec.test.filters" in r.out
    assert "2 of 3 tests selected" in r.err
    r = ns.helm_test("hr/myapp", "--list", "--no-flux-filters")
    assert "3 of 3 tests selected" in r.err


def test_record_writes_last_run_so_helm_status_shows_it(
    actors: ClusterActors, ns: Namespace
) -> None:
    ns.install(THREE_HOOKS)
    before = ns.helm("status", "myapp", "-n", ns.name).stdout
    assert "TEST SUITE" not in before or "Phase:          Succeeded" not in before
    r = ns.helm_test("myapp", "--record", code=1)
    assert f"recorded 3 test results in helm release {ns.name}/myapp v1" in r.err
    status = ns.helm("status", "myapp", "-n", ns.name).stdout
    blocks = {
        b.splitlines()[0].split()[-1]: b for b in status.split("TEST SUITE:")[1:] if b.strip()
    }
    assert "Phase:          Succeeded" in blocks["myapp-test-connection"]
    assert "Phase:          Failed" in blocks["myapp-test-orders"]
    assert "Phase:          Succeeded" in blocks["myapp-test-db"]
    # Helm still reads and upgrades the release it wrote, with our change in it.
    ns.helm("upgrade", "myapp", str(ns.make_chart(THREE_HOOKS)), "-n", ns.name)
    history = ns.helm("history", "myapp", "-n", ns.name, "-o", "json").stdout
    assert [h["status"] for h in json.loads(history)] == ["superseded", "deployed"]
    # --rerun-failed reads Helm's own record for a plain release.
    r = ns.helm_test("myapp", "--rerun-failed", "--list")
    assert "0 of 3 tests selected" in r.err  # v2 has not been tested yet


def test_errors_name_the_resource_and_never_show_a_traceback(ns: Namespace) -> None:
    r = ns.helm_test("nope")
    assert (r.code, r.err.strip()) == (2, f"smokegate: helm release {ns.name}/nope: not found")
    r = ns.helm_test("hr/nope")
    assert (r.code, r.err.strip()) == (2, f"smokegate: helmrelease {ns.name}/nope: not found")
    r = ns.helm_test("myapp", "--filter", "foo=bar")
    assert r.code == 2 and "only hook-name globs are supported" in r.err
    r = ns.helm_test()
    assert r.code == 2 and "name a release" in r.err
    r = helm_test(ns.tmp_path / "missing-kubeconfig", "myapp", "-n", ns.name)
    assert r.code == 2 and "missing-kubeconfig" in r.err

    ns.install({})
    r = ns.helm_test("myapp", "--filter", "no-such-*")
    assert r.code == 2 and "no test hook matches the selection" in r.err
    ns.kube_env.kubectl("label", "secret", "sh.helm.release.v1.myapp.v1", "-n", ns.name,
                        "status=failed", "--overwrite")  # fmt: skip
    r = ns.helm_test("myapp")
    assert r.code == 2
    assert r.err.strip() == (
        f"smokegate: helm release {ns.name}/myapp: no deployed revision found (v1 failed)"
    )
    # A token bound to no role: the API's own words, and what permission is missing.
    ns.kube_env.kubectl("create", "serviceaccount", "nobody", "-n", ns.name)
    token = ns.kube_env.kubectl("create", "token", "nobody", "-n", ns.name).stdout.strip()
    limited = ns.tmp_path / "limited.kubeconfig"
    config = json.loads(Path(ns.kubeconfig).read_text())
    config["users"][0]["user"]["token"] = token
    limited.write_text(json.dumps(config))
    r = helm_test(limited, "myapp", "-n", ns.name)
    assert r.code == 4
    assert "forbidden" in r.err and "it needs list on secrets there" in r.err
    assert "Traceback" not in r.text
