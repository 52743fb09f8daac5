"""Is this object ready? kstatus-style rules (kubernetes-sigs/cli-utils ``pkg/kstatus``), on
plain dicts, with the reason a person needs when the answer is no.

* A controller that has not seen the latest spec (``metadata.generation`` >
  ``status.observedGeneration``) is never ready, whatever the rest of the status says.
* Deployment, StatefulSet, DaemonSet: every replica updated, ready and available, and no old
  replicas left; the evidence says which count is short ("2/3 replicas updated").
* Job: ``Complete=True``; Pod: ``Ready=True`` (or phase ``Succeeded``); PVC: ``Bound``.
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
    if problems:
        avail = conds.get("Available")
        if avail and avail.get("status") == "False" and avail.get("message"):
            problems.append(describe_condition(avail))
        return _not_ready(problems)
    return Readiness(True, f"{ready}/{want} replicas ready, updated and available")


def _statefulset(obj: dict[str, Any]) -> Readiness:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    want = spec.get("replicas", 1)
    problems = []
    gen = _generation_problem(obj)
    if gen:
        problems.append(gen)
    ready = _int(status, "readyReplicas")
    if ready < want:
        problems.append(f"{ready}/{want} replicas ready")
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        partition = (strategy.get("rollingUpdate") or {}).get("partition") or 0
        updated = _int(status, "updatedReplicas")
        if updated < want - partition:
            problems.append(f"{updated}/{want - partition} replicas updated")
        elif partition == 0 and status.get("updateRevision") != status.get("currentRevision"):
            problems.append(
                f"rolling update in progress (revision {status.get('currentRevision')} -> "
                f"{status.get('updateRevision')})"
            )
    if "availableReplicas" in status and _int(status, "availableReplicas") < want:
        problems.append(f"{_int(status, 'availableReplicas')}/{want} replicas available")
    if problems:
        return _not_ready(problems)
    return Readiness(True, f"{ready}/{want} replicas ready and updated")


def _daemonset(obj: dict[str, Any]) -> Readiness:
    status = obj.get("status") or {}
    want = _int(status, "desiredNumberScheduled")
    problems = []
    gen = _generation_problem(obj)
    if gen:
        problems.append(gen)
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
        return Readiness(True, "phase Succeeded")
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


def _service(obj: dict[str, Any]) -> Readiness:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if spec.get("type") == "LoadBalancer" and not (status.get("loadBalancer") or {}).get("ingress"):
        return _not_ready(["LoadBalancer has no ingress address yet"])
    return Readiness(True, "exists")


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
    "apps/StatefulSet": _statefulset,
    "apps/DaemonSet": _daemonset,
    "batch/Job": _job,
    "/Pod": _pod,
    "/PersistentVolumeClaim": _pvc,
    "/Service": _service,
}


def not_ready(problems: list[str], *, terminal: bool = False) -> Readiness:
    """Not ready, for these reasons (the first is the summary)."""
    return _not_ready(problems, terminal=terminal)


def evaluate(obj: dict[str, Any], rules: Mapping[str, Rule] | None = None) -> Readiness:
    """Readiness of one object as returned by the API. ``rules`` (``group/Kind`` -> rule) come
    before the built-in ones: how a controller's own kinds are judged (``checks.kube`` adds
    Flux's HelmRelease rules from ``flux.helmrelease``; this package knows nothing of Flux)."""
    group = (obj.get("apiVersion") or "").rpartition("/")[0]
    key = f"{group}/{obj.get('kind', '')}"
    rule = (rules or {}).get(key) or RULES.get(key, _conditioned)
    return rule(obj)
