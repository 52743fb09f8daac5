"""The repository's vocabulary: source files and documents, the objects Flux would apply, the
Flux Kustomizations that apply them, and the ``Repo`` that holds it all (``premerge.repo``
fills it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smokegate.premerge.findings import Findings
from smokegate.suite.yamlpos import Document, YamlSyntaxError, load_documents

UNOWNED = "(no Kustomization)"
"""The ``kustomization`` of objects no Flux Kustomization builds."""


class SourceFile:
    """A YAML file of the repository: read with the fast loader; positions (the slow,
    pure-Python ruamel parse) only when a finding needs a line."""

    def __init__(self, rel: str, text: str) -> None:
        self.rel = rel
        self.text = text
        self._positioned: list[Document] | None = None

    def positioned(self, index: int) -> Document | None:
        if self._positioned is None:
            try:
                self._positioned = load_documents(self.text, self.rel)
            except YamlSyntaxError:
                self._positioned = []
        return self._positioned[index] if index < len(self._positioned) else None


class SourceDoc:
    """One document of a ``SourceFile``: its data at once, its positions on demand (the
    interface of ``smokegate.suite.yamlpos.Document`` the pre-merge code uses)."""

    __slots__ = ("_source", "data", "file", "index")

    def __init__(self, source: SourceFile, index: int, data: Any) -> None:
        self._source = source
        self.index = index
        self.data = data
        self.file = source.rel

    def locate(self, path: tuple[str | int, ...], *, key: bool = False) -> tuple[int, int] | None:
        doc = self._source.positioned(self.index)
        return doc.locate(path, key=key) if doc is not None else None


FLUX_KS_GROUP = "kustomize.toolkit.fluxcd.io/"
HELM_GROUP = "helm.toolkit.fluxcd.io/"
SOURCE_GROUP = "source.toolkit.fluxcd.io/"
SUITE_GROUP = "smokegate.io/"
SKIP_DIRS = {"node_modules", "__pycache__", "vendor"}

# Kinds without a namespace (the common ones; CRDs found in the repository add theirs).
CLUSTER_SCOPED = {
    "Namespace",
    "Node",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "RuntimeClass",
    "CSIDriver",
    "CSINode",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "VolumeAttachment",
    "ClusterIssuer",
    "GatewayClass",
}


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


@dataclass(slots=True)
class RepoObject:
    """One object Flux would apply (after kustomize), and where it came from."""

    data: dict[str, Any]
    kustomization: str
    """``namespace/name`` of the Flux Kustomization applying it (``(repository root)``)."""
    file: str | None = None
    doc: SourceDoc | None = None
    """The source document (positions); may differ from ``data`` after patches."""
    cluster: str = "."
    """The cluster (root Kustomization tree) applying it: ``clusters/prod``."""

    @property
    def kind(self) -> str:
        return str(self.data.get("kind") or "")

    @property
    def api_version(self) -> str:
        return str(self.data.get("apiVersion") or "")

    @property
    def name(self) -> str:
        meta = self.data.get("metadata")
        return str(meta.get("name") or "") if isinstance(meta, dict) else ""

    @property
    def namespace(self) -> str | None:
        meta = self.data.get("metadata")
        ns = meta.get("namespace") if isinstance(meta, dict) else None
        if ns:
            return str(ns)
        return None if self.kind in CLUSTER_SCOPED else "default"

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (group_of(self.api_version), self.kind, self.namespace or "", self.name)

    @property
    def ref(self) -> str:
        return (
            f"{self.kind} {self.namespace}/{self.name}"
            if self.namespace
            else (f"{self.kind} {self.name}")
        )

    def line_of(self, path: Iterable[str | int] = ()) -> int | None:
        """Line of ``path`` in the source document (its closest ancestor that is there)."""
        if self.doc is None:
            return None
        pos = self.doc.locate(tuple(path), key=True)
        return pos[0] if pos else None

    def where(self, path: Iterable[str | int] = ()) -> dict[str, Any]:
        """``file``/``line`` keyword arguments for a finding about ``path`` of this object."""
        return {"file": self.file, "line": self.line_of(path), "kustomization": self.kustomization}


@dataclass(slots=True)
class FluxKustomization:
    obj: RepoObject | None
    """The Kustomization object (None for the implicit root one)."""
    spec: dict[str, Any]
    id: str
    objects: list[RepoObject] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None
    cluster: str = "."

    @property
    def path(self) -> str:
        return str(self.spec.get("path") or "./")


@dataclass(slots=True)
class Repo:
    root: Path
    kustomizations: list[FluxKustomization] = field(default_factory=list)
    objects: list[RepoObject] = field(default_factory=list)
    suites: list[SourceDoc] = field(default_factory=list)
    documents: dict[str, list[SourceDoc]] = field(default_factory=dict)
    findings: Findings = field(default_factory=Findings)
    clusters: list[str] = field(default_factory=list)
    unowned: list[RepoObject] = field(default_factory=list)
    """Objects of files no Kustomization builds: validated, looked up, never rendered."""

    def of_kind(self, group_prefix: str, *kinds: str) -> list[RepoObject]:
        return [
            o
            for o in self.objects
            if o.api_version.startswith(group_prefix) and (not kinds or o.kind in kinds)
        ]

    @property
    def helmreleases(self) -> list[RepoObject]:
        return self.of_kind(HELM_GROUP, "HelmRelease")

    def find(
        self, kind: str, namespace: str | None, name: str, cluster: str | None = None
    ) -> RepoObject | None:
        """An object by kind, namespace and name: of ``cluster`` first, then of any cluster,
        then among the objects no Kustomization builds."""
        hits = [
            o
            for o in (*self.objects, *self.unowned)
            if o.kind == kind and o.name == name and (o.namespace or None) == (namespace or None)
        ]
        hits.sort(key=lambda o: (o.kustomization == UNOWNED, o.cluster != cluster))
        return hits[0] if hits else None

    def label(self, obj: RepoObject) -> str:
        """``namespace/name``, with the cluster when the repository has several."""
        base = f"{obj.namespace}/{obj.name}"
        return f"{base} ({obj.cluster})" if len(self.clusters) > 1 else base
