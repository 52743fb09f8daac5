"""The objects an in-cluster run creates: one Job (its pod runs ``smokegate run``) and one
ConfigMap (the suites), both labelled with the run's id.

* **Job** ``smokegate-run-<id>``: ``backoffLimit: 0`` (a failed run is a verdict, not a reason
  to retry), ``activeDeadlineSeconds`` a little past the run's ``--timeout`` (the backstop when
  the smokegate that started it is gone: the job controller then stops the pod),
  ``ttlSecondsAfterFinished`` (the TTL controller deletes a finished Job nobody deleted, and
  with it its pods and the ConfigMap). Its pod: ``restartPolicy: Never``, the restricted Pod
  Security profile (non-root UID 65532, no privilege escalation, every capability dropped,
  seccomp ``RuntimeDefault``, read-only root filesystem with an ``emptyDir`` on ``/tmp``),
  and ``terminationMessagePolicy: FallbackToLogsOnError``, so a crash shows its last lines in
  ``kubectl describe`` even when the log is gone.
* **ConfigMap** ``smokegate-run-<id>``: the suite files (``bundle.SuiteBundle``), mounted
  read-only as the pod's working directory, with an ownerReference to the Job: deleting the
  Job (by smokegate, by its TTL, by hand) lets the garbage collector delete the ConfigMap too.

Labels on both and on the pod template: ``app.kubernetes.io/name: smokegate``,
``app.kubernetes.io/managed-by: smokegate``, ``app.kubernetes.io/component: in-cluster-run``
and ``smokegate.io/in-cluster-run: <id>``, which cleanup finds every object by.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smokegate import __version__
from smokegate.incluster.bundle import SuiteBundle

IMAGE_REPOSITORY = "ghcr.io/smokegate/smokegate"
DEFAULT_IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"
"""The image of the runner pod unless ``--image`` says otherwise: this smokegate's own version,
so the pod reads suites exactly as the local validation did."""

RUN_LABEL = "smokegate.io/in-cluster-run"
CONTAINER = "smokegate"
SUITES_DIR = "/etc/smokegate/suites"
RUNNER_UID = 65532
"""The image's non-root user (docs/image.md)."""

DEFAULT_TIMEOUT = 1800.0
DEFAULT_TTL = 600
"""Seconds a finished Job (and so its pod and ConfigMap) stays when smokegate could not delete
it (it was killed, or ``--keep-job``)."""
STOP_GRACE = 15
"""Seconds the pod gets, after smokegate stops it (timeout, Ctrl-C), to end its checks and
print its report: its ``terminationGracePeriodSeconds``."""
DEADLINE_MARGIN = 60
"""``activeDeadlineSeconds`` is the timeout plus this (time to pull the image, to stop)."""

COMMON_LABELS = {
    "app.kubernetes.io/name": "smokegate",
    "app.kubernetes.io/managed-by": "smokegate",
    "app.kubernetes.io/component": "in-cluster-run",
}
RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}


def new_run_id() -> str:
    return uuid.uuid4().hex[:10]


def object_name(run_id: str) -> str:
    return f"smokegate-run-{run_id}"


@dataclass(slots=True)
class PodOptions:
    """How the runner pod looks, beyond what every run shares."""

    image: str = DEFAULT_IMAGE
    service_account: str | None = None
    """The pod's ServiceAccount (None: the namespace's ``default``). It needs what the suites
    need: ``get`` on the Secrets they reference, and on what ``kube`` checks read."""
    image_pull_secrets: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    """Extra pod labels (e.g. ``sidecar.istio.io/inject: "true"``)."""
    annotations: Mapping[str, str] = field(default_factory=dict)
    """Extra pod annotations (e.g. ``proxy.istio.io/config`` to hold the app until the proxy
    is ready, ``linkerd.io/inject``)."""
    ttl_seconds_after_finished: int = DEFAULT_TTL


def labels_for(run_id: str) -> dict[str, str]:
    return {**COMMON_LABELS, RUN_LABEL: run_id}


def build_job(
    run_id: str,
    namespace: str,
    args: Sequence[str],
    bundle: SuiteBundle,
    options: PodOptions,
    *,
    timeout: float,
    columns: int = 120,
) -> dict[str, Any]:
    """The Job whose pod runs ``smokegate ARGS`` in ``SUITES_DIR``, where ``bundle`` is."""
    name = object_name(run_id)
    labels = labels_for(run_id)
    env = [{"name": "COLUMNS", "value": str(columns)}, {"name": "HOME", "value": "/tmp"}]
    env += [{"name": k, "value": v} for k, v in options.env.items() if k not in ("COLUMNS", "HOME")]
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": options.image,
        "command": ["smokegate"],
        "args": list(args),
        "workingDir": SUITES_DIR,
        "env": env,
        "resources": RESOURCES,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "suites", "mountPath": SUITES_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": STOP_GRACE,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUNNER_UID,
            "runAsGroup": RUNNER_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {
                "name": "suites",
                "configMap": {"name": name, "items": bundle.items, "defaultMode": 0o444},
            },
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    if options.service_account:
        pod_spec["serviceAccountName"] = options.service_account
    if options.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in options.image_pull_secrets]
    template_meta: dict[str, Any] = {"labels": {**options.labels, **labels}}
    if options.annotations:
        template_meta["annotations"] = dict(options.annotations)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {"smokegate.io/suites": ", ".join(f.local for f in bundle.files)},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": math.ceil(timeout) + DEADLINE_MARGIN,
            "ttlSecondsAfterFinished": options.ttl_seconds_after_finished,
            "template": {"metadata": template_meta, "spec": pod_spec},
        },
    }


def build_configmap(
    run_id: str, namespace: str, bundle: SuiteBundle, job: Mapping[str, Any]
) -> dict[str, Any]:
    """The suites, owned by the (created) ``job``: they go when it goes."""
    meta = job.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": object_name(run_id),
            "namespace": namespace,
            "labels": labels_for(run_id),
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": meta.get("name", object_name(run_id)),
                    "uid": meta.get("uid", ""),
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "data": bundle.data,
    }
