"""Is this object ready? kstatus rules (kubernetes-sigs/cli-utils ``pkg/kstatus/status``,
``generic.go`` and ``core.go``), on plain dicts, with the reason a person needs when the answer
is no.

* ``metadata.deletionTimestamp`` set: Terminating, never ready, whatever the kind
  (``checkGenericProperties``).
* A controller that has not seen the latest spec (``metadata.generation`` >
  ``status.observedGeneration``) is never ready, whatever the rest of the status says.
* Deployment (``deploymentConditions``): every replica updated, ready and available, no old
  replicas left, ``Available=True``, and with ``spec.progressDeadlineSeconds`` also
  ``Progressing=True`` with reason ``NewReplicaSetAvailable``.
* StatefulSet (``stsConditions``): replicas created and ready, none extra; an explicit
  ``partition`` (0 included) needs ``replicas - partition`` updated, no partition needs the
  update revision current; ``OnDelete`` needs the counts only.
* DaemonSet (``daemonsetConditions``, ``checkGenerationSet``): ``status.observedGeneration`` and
  ``desiredNumberScheduled`` present; scheduled, updated, available and ready = desired.
* ReplicaSet (``replicasetConditions``), CustomResourceDefinition (``crdConditions``), Job,
  PVC (``Bound``), Service (``serviceConditions``: a LoadBalancer needs ``spec.clusterIP``; its
  ingress address only when asked for).
* Pod: ``Ready=True``. Unlike kstatus, phase ``Succeeded`` is not ready: a completed pod
  serves nothing (``kube.ready`` on a Pod asks "does it serve").
* HelmRelease: Flux's own rules (``smokegate.flux.helmrelease.readiness``), passed in by the
  ``kube`` check as an extra rule: this module knows no controller's kinds.
* Any other kind with a ``Ready`` condition: ``Ready=True`` and not ``Stalled``/``Reconciling``,
  reporting the condition's reason and message. A kind without such conditions is ready when it
  exists, as kstatus treats it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smokegate.kube.conditions import conditions, describe_condition


@dataclass(slots=True)
class Readiness:
    ready: bool
    summary: str
    """One line: "ready" or why not ("2/3 replicas updated")."""
    details: list[str] = field(default_factory=list)
    """Every unmet requirement, for the evidence list (``summary`` is the first)."""
    terminal: bool = False
    """Will not become ready without a change (a failed Job, ProgressDeadlineExceeded)."""


def _not_ready(problems: list[str], *, terminal: bool = False) -> Readiness:
    return Readiness(False, problems[0], problems, terminal)


def _generation_problem(obj: dict[str, Any]) -> str | None:
    generation = (obj.get("metadata") or {}).get("generation")
    status = obj.get("status") or {}
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed < generation:
        return (
            "controller has not observed the latest spec "
            f"(generation {generation}, observed {observed})"
        )
    if generation is not None and observed is None and status == {}:
        return "no status yet: the controller has not processed it"
    return None


_MAX_INT32 = 2**31 - 1


def _int(status: dict[str, Any], key: str) -> int:
    value = status.get(key)
    return value if isinstance(value, int) else 0


def _deployment(obj: dict[str, Any]) -> Readiness:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    want = spec.get("replicas", 1)
    conds = conditions(obj)
    progressing = conds.get("Progressing", {})
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return _not_ready([f"rollout stuck: {describe_condition(progressing)}"], terminal=True)
    problems = []
    gen = _generation_problem(obj)
    if gen:
        problems.append(gen)
    updated = _int(status, "updatedReplicas")
    if updated < want:
        problems.append(f"{updated}/{want} replicas updated")
    total = _int(status, "replicas")
    if total > updated:
        problems.append(f"{total - updated} old replica(s) pending termination")
    ready = _int(status, "readyReplicas")
    if ready < want:
        problems.append(f"{ready}/{want} replicas ready")
    available = _int(status, "availableReplicas")
    if available < want:
        problems.append(f"{available}/{want} replicas available")
    avail = conds.get("Available")
    if problems:
        if avail and avail.get("status") == "False" and avail.get("message"):
            problems.append(describe_condition(avail))
        return _not_ready(problems)
    # kstatus looks at the conditions once the counts are met. The controller maintains
    # Progressing only with a progress deadline (the API defaults it to 600s; kstatus treats
    # MaxInt32 as unset, as the controller does); Available=True is needed in every case.
    deadline = spec.get("progressDeadlineSeconds")
    new_rs_available = (
        progressing.get("status") == "True"
        and progressing.get("reason") == "NewReplicaSetAvailable"
    )
    if deadline is not None and deadline != _MAX_INT32 and not new_rs_available:
        got = describe_condition(progressing) if progressing else "no Progressing condition"
        problems.append(
            f"rollout not complete: needs Progressing=True (NewReplicaSetAvailable), has {got}"
        )
    if not avail or avail.get("status") != "True":
        got = describe_condition(avail) if avail else "no Available condition"
        problems.append(f"not available: needs Available=True, has {got}")
    if problems:
        return _not_ready(problems)
    return Readiness(True, f"{ready}/{want} replicas ready, updated and available")


def _statefulset(obj: dict[str, Any]) -> Readiness:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    want = spec.get("replicas", 1)
    problems = []
    gen = _generation_problem(obj)
    if gen:
        problems.append(gen)
    total = _int(status, "replicas")
    if total < want:
        problems.append(f"{total}/{want} replicas created")
    ready = _int(status, "readyReplicas")
    if ready < want:
        problems.append(f"{ready}/{want} replicas ready")
    if total > want:
        problems.append(f"{total - want} extra replica(s) pending termination")
    strategy = spec.get("updateStrategy") or {}
    on_delete = strategy.get("type") == "OnDelete"
    # OnDelete: pods are replaced by hand, so the update counts never converge by themselves.
    # kstatus calls it Current at once; smokegate still needs the replicas ready (above).
    partition = (strategy.get("rollingUpdate") or {}).get("partition")
    if on_delete:
        pass  # the counts above are all there is to wait for
    elif isinstance(partition, int):
        # An explicit partition, 0 included (the API server defaults it to 0): kstatus checks
        # the updated count only, never the revisions.
        updated = _int(status, "updatedReplicas")
        if updated < want - partition:
            problems.append(
                f"{updated}/{want - partition} replicas updated (partition {partition})"
            )
    else:
        current = _int(status, "currentReplicas")
        if current < want:
            problems.append(f"{current}/{want} replicas current")
        if status.get("updateRevision") != status.get("currentRevision"):
            problems.append(
                f"rolling update in progress (revision {status.get('currentRevision')} -> "
                f"{status.get('updateRevision')})"
            )
    if "availableReplicas" in status and _int(status, "availableReplicas") < want:
        problems.append(f"{_int(status, 'availableReplicas')}/{want} replicas available")
    if problems:
        return _not_ready(problems)
    if on_delete:
        return Readiness(True, f"{ready}/{want} replicas ready (updateStrategy OnDelete)")
    return Readiness(True, f"{ready}/{want} replicas ready and updated")


def _daemonset(obj: dict[str, Any]) -> Readiness:
    status = obj.get("status") or {}
    want = _int(status, "desiredNumberScheduled")
    problems = []
    gen = _generation_problem(obj)
    if gen:
        problems.append(gen)
    elif status:
        # checkGenerationSet: the DaemonSet controller always writes observedGeneration, so its
        # absence means it has not acted on this object (kstatus is strict here, unlike for
        # other kinds).
        if (obj.get("metadata") or {}).get("generation") is None:
            problems.append("metadata.generation not set")
        if status.get("observedGeneration") is None:
            problems.append(
                "status.observedGeneration not set: the DaemonSet controller has not processed it"
            )
        if not isinstance(status.get("desiredNumberScheduled"), int):
            problems.append("status.desiredNumberScheduled not set: no node count to compare with")
    if problems:
        return _not_ready(problems)
    for key, label in (
        ("currentNumberScheduled", "pods scheduled"),
        ("updatedNumberScheduled", "pods updated"),
        ("numberAvailable", "pods available"),
        ("numberReady", "pods ready"),
    ):
        have = _int(status, key)
        if have < want:
            problems.append(f"{have}/{want} {label}")
    if problems:
        return _not_ready(problems)
    return Readiness(True, f"{want}/{want} pods ready, updated and available")


def _replicaset(obj: dict[str, Any]) -> Readiness:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    want = spec.get("replicas", 1)
    problems = []
    gen = _generation_problem(obj)
    if gen:
        problems.append(gen)
    failure = conditions(obj).get("ReplicaFailure")
    if failure and failure.get("status") == "True":
        # In progress, not failed, for kstatus: quota or admission may let pods through later.
        problems.append(f"replica failure: {describe_condition(failure)}")
    for key, label in (
        ("fullyLabeledReplicas", "replicas fully labelled"),
        ("availableReplicas", "replicas available"),
        ("readyReplicas", "replicas ready"),
    ):
        have = _int(status, key)
        if have < want:
            problems.append(f"{have}/{want} {label}")
    total = _int(status, "replicas")
    if total > want:
        problems.append(f"{total - want} extra replica(s) pending termination")
    if problems:
        return _not_ready(problems)
    return Readiness(True, f"{want}/{want} replicas ready and available")


def _crd(obj: dict[str, Any]) -> Readiness:
    # crdConditions walks the conditions in order and stops at the first one that decides.
    established = None
    for cond in conditions(obj).values():
        kind, state = cond.get("type"), cond.get("status")
        if kind == "NamesAccepted" and state == "False":
            return _not_ready([f"names not accepted: {describe_condition(cond)}"], terminal=True)
        if kind == "Established":
            established = cond
            if state == "False" and cond.get("reason") != "Installing":
                return _not_ready([f"not established: {describe_condition(cond)}"], terminal=True)
            if state == "True":
                return Readiness(True, describe_condition(cond))
    got = describe_condition(established) if established else "no Established condition yet"
    return _not_ready([f"not established yet: {got}"])


def _job(obj: dict[str, Any]) -> Readiness:
    conds = conditions(obj)
    status = obj.get("status") or {}
    failed = conds.get("Failed")
    if failed and failed.get("status") == "True":
        return _not_ready([f"job failed: {describe_condition(failed)}"], terminal=True)
    complete = conds.get("Complete")
    if complete and complete.get("status") == "True":
        return Readiness(True, f"complete ({_int(status, 'succeeded')} succeeded)")
    return _not_ready(
        [
            f"not complete yet: {_int(status, 'active')} active, "
            f"{_int(status, 'succeeded')} succeeded, {_int(status, 'failed')} failed"
        ]
    )


def _pod(obj: dict[str, Any]) -> Readiness:
    status = obj.get("status") or {}
    phase = status.get("phase", "Pending")
    if phase == "Succeeded":
        # kstatus counts a completed pod as Current; for kube.ready a Pod is ready when it
        # serves (Ready=True), and a pod that ran to completion never will again.
        return _not_ready(
            [
                "phase Succeeded: the pod ran to completion and serves nothing; a Pod is ready "
                "when Ready=True (to check a finished task, check its Job)"
            ],
            terminal=True,
        )
    if phase == "Failed":
        reason = status.get("reason") or status.get("message") or "containers exited with errors"
        return _not_ready([f"phase Failed: {reason}"], terminal=True)
    ready = conditions(obj).get("Ready")
    if ready and ready.get("status") == "True":
        return Readiness(True, "Ready=True")
    problems = [
        f"phase {phase}; " + (describe_condition(ready) if ready else "no Ready condition yet")
    ]
    # Why a container is not running is what a person wants: CrashLoopBackOff, ImagePullBackOff…
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            msg = f"container {cs.get('name')}: {waiting['reason']}"
            if waiting.get("message"):
                msg += f": {waiting['message']}"
            problems.append(msg)
    return _not_ready(problems)


def _pvc(obj: dict[str, Any]) -> Readiness:
    phase = (obj.get("status") or {}).get("phase", "Pending")
    if phase == "Bound":
        return Readiness(True, "Bound")
    return _not_ready([f"phase {phase}, not Bound"])


def _service(obj: dict[str, Any], *, wait_for_load_balancer: bool = False) -> Readiness:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if spec.get("type") != "LoadBalancer":
        note = " (not a LoadBalancer: no address to wait for)" if wait_for_load_balancer else ""
        return Readiness(True, f"exists{note}")
    # serviceConditions: a LoadBalancer is current once it has a cluster IP. Its external
    # address comes from a cloud controller that many clusters (kind, bare metal) never run,
    # so waiting for it is opt-in.
    cluster_ip = spec.get("clusterIP")
    if not cluster_ip:
        return _not_ready(["LoadBalancer Service has no spec.clusterIP yet"])
    if not wait_for_load_balancer:
        return Readiness(
            True,
            f"LoadBalancer with cluster IP {cluster_ip} (its external address is not waited "
            "for: waitForLoadBalancer: true does)",
        )
    ingress = [
        str(i.get("ip") or i.get("hostname"))
        for i in (status.get("loadBalancer") or {}).get("ingress") or []
        if isinstance(i, dict) and (i.get("ip") or i.get("hostname"))
    ]
    if not ingress:
        return _not_ready(
            ["LoadBalancer has no ingress address yet (status.loadBalancer.ingress is empty)"]
        )
    return Readiness(True, f"LoadBalancer ingress {', '.join(ingress)}")


def _terminating(obj: dict[str, Any]) -> Readiness | None:
    """checkGenericProperties: an object with a deletionTimestamp is Terminating, never ready;
    it goes before every other rule."""
    meta = obj.get("metadata") or {}
    since = meta.get("deletionTimestamp")
    if not since:
        return None
    text = f"Terminating: scheduled for deletion (metadata.deletionTimestamp {since})"
    finalizers = [str(f) for f in meta.get("finalizers") or []]
    if finalizers:
        text += f"; waiting for finalizers: {', '.join(finalizers)}"
    return _not_ready([text])


def _conditioned(obj: dict[str, Any]) -> Readiness:
    """Any kind following the Kubernetes condition conventions (Flux, cert-manager, …)."""
    conds = conditions(obj)
    stalled = conds.get("Stalled")
    if stalled and stalled.get("status") == "True":
        return _not_ready([f"stalled: {describe_condition(stalled)}"], terminal=True)
    problems = []
    gen = _generation_problem(obj)
    if gen and (obj.get("status") or {}).get("observedGeneration") is not None:
        problems.append(gen)
    ready = conds.get("Ready")
    reconciling = conds.get("Reconciling")
    if ready is None and reconciling is None:
        if problems:
            return _not_ready(problems)
        return Readiness(True, "exists (no Ready condition to check)")
    if ready is not None:
        cond_gen = ready.get("observedGeneration")
        generation = (obj.get("metadata") or {}).get("generation")
        if ready.get("status") != "True":
            problems.append(describe_condition(ready))
        elif cond_gen is not None and generation is not None and cond_gen < generation:
            problems.append(f"Ready=True is for generation {cond_gen}, not {generation}")
    if reconciling and reconciling.get("status") == "True":
        problems.append(f"reconciling: {describe_condition(reconciling)}")
    if problems:
        return _not_ready(problems)
    return Readiness(True, describe_condition(ready) if ready else "ready")


Rule = Callable[[dict[str, Any]], Readiness]

RULES: dict[str, Rule] = {
    "apps/Deployment": _deployment,
    "extensions/Deployment": _deployment,
    "apps/StatefulSet": _statefulset,
    "apps/DaemonSet": _daemonset,
    "extensions/DaemonSet": _daemonset,
    "apps/ReplicaSet": _replicaset,
    "extensions/ReplicaSet": _replicaset,
    "apiextensions.k8s.io/CustomResourceDefinition": _crd,
    "batch/Job": _job,
    "/Pod": _pod,
    "/PersistentVolumeClaim": _pvc,
    "/Service": _service,
}


def not_ready(problems: list[str], *, terminal: bool = False) -> Readiness:
    """Not ready, for these reasons (the first is the summary)."""
    return _not_ready(problems, terminal=terminal)


def evaluate(
    obj: dict[str, Any],
    rules: Mapping[str, Rule] | None = None,
    *,
    wait_for_load_balancer: bool = False,
) -> Readiness:
    """Readiness of one object as returned by the API. ``rules`` (``group/Kind`` -> rule) come
    before the built-in ones: how a controller's own kinds are judged (``checks.kube`` adds
    Flux's HelmRelease rules from ``flux.helmrelease``; this package knows nothing of Flux).
    ``wait_for_load_balancer``: a Service of type LoadBalancer also needs an ingress address
    (stricter than kstatus)."""
    terminating = _terminating(obj)
    if terminating is not None:
        return terminating
    group = (obj.get("apiVersion") or "").rpartition("/")[0]
    key = f"{group}/{obj.get('kind', '')}"
    if key == "/Service":
        return _service(obj, wait_for_load_balancer=wait_for_load_balancer)
    rule = (rules or {}).get(key) or RULES.get(key, _conditioned)
    return rule(obj)
