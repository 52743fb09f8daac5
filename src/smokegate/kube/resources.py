"""Kinds by API group/version and plural: the built-in ones smokegate uses, found without a
discovery request (and without permission on discovery), and any other resolved by
``KubeClient.resolve``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResourceType:
    """Where a kind lives in the API: enough to build its URLs."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def describe(self, name: str, namespace: str | None) -> str:
        """``deployment apps/api``: how errors and evidence name one object."""
        where = f"{namespace}/{name}" if self.namespaced and namespace else name
        return f"{self.kind.lower()} {where}"


def _rt(api_version: str, kind: str, plural: str, namespaced: bool = True) -> ResourceType:
    group, _, version = api_version.rpartition("/")
    return ResourceType(group, version, kind, plural, namespaced)


# Kinds suites use most, so the common case needs no discovery request (and no permission on
# discovery endpoints beyond the defaults). Anything else is found through API discovery.
BUILTIN: dict[str, ResourceType] = {
    rt.kind.lower(): rt
    for rt in (
        _rt("apps/v1", "Deployment", "deployments"),
        _rt("apps/v1", "StatefulSet", "statefulsets"),
        _rt("apps/v1", "DaemonSet", "daemonsets"),
        _rt("apps/v1", "ReplicaSet", "replicasets"),
        _rt("batch/v1", "Job", "jobs"),
        _rt("batch/v1", "CronJob", "cronjobs"),
        _rt("v1", "Pod", "pods"),
        _rt("v1", "Service", "services"),
        _rt("v1", "ConfigMap", "configmaps"),
        _rt("v1", "Secret", "secrets"),
        _rt("v1", "ServiceAccount", "serviceaccounts"),
        _rt("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        _rt("v1", "Endpoints", "endpoints"),
        _rt("v1", "Event", "events"),
        _rt("v1", "Namespace", "namespaces", namespaced=False),
        _rt("v1", "Node", "nodes", namespaced=False),
        _rt("networking.k8s.io/v1", "Ingress", "ingresses"),
        _rt("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
        _rt("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
        _rt("helm.toolkit.fluxcd.io/v2", "HelmRelease", "helmreleases"),
    )
}
HELMRELEASE = BUILTIN["helmrelease"]
SECRET = BUILTIN["secret"]
EVENT = BUILTIN["event"]
POD = BUILTIN["pod"]
JOB = BUILTIN["job"]
