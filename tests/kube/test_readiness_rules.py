"""``kube: {ready: …}`` read exactly as kstatus reads objects (kubernetes-sigs/cli-utils
``pkg/kstatus/status``), rule by rule (issue 17, rules 1-8).

Each rule has a table of objects written from the upstream function named in its docstring
(pure: ``smokegate.kube.readiness.evaluate`` on the dict), and the rules end to end through the
real test apiserver: objects created there (so the API server's own defaults apply, e.g.
``progressDeadlineSeconds: 600``, a StatefulSet's ``partition: 0``, a Service's cluster IP),
their ``status`` written through the status subresource as the controllers and the kubelet
would (none runs here: the only fake), then checked by the real CLI. CustomResourceDefinition
conditions are the real apiserver's own (its apiextensions controllers run in-process).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fixtures_flux import apply, cond, helmrelease, kubeconfig_fixture, patch_status  # noqa: F401
from fixtures_flux import status_ready as hr_status_ready
from kubeenv import KubeEnv
from tests.helpers import load_json, run_cli, write_suite

from smokegate.flux.helmrelease import evaluate as evaluate_helmrelease
from smokegate.kube.readiness import evaluate

DELETED_AT = "2025-01-01T00:00:00Z"
MAX_INT32 = 2**31 - 1


def obj(api_version: str, kind: str, spec: Any = None, status: Any = None, **meta: Any) -> dict:
    out: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ns", "generation": 1, **meta},
    }
    if spec is not None:
        out["spec"] = spec
    if status is not None:
        out["status"] = status
    return out


def c(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def check(o: dict[str, Any], ready: bool, fragment: str, terminal: bool | None = None, **kw: Any):
    state = evaluate(o, **kw)
    assert state.ready is ready, state
    assert fragment in " | ".join([state.summary, *state.details]), state
    if terminal is not None:
        assert state.terminal is terminal, state


# --- rule 1: deletionTimestamp -----------------------------------------------------------------

DEPLOYMENT_READY = {
    "observedGeneration": 1,
    "replicas": 1,
    "updatedReplicas": 1,
    "readyReplicas": 1,
    "availableReplicas": 1,
    "conditions": [
        c("Available", "True", "MinimumReplicasAvailable"),
        c("Progressing", "True", "NewReplicaSetAvailable"),
    ],
}
HR_READY = {
    "observedGeneration": 1,
    "conditions": [
        {
            **c("Ready", "True", "UpgradeSucceeded", "Helm upgrade succeeded"),
            "observedGeneration": 1,
        }
    ],
}

TERMINATING = [
    obj("apps/v1", "Deployment", {"replicas": 1, "progressDeadlineSeconds": 600}, DEPLOYMENT_READY),
    obj("v1", "Pod", {}, {"phase": "Running", "conditions": [c("Ready", "True")]}),
    obj("v1", "Service", {"type": "ClusterIP", "clusterIP": "10.0.0.1"}),
    obj("v1", "ConfigMap"),  # no status at all: would be "exists"
    obj(
        "example.com/v1",
        "Widget",
        {},
        {"observedGeneration": 1, "conditions": [c("Ready", "True")]},
    ),
    obj("helm.toolkit.fluxcd.io/v2", "HelmRelease", {}, HR_READY),
    obj(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        {},
        {"conditions": [c("Established", "True")]},
    ),
]


@pytest.mark.parametrize("o", TERMINATING, ids=lambda o: o["kind"])
def test_rule1_a_deletion_timestamp_means_terminating_before_any_other_rule(o: dict) -> None:
    """cli-utils ``pkg/kstatus/status/generic.go`` ``checkGenericProperties``: a set
    ``metadata.deletionTimestamp`` is ``TerminatingStatus``, decided before the generation check
    and before every kind's own rule (``status.go`` ``Compute``)."""
    check(o, True, "")  # each object is ready without the timestamp...
    deleting = json.loads(json.dumps(o))
    deleting["metadata"]["deletionTimestamp"] = DELETED_AT
    deleting["metadata"]["finalizers"] = ["example.com/cleanup"]
    state = evaluate(deleting)
    assert not state.ready
    assert state.summary == (
        f"Terminating: scheduled for deletion (metadata.deletionTimestamp {DELETED_AT}); "
        "waiting for finalizers: example.com/cleanup"
    )
    assert state.terminal is False  # kstatus: Terminating, not Failed


def test_rule1_helmrelease_readiness_for_the_gate_is_terminating_too() -> None:
    """``generic.go`` ``checkGenericProperties`` applies to HelmReleases as well; the gate and the
    watch read them through ``smokegate.flux.helmrelease.evaluate``, which must agree."""
    hr = TERMINATING[5]
    assert evaluate_helmrelease(hr).ready
    deleting = {**hr, "metadata": {**hr["metadata"], "deletionTimestamp": DELETED_AT}}
    state = evaluate_helmrelease(deleting)
    assert (state.ready, state.terminal, state.reason) == (False, False, "Terminating")
    assert (
        state.summary
        == f"Terminating: scheduled for deletion (metadata.deletionTimestamp {DELETED_AT})"
    )
    # ... whatever the revision asked for, and also when tests failures are accepted.
    assert not evaluate_helmrelease(deleting, "6.6.1", accept_test_failure=True).ready


# --- rule 2: Deployment conditions -------------------------------------------------------------

COUNTS_MET = {k: v for k, v in DEPLOYMENT_READY.items() if k != "conditions"}
AVAILABLE = c("Available", "True", "MinimumReplicasAvailable")
UNAVAILABLE = c(
    "Available",
    "False",
    "MinimumReplicasUnavailable",
    "Deployment does not have minimum availability.",
)
NEW_RS = c(
    "Progressing", "True", "NewReplicaSetAvailable", 'ReplicaSet "x-1" has successfully progressed.'
)
UPDATING = c("Progressing", "True", "ReplicaSetUpdated", 'ReplicaSet "x-2" is progressing.')
DEADLINE = c(
    "Progressing",
    "False",
    "ProgressDeadlineExceeded",
    'ReplicaSet "x-2" has timed out progressing.',
)

DEPLOYMENT_CASES = [
    # (progressDeadlineSeconds, conditions, ready, evidence fragment)
    (600, [AVAILABLE, NEW_RS], True, "1/1 replicas ready, updated and available"),
    (
        600,
        [AVAILABLE, UPDATING],
        False,
        "rollout not complete: needs Progressing=True (NewReplicaSetAvailable), "
        "has Progressing=True (ReplicaSetUpdated)",
    ),
    (600, [AVAILABLE], False, "has no Progressing condition"),
    (
        600,
        [UNAVAILABLE, NEW_RS],
        False,
        "not available: needs Available=True, has Available=False "
        "(MinimumReplicasUnavailable): Deployment does not have minimum availability.",
    ),
    (600, [], False, "not available: needs Available=True, has no Available condition"),
    # Without a deadline the controller never writes Progressing: only Available counts...
    (None, [AVAILABLE], True, "ready"),
    (None, [], False, "needs Available=True"),
    # ...and MaxInt32 is the controller's "no deadline" (deployment_util.go).
    (MAX_INT32, [AVAILABLE], True, "ready"),
]


@pytest.mark.parametrize(("deadline", "conds", "ready", "fragment"), DEPLOYMENT_CASES)
def test_rule2_deployment_needs_new_replicaset_available_and_available(
    deadline: int | None, conds: list, ready: bool, fragment: str
) -> None:
    """cli-utils ``pkg/kstatus/status/core.go`` ``deploymentConditions``: with
    ``spec.progressDeadlineSeconds`` set (not MaxInt32) it needs ``Progressing=True`` with reason
    ``NewReplicaSetAvailable``; in every case ``Available=True``; both after the replica counts."""
    spec: dict[str, Any] = {"replicas": 1}
    if deadline is not None:
        spec["progressDeadlineSeconds"] = deadline
    check(obj("apps/v1", "Deployment", spec, {**COUNTS_MET, "conditions": conds}), ready, fragment)


def test_rule2_counts_come_first_and_a_passed_deadline_is_terminal() -> None:
    """``core.go`` ``deploymentConditions``: ``ProgressDeadlineExceeded`` is ``FailedStatus``
    before anything else; the conditions are only looked at once the counts are met."""
    spec = {"replicas": 3, "progressDeadlineSeconds": 600}
    short = {
        "observedGeneration": 1,
        "replicas": 3,
        "updatedReplicas": 2,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "conditions": [AVAILABLE, UPDATING],
    }
    state = evaluate(obj("apps/v1", "Deployment", spec, short))
    assert state.details == ["2/3 replicas updated", "1 old replica(s) pending termination"]
    stuck = evaluate(obj("apps/v1", "Deployment", spec, {**short, "conditions": [DEADLINE]}))
    assert (stuck.ready, stuck.terminal) == (False, True)
    assert "ProgressDeadlineExceeded" in stuck.summary


# --- rule 3: StatefulSet -----------------------------------------------------------------------


def sts(strategy: dict | None = None, replicas: int = 3, **status: Any) -> dict:
    spec: dict[str, Any] = {"replicas": replicas}
    if strategy is not None:
        spec["updateStrategy"] = strategy
    base = {
        "observedGeneration": 1,
        "replicas": 3,
        "readyReplicas": 3,
        "currentReplicas": 3,
        "updatedReplicas": 3,
        "currentRevision": "db-1",
        "updateRevision": "db-1",
    }
    return obj("apps/v1", "StatefulSet", spec, {**base, **status})


ROLLING = {"type": "RollingUpdate"}
PARTITION_0 = {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
PARTITION_2 = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
ON_DELETE = {"type": "OnDelete"}

STATEFULSET_CASES = [
    ("all current", sts(ROLLING), True, "3/3 replicas ready and updated"),
    (
        "extra pods",
        sts(ROLLING, replicas=2, readyReplicas=3),
        False,
        "1 extra replica(s) pending termination",
    ),
    ("too few created", sts(ROLLING, replicas=4, readyReplicas=4), False, "3/4 replicas created"),
    # No partition (kstatus reads -1): current replicas and the revisions must match.
    (
        "no partition, revisions differ",
        sts(ROLLING, updateRevision="db-2"),
        False,
        "rolling update in progress (revision db-1 -> db-2)",
    ),
    ("no partition, strategy unset", sts(None, currentReplicas=1), False, "1/3 replicas current"),
    # An explicit partition, 0 included, is a partitioned rollout: updated >= replicas - partition.
    (
        "partition 0, updated",
        sts(PARTITION_0, updateRevision="db-2", currentReplicas=0),
        True,
        "ready",
    ),
    (
        "partition 0, not updated",
        sts(PARTITION_0, updatedReplicas=2),
        False,
        "2/3 replicas updated (partition 0)",
    ),
    (
        "partition 2, one updated",
        sts(PARTITION_2, updatedReplicas=1, updateRevision="db-2"),
        True,
        "ready",
    ),
    (
        "partition 2, none updated",
        sts(PARTITION_2, updatedReplicas=0),
        False,
        "0/1 replicas updated (partition 2)",
    ),
    # OnDelete: pods are replaced by hand; the counts are what there is to wait for.
    (
        "OnDelete, counts met",
        sts(ON_DELETE, updatedReplicas=0, updateRevision="db-2"),
        True,
        "3/3 replicas ready (updateStrategy OnDelete)",
    ),
    ("OnDelete, not ready", sts(ON_DELETE, readyReplicas=1), False, "1/3 replicas ready"),
]


@pytest.mark.parametrize(
    ("o", "ready", "fragment"),
    [case[1:] for case in STATEFULSET_CASES],
    ids=[case[0] for case in STATEFULSET_CASES],
)
def test_rule3_statefulset(o: dict, ready: bool, fragment: str) -> None:
    """cli-utils ``pkg/kstatus/status/core.go`` ``stsConditions``: ``status.replicas`` above
    ``spec.replicas`` is ``ExtraPods``; ``partition`` is read with default -1, so an explicit 0 is
    a partition (updated count only, no revision check); ``OnDelete`` skips the update checks
    (kstatus goes further and calls it Current at once; smokegate still waits for ready pods)."""
    check(o, ready, fragment)


# --- rule 4: DaemonSet -------------------------------------------------------------------------

DS_STATUS = {
    "observedGeneration": 1,
    "desiredNumberScheduled": 2,
    "currentNumberScheduled": 2,
    "updatedNumberScheduled": 2,
    "numberAvailable": 2,
    "numberReady": 2,
}


def without(status: dict, key: str) -> dict:
    return {k: v for k, v in status.items() if k != key}


DAEMONSET_CASES = [
    (
        "all scheduled",
        obj("apps/v1", "DaemonSet", {}, DS_STATUS),
        True,
        "2/2 pods ready, updated and available",
    ),
    (
        "no observedGeneration",
        obj("apps/v1", "DaemonSet", {}, without(DS_STATUS, "observedGeneration")),
        False,
        "status.observedGeneration not set",
    ),
    (
        "no desiredNumberScheduled",
        obj("apps/v1", "DaemonSet", {}, without(DS_STATUS, "desiredNumberScheduled")),
        False,
        "status.desiredNumberScheduled not set",
    ),
    (
        "no generation",
        {**obj("apps/v1", "DaemonSet", {}, DS_STATUS), "metadata": {"name": "x"}},
        False,
        "metadata.generation not set",
    ),
    ("no status", obj("apps/v1", "DaemonSet", {}), False, "no status yet"),
    (
        "one not ready",
        obj("apps/v1", "DaemonSet", {}, {**DS_STATUS, "numberReady": 1}),
        False,
        "1/2 pods ready",
    ),
]


@pytest.mark.parametrize(
    ("o", "ready", "fragment"),
    [case[1:] for case in DAEMONSET_CASES],
    ids=[case[0] for case in DAEMONSET_CASES],
)
def test_rule4_daemonset_needs_observed_generation_and_desired_count(
    o: dict, ready: bool, fragment: str
) -> None:
    """cli-utils ``pkg/kstatus/status/core.go`` ``daemonsetConditions`` with
    ``checkGenerationSet``: a missing ``metadata.generation`` or ``status.observedGeneration``
    is in progress (the controller always writes them once it acted), and so is a missing
    ``status.desiredNumberScheduled`` (read with default -1)."""
    check(o, ready, fragment)


# --- rule 5: ReplicaSet ------------------------------------------------------------------------

RS_STATUS = {
    "observedGeneration": 1,
    "replicas": 2,
    "fullyLabeledReplicas": 2,
    "readyReplicas": 2,
    "availableReplicas": 2,
}
QUOTA = c("ReplicaFailure", "True", "FailedCreate", 'pods "web-1" is forbidden: exceeded quota')

REPLICASET_CASES = [
    ("all available", RS_STATUS, True, "2/2 replicas ready and available"),
    (
        "replica failure",
        {**RS_STATUS, "conditions": [QUOTA]},
        False,
        'replica failure: ReplicaFailure=True (FailedCreate): pods "web-1" is forbidden: '
        "exceeded quota",
    ),
    (
        "not labelled",
        {**RS_STATUS, "fullyLabeledReplicas": 1},
        False,
        "1/2 replicas fully labelled",
    ),
    ("not available", {**RS_STATUS, "availableReplicas": 1}, False, "1/2 replicas available"),
    ("not ready", {**RS_STATUS, "readyReplicas": 0}, False, "0/2 replicas ready"),
    ("extra pods", {**RS_STATUS, "replicas": 3}, False, "1 extra replica(s) pending termination"),
    (
        "old generation",
        {**RS_STATUS, "observedGeneration": 0},
        False,
        "controller has not observed the latest spec",
    ),
]


@pytest.mark.parametrize(
    ("status", "ready", "fragment"),
    [case[1:] for case in REPLICASET_CASES],
    ids=[case[0] for case in REPLICASET_CASES],
)
def test_rule5_replicaset(status: dict, ready: bool, fragment: str) -> None:
    """cli-utils ``pkg/kstatus/status/core.go`` ``replicasetConditions``: ``ReplicaFailure=True``
    is in progress (not failed); fully labelled, available and ready replicas must reach
    ``spec.replicas``; more ``status.replicas`` than wanted are extra pods."""
    state = evaluate(obj("apps/v1", "ReplicaSet", {"replicas": 2}, status))
    assert state.ready is ready and fragment in " | ".join([state.summary, *state.details])
    assert state.terminal is False


# --- rule 6: CustomResourceDefinition ----------------------------------------------------------

CRD_CASES = [
    (
        "established",
        [
            c("NamesAccepted", "True", "NoConflicts"),
            c("Established", "True", "InitialNamesAccepted"),
        ],
        True,
        False,
        "Established=True (InitialNamesAccepted)",
    ),
    (
        "names conflict",
        [
            c("NamesAccepted", "False", "KindConflict", '"Widget" is already in use'),
            c("Established", "False", "NotAccepted", "not all names are accepted"),
        ],
        False,
        True,
        'names not accepted: NamesAccepted=False (KindConflict): "Widget" is already in use',
    ),
    (
        "installing",
        [
            c("NamesAccepted", "True", "NoConflicts"),
            c("Established", "False", "Installing", "the initial names have been accepted"),
        ],
        False,
        False,
        "not established yet: Established=False (Installing)",
    ),
    (
        "not established",
        [c("Established", "False", "NotAccepted", "not all names are accepted")],
        False,
        True,
        "not established: Established=False (NotAccepted)",
    ),
    ("no conditions", [], False, False, "not established yet: no Established condition yet"),
]


@pytest.mark.parametrize(
    ("conds", "ready", "terminal", "fragment"),
    [case[1:] for case in CRD_CASES],
    ids=[case[0] for case in CRD_CASES],
)
def test_rule6_crd_needs_established(conds: list, ready: bool, terminal: bool, fragment: str):
    """cli-utils ``pkg/kstatus/status/core.go`` ``crdConditions``: ``NamesAccepted=False`` is
    failed; ``Established=False`` is failed unless its reason is ``Installing``;
    ``Established=True`` is current; anything else is still installing."""
    o = obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", {}, {"conditions": conds})
    check(o, ready, fragment, terminal)


# --- rule 7: Service ---------------------------------------------------------------------------

LB = {"type": "LoadBalancer", "clusterIP": "10.96.0.7"}
INGRESS = {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}}

SERVICE_CASES = [
    # (spec, status, waitForLoadBalancer, ready, fragment)
    (
        LB,
        {},
        False,
        True,
        "LoadBalancer with cluster IP 10.96.0.7 (its external address is not waited for: "
        "waitForLoadBalancer: true does)",
    ),
    (
        LB,
        {},
        True,
        False,
        "LoadBalancer has no ingress address yet (status.loadBalancer.ingress is empty)",
    ),
    (LB, {"loadBalancer": {}}, True, False, "no ingress address yet"),
    (LB, INGRESS, True, True, "LoadBalancer ingress 203.0.113.9"),
    (
        LB,
        {"loadBalancer": {"ingress": [{"hostname": "lb.example.net"}]}},
        True,
        True,
        "lb.example.net",
    ),
    ({"type": "LoadBalancer"}, {}, False, False, "LoadBalancer Service has no spec.clusterIP yet"),
    ({"type": "ClusterIP", "clusterIP": "10.96.0.8"}, {}, False, True, "exists"),
    (
        {"type": "ClusterIP", "clusterIP": "10.96.0.8"},
        {},
        True,
        True,
        "not a LoadBalancer: no address to wait for",
    ),
]


@pytest.mark.parametrize(("spec", "status", "wait", "ready", "fragment"), SERVICE_CASES)
def test_rule7_loadbalancer_needs_a_cluster_ip_and_optionally_an_ingress(
    spec: dict, status: dict, wait: bool, ready: bool, fragment: str
) -> None:
    """cli-utils ``pkg/kstatus/status/core.go`` ``serviceConditions``: a ``LoadBalancer``
    Service is current once ``spec.clusterIP`` is set; ``status.loadBalancer.ingress`` is only
    waited for with ``waitForLoadBalancer: true`` (smokegate's stricter option)."""
    check(obj("v1", "Service", spec, status), ready, fragment, wait_for_load_balancer=wait)


# --- rule 8: Pod -------------------------------------------------------------------------------

POD_CASES = [
    (
        "running and ready",
        {"phase": "Running", "conditions": [c("Ready", "True")]},
        True,
        False,
        "Ready=True",
    ),
    (
        "succeeded",
        {"phase": "Succeeded", "conditions": [c("Ready", "False", "PodCompleted")]},
        False,
        True,
        "phase Succeeded: the pod ran to completion and serves nothing; a Pod is ready when "
        "Ready=True",
    ),
    ("failed", {"phase": "Failed", "reason": "Evicted"}, False, True, "phase Failed: Evicted"),
    (
        "running, not ready",
        {"phase": "Running", "conditions": [c("Ready", "False", "ContainersNotReady")]},
        False,
        False,
        "phase Running; Ready=False (ContainersNotReady)",
    ),
]


@pytest.mark.parametrize(
    ("status", "ready", "terminal", "fragment"),
    [case[1:] for case in POD_CASES],
    ids=[case[0] for case in POD_CASES],
)
def test_rule8_a_succeeded_pod_is_not_ready(status: dict, ready: bool, terminal: bool, fragment):
    """cli-utils ``pkg/kstatus/status/core.go`` ``podConditions`` calls phase ``Succeeded``
    Current; smokegate's documented Pod rule is ``Ready=True`` (``kube.ready`` asks whether the
    pod serves), so a completed pod is not ready, for good, and the reason says why."""
    check(obj("v1", "Pod", {}, status), ready, fragment, terminal)


# --- the option in the suite model -------------------------------------------------------------


def test_wait_for_load_balancer_is_in_the_schema_and_only_for_services(tmp_path: Path) -> None:
    """The option is part of the suite model (and so of ``smokegate schema``), and a suite
    that sets it on another kind is a suite error naming the field (exit 2)."""
    schema = json.loads(run_cli("schema").out)
    field = schema["$defs"]["ReadyRef"]["properties"]["waitForLoadBalancer"]
    assert field["anyOf"][0]["type"] == "boolean" and field["anyOf"][0]["default"] is False
    suite = write_suite(
        tmp_path,
        """
        - name: lb
          kube: {ready: {kind: Service, name: web, waitForLoadBalancer: true}}
        - name: wrong-kind
          kube: {ready: {kind: Deployment, name: web, waitForLoadBalancer: true}}
        """,
    )
    r = run_cli("lint", str(suite))
    assert r.code == 2, r.text
    assert "waitForLoadBalancer applies to kind Service only (this is kind Deployment)" in r.err
    assert "lb" not in r.err.replace("LoadBalancer", "")  # the Service check is valid


# --- end to end, through the real apiserver ----------------------------------------------------


def run_suite(tmp_path: Path, kubeconfig: str, ns: str, checks: str) -> tuple[Any, dict]:
    report = tmp_path / "report.json"
    suite = write_suite(tmp_path, checks)
    r = run_cli(
        "run", str(suite), "--kubeconfig", kubeconfig, "-n", ns, "--report", f"json={report}"
    )
    assert "Traceback" not in r.text, r.text
    return r, {x["name"]: x for x in load_json(report)["results"]}


POD_SPEC = {"containers": [{"name": "web", "image": "example/web:1"}]}
TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": POD_SPEC}
SELECTOR = {"matchLabels": {"app": "web"}}


def test_workloads_end_to_end(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    """Rules 1-5 and 8 on objects stored by the real apiserver: its defaults decide
    (``progressDeadlineSeconds: 600``, ``partition: 0``), we write the status as the Deployment,
    StatefulSet, DaemonSet and ReplicaSet controllers and the kubelet would (no controller
    runs), and the real CLI checks them."""
    ns = kube_namespace
    dep = apply(
        kube_env,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"replicas": 1, "selector": SELECTOR, "template": TEMPLATE},
        },
    )
    assert dep["spec"]["progressDeadlineSeconds"] == 600  # the API server's default: rule 2 applies
    stored = apply(
        kube_env,
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": ns},
            "spec": {
                "replicas": 2,
                "serviceName": "db",
                "selector": SELECTOR,
                "template": TEMPLATE,
            },
        },
    )
    assert stored["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"partition": 0},
    }
    apply(
        kube_env,
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": ns},
            "spec": {"selector": SELECTOR, "template": TEMPLATE},
        },
    )
    apply(
        kube_env,
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "rs", "namespace": ns},
            "spec": {"replicas": 2, "selector": SELECTOR, "template": TEMPLATE},
        },
    )
    apply(
        kube_env,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "once", "namespace": ns},
            "spec": {**POD_SPEC, "restartPolicy": "Never"},
        },
    )

    patch_status(kube_env, "deployment", "web", ns, COUNTS_MET)
    # Mid-rollout at the partition's default 0: kstatus checks the updated count, not revisions.
    patch_status(
        kube_env,
        "statefulset",
        "db",
        ns,
        {
            "observedGeneration": 1,
            "replicas": 2,
            "readyReplicas": 2,
            "currentReplicas": 0,
            "updatedReplicas": 2,
            "currentRevision": "db-1",
            "updateRevision": "db-2",
        },
    )
    patch_status(kube_env, "daemonset", "agent", ns, without(DS_STATUS, "observedGeneration"))
    patch_status(kube_env, "replicaset", "rs", ns, {**RS_STATUS, "conditions": [QUOTA]})
    patch_status(
        kube_env,
        "pod",
        "once",
        ns,
        {"phase": "Succeeded", "conditions": [cond("Ready", "False", "PodCompleted")]},
    )
    checks = """
- {name: web, kube: {ready: {kind: Deployment, name: web}}}
- {name: db, kube: {ready: {kind: StatefulSet, name: db}}}
- {name: agent, kube: {ready: {kind: DaemonSet, name: agent}}}
- {name: rs, kube: {ready: {kind: ReplicaSet, name: rs}}}
- {name: once, kube: {ready: {kind: Pod, name: once}}}
"""
    r, res = run_suite(tmp_path, kubeconfig, ns, checks)
    assert r.code == 1
    status = {name: x["status"] for name, x in res.items()}
    assert status == {
        "web": "failed",
        "db": "passed",
        "agent": "failed",
        "rs": "failed",
        "once": "failed",
    }
    assert (
        "rollout not complete: needs Progressing=True (NewReplicaSetAvailable)"
        in res["web"]["message"]
    )
    assert "status.observedGeneration not set" in res["agent"]["message"]
    assert "replica failure: ReplicaFailure=True (FailedCreate)" in res["rs"]["message"]
    assert "phase Succeeded: the pod ran to completion" in res["once"]["message"]

    patch_status(
        kube_env,
        "deployment",
        "web",
        ns,
        {
            "conditions": [
                cond("Available", "True", "MinimumReplicasAvailable"),
                cond("Progressing", "True", "NewReplicaSetAvailable"),
            ]
        },
    )
    patch_status(kube_env, "daemonset", "agent", ns, DS_STATUS)
    patch_status(kube_env, "replicaset", "rs", ns, {"conditions": []})
    r, res = run_suite(tmp_path, kubeconfig, ns, checks.replace("- {name: once", "# "))
    assert r.code == 0, r.text

    # Rule 1: deleting the ready Deployment (a finalizer keeps it) makes it Terminating.
    kube_env.kubectl(
        "patch",
        "deployment",
        "web",
        "-n",
        ns,
        "--type=merge",
        "-p",
        json.dumps({"metadata": {"finalizers": ["example.com/hold"]}}),
    )
    kube_env.kubectl("delete", "deployment", "web", "-n", ns, "--wait=false")
    r, res = run_suite(tmp_path, kubeconfig, ns, checks.split("\n- {name: db")[0])
    assert r.code == 1
    assert (
        "Terminating: scheduled for deletion (metadata.deletionTimestamp " in res["web"]["message"]
    )
    assert "waiting for finalizers: example.com/hold" in res["web"]["message"]


def test_services_crds_and_helmreleases_end_to_end(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    """Rules 7, 6 and 1 through the real apiserver: it allocates the LoadBalancer's cluster IP
    (no cloud controller runs, so no ingress address until we write one, as a cloud controller
    would); it sets the CRDs' NamesAccepted/Established conditions itself; a HelmRelease with a
    finalizer, deleted, is Terminating for ``kube.ready`` and for the gate (which keeps waiting,
    then times out saying so)."""
    ns = kube_namespace
    svc = apply(
        kube_env,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "lb", "namespace": ns},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80}]},
        },
    )
    assert svc["spec"]["clusterIP"] and not svc.get("status", {}).get("loadBalancer", {}).get(
        "ingress"
    )
    group = f"{ns}.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "kind": "Widget",
                "plural": "widgets",
                "singular": "widget",
                "listKind": "WidgetList",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    # The same kind again in the same group: the apiserver's naming controller refuses it.
    clash = json.loads(json.dumps(crd))
    clash["metadata"]["name"] = f"gizmos.{group}"
    clash["spec"]["names"].update(plural="gizmos", singular="gizmo", listKind="GizmoList")
    try:
        kube_env.kubectl("apply", "-f", "-", input=json.dumps(crd))
        kube_env.kubectl(
            "wait", "--for=condition=Established", f"crd/widgets.{group}", "--timeout=60s"
        )
        kube_env.kubectl("apply", "-f", "-", input=json.dumps(clash))
        kube_env.kubectl(
            "wait", "--for=condition=NamesAccepted=False", f"crd/gizmos.{group}", "--timeout=60s"
        )
        crd_ref = "apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition"
        checks = f"""
- {{name: lb, kube: {{ready: {{kind: Service, name: lb}}}}}}
- {{name: lb-address, kube: {{ready: {{kind: Service, name: lb, waitForLoadBalancer: true}}}}}}
- {{name: widgets, kube: {{ready: {{{crd_ref}, name: widgets.{group}}}}}}}
- {{name: gizmos, kube: {{ready: {{{crd_ref}, name: gizmos.{group}}}}}}}
"""
        r, res = run_suite(tmp_path, kubeconfig, ns, checks)
    finally:
        kube_env.kubectl("delete", "crd", f"widgets.{group}", f"gizmos.{group}", "--wait=false")
    assert r.code == 1
    status = {name: x["status"] for name, x in res.items()}
    assert status == {
        "lb": "passed",
        "lb-address": "failed",
        "widgets": "passed",
        "gizmos": "failed",
    }
    assert "no ingress address yet" in res["lb-address"]["message"]
    assert "names not accepted: NamesAccepted=False (KindConflict)" in res["gizmos"]["message"]

    patch_status(kube_env, "service", "lb", ns, INGRESS)
    r, res = run_suite(tmp_path, kubeconfig, ns, checks.split("\n- {name: widgets")[0])
    assert r.code == 0, r.text
    assert "LoadBalancer ingress 203.0.113.9" in res["lb-address"]["message"]

    # Rule 1 for HelmReleases: ready, then deleted (a finalizer, as helm-controller sets one).
    apply(kube_env, helmrelease("podinfo", ns))
    patch_status(
        kube_env, "hr", "podinfo", ns, hr_status_ready("podinfo", ns, 1, "6.6.1", version=1)
    )
    hr_check = "- {name: hr, kube: {ready: {kind: HelmRelease, name: podinfo}}}\n"
    r, _ = run_suite(tmp_path, kubeconfig, ns, hr_check)
    assert r.code == 0, r.text
    kube_env.kubectl(
        "patch",
        "hr",
        "podinfo",
        "-n",
        ns,
        "--type=merge",
        "-p",
        json.dumps({"metadata": {"finalizers": ["finalizers.fluxcd.io"]}}),
    )
    kube_env.kubectl("delete", "hr", "podinfo", "-n", ns, "--wait=false")
    r, res = run_suite(tmp_path, kubeconfig, ns, hr_check)
    assert r.code == 1
    assert "Terminating: scheduled for deletion" in res["hr"]["message"]
    gate = run_cli(
        "gate",
        f"hr/{ns}/podinfo",
        "--kubeconfig",
        kubeconfig,
        "--timeout",
        "2s",
        str(write_suite(tmp_path, hr_check)),
    )
    assert gate.code == 3, gate.text
    assert "Terminating: scheduled for deletion (metadata.deletionTimestamp " in gate.err
