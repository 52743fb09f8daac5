"""Render every HelmRelease with the real ``helm template``, in parallel, as helm-controller
would install it.

Per release (helm-controller ``api/v2/helmrelease_types.go`` ``GetReleaseName`` and
``internal/release/name.go`` ``ShortenName``):

* Helm release name: ``spec.releaseName``, else ``<targetNamespace>-<name>`` when
  ``spec.targetNamespace`` is set, else ``metadata.name``; longer than 53 characters becomes
  the first 40, ``-`` and 12 hex characters of its sha256;
* namespace: ``spec.targetNamespace``, else the HelmRelease's (``spec.storageNamespace`` only
  says where Helm keeps its records, and does not change what is rendered);
* CRDs: the chart's ``crds/`` are included unless ``spec.install.crds`` is ``Skip`` (what an
  install would apply);
* test hooks only when ``spec.test.enable`` is true;
* then, like helm-controller's post-renderers: ``spec.postRenderers[].kustomize`` patches and
  images (with the real ``kubectl kustomize``), ``spec.commonMetadata``, and the origin labels
  ``helm.toolkit.fluxcd.io/name`` and ``/namespace`` on every object.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smokegate.premerge.charts import ChartError, ChartSettings, ResolvedChart, resolve_chart
from smokegate.premerge.findings import as_map
from smokegate.premerge.model import Repo, RepoObject
from smokegate.premerge.tools import ToolError, run_tool
from smokegate.premerge.values import (
    ComposedValues,
    ValuesError,
    ValuesSource,
    compose_values,
    source_from_object,
)
from smokegate.premerge.yamlio import YamlError, dump, load_all, split_helm_output

MAX_RELEASE_NAME = 53


def release_name(hr: Mapping[str, Any]) -> str:
    spec = hr.get("spec") or {}
    meta = hr.get("metadata") or {}
    name = str(spec.get("releaseName") or "")
    if not name:
        target = spec.get("targetNamespace")
        name = f"{target}-{meta.get('name')}" if target else str(meta.get("name") or "")
    if len(name) > MAX_RELEASE_NAME:
        name = name[:40] + "-" + hashlib.sha256(name.encode()).hexdigest()[:12]
    return name


@dataclass(slots=True)
class RenderedObject:
    data: dict[str, Any]
    template: str | None

    @property
    def kind(self) -> str:
        return str(self.data.get("kind") or "")

    @property
    def name(self) -> str:
        return str((self.data.get("metadata") or {}).get("name") or "")


@dataclass(slots=True)
class RenderedRelease:
    hr: RepoObject
    release_name: str
    namespace: str
    label: str = ""
    """``namespace/name`` of the HelmRelease (with its cluster when there are several)."""
    chart: ResolvedChart | None = None
    values: dict[str, Any] = field(default_factory=dict)
    secret_strings: list[str] = field(default_factory=list)
    objects: list[RenderedObject] = field(default_factory=list)
    error: str | None = None
    error_category: str = "render"
    error_field: tuple[str | int, ...] = ()
    notes: list[tuple[tuple[str | int, ...], str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.label or f"{self.hr.namespace}/{self.hr.name}"


@dataclass(frozen=True, slots=True)
class RenderSettings:
    helm: str
    kubectl: str
    kube_version: str | None = None
    api_versions: Sequence[str] = ()
    charts: ChartSettings = field(default_factory=ChartSettings)
    jobs: int = 0
    """Parallel `helm template` processes; 0: one per CPU core."""


def values_lookup(repo: Repo, hr: RepoObject) -> Any:
    """(kind, name) -> ValuesSource for the HelmRelease's namespace: the object its own
    Kustomization applies first, else any the repository applies there."""
    ns = hr.namespace

    def lookup(kind: str, name: str) -> ValuesSource | None:
        candidates = [
            o
            for o in (*repo.objects, *repo.unowned)
            if o.kind == kind and o.name == name and o.namespace == ns and o.api_version == "v1"
        ]
        candidates.sort(
            key=lambda o: (o.kustomization != hr.kustomization, o.cluster != hr.cluster)
        )
        return source_from_object(candidates[0].data) if candidates else None

    return lookup


def prepare(repo: Repo, hr: RepoObject, settings: RenderSettings) -> RenderedRelease:
    spec = hr.data.get("spec") or {}
    target = str(spec.get("targetNamespace") or hr.namespace or "default")
    out = RenderedRelease(hr, release_name(hr.data), target, repo.label(hr))
    try:
        composed: ComposedValues = compose_values(
            as_map(spec.get("values")),
            [r for r in spec.get("valuesFrom") or () if isinstance(r, Mapping)],
            values_lookup(repo, hr),
            hr.namespace or "default",
        )
    except ValuesError as exc:
        out.error, out.error_category = exc.message, "values"
        out.error_field = ("spec", "valuesFrom", exc.index) if exc.index is not None else ()
        return out
    out.values = composed.values
    out.secret_strings = composed.secret_strings
    out.notes = [(("spec", "valuesFrom", i), m) for i, m in composed.notes]
    try:
        out.chart = resolve_chart(hr, repo, settings.charts)
    except ChartError as exc:
        out.error, out.error_category, out.error_field = exc.message, "chart", exc.field_path
    return out


def render_all(repo: Repo, settings: RenderSettings) -> list[RenderedRelease]:
    """Every HelmRelease of ``repo``, rendered; failures are in each release's ``error``."""
    releases = [prepare(repo, hr, settings) for hr in repo.helmreleases]
    todo = [r for r in releases if r.error is None]
    jobs = settings.jobs or os.cpu_count() or 2
    with tempfile.TemporaryDirectory(prefix="smokegate-render-") as scratch:
        os.chmod(scratch, 0o700)  # values files may hold Secret values
        if jobs <= 1 or len(todo) <= 1:
            for i, r in enumerate(todo):
                _render_one(r, settings, Path(scratch) / str(i))
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                list(
                    pool.map(
                        lambda ir: _render_one(ir[1], settings, Path(scratch) / str(ir[0])),
                        enumerate(todo),
                    )
                )
    return releases


def _render_one(r: RenderedRelease, settings: RenderSettings, scratch: Path) -> None:
    assert r.chart is not None
    scratch.mkdir(parents=True, exist_ok=True)
    values_file = scratch / "values.json"
    values_file.write_text(json.dumps(r.values, default=str), encoding="utf-8")
    spec = r.hr.data.get("spec") or {}
    argv = [
        settings.helm,
        "template",
        r.release_name,
        r.chart.path,
        "--namespace",
        r.namespace,
        "--values",
        str(values_file),
    ]
    if str(((spec.get("install") or {}).get("crds")) or "Create") != "Skip":
        argv.append("--include-crds")
    if not (spec.get("test") or {}).get("enable"):
        argv.append("--skip-tests")
    if settings.kube_version:
        argv += ["--kube-version", settings.kube_version]
    for api in settings.api_versions:
        argv += ["--api-versions", api]
    try:
        text = run_tool(argv, timeout=300)
    except ToolError as exc:
        r.error = f"helm template failed: {_scrub_paths(exc.message, scratch)}"
        return
    objects: list[RenderedObject] = []
    for template, chunk in split_helm_output(text):
        try:
            docs = load_all(chunk)
        except YamlError as exc:
            r.error = f"{template or 'output'}: rendered text is not YAML: {exc.message}"
            return
        for doc in docs:
            if isinstance(doc, dict) and doc:
                objects.append(RenderedObject(doc, template))
    post = [p for p in spec.get("postRenderers") or () if isinstance(p, Mapping)]
    if post:
        try:
            objects = _post_render(objects, post, settings.kubectl, scratch)
        except ToolError as exc:
            r.error = f"postRenderers: kustomize failed: {exc.message}"
            return
    _stamp(objects, r.hr, spec.get("commonMetadata"))
    r.objects = objects


def _scrub_paths(message: str, scratch: Path) -> str:
    return message.replace(str(scratch / "values.json"), "(values)")


def _identity(data: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = data.get("metadata") or {}
    return (str(data.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name")))


def _post_render(
    objects: list[RenderedObject],
    post: list[Mapping[str, Any]],
    kubectl: str,
    scratch: Path,
) -> list[RenderedObject]:
    for i, step in enumerate(post):
        k = step.get("kustomize")
        if not isinstance(k, Mapping):
            continue
        templates = {_identity(o.data): o.template for o in objects}
        d = scratch / f"post-{i}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "all.yaml").write_text(
            "---\n".join(dump(o.data) for o in objects) or "", encoding="utf-8"
        )
        kustomization: dict[str, Any] = {"resources": ["all.yaml"]}
        if k.get("patches"):
            kustomization["patches"] = list(k["patches"])
        if k.get("images"):
            kustomization["images"] = list(k["images"])
        (d / "kustomization.yaml").write_text(dump(kustomization), encoding="utf-8")
        text = run_tool([kubectl, "kustomize", str(d)])
        objects = [
            RenderedObject(doc, templates.get(_identity(doc)))
            for doc in load_all(text)
            if isinstance(doc, dict)
        ]
    return objects


def _stamp(objects: list[RenderedObject], hr: RepoObject, common: Any) -> None:
    labels = {
        "helm.toolkit.fluxcd.io/name": hr.name,
        "helm.toolkit.fluxcd.io/namespace": hr.namespace or "default",
    }
    extra_labels = dict((common or {}).get("labels") or {}) if isinstance(common, Mapping) else {}
    extra_ann = dict((common or {}).get("annotations") or {}) if isinstance(common, Mapping) else {}
    for o in objects:
        meta = o.data.setdefault("metadata", {})
        if not isinstance(meta, dict):
            continue
        if extra_labels or labels:
            current = as_map(meta.get("labels"))
            meta["labels"] = {**current, **extra_labels, **labels}
        if extra_ann:
            current = as_map(meta.get("annotations"))
            meta["annotations"] = {**current, **extra_ann}
