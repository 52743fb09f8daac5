"""``smokegate validate``: the whole pre-merge check of a GitOps repository.

Build the repository (``repo``), render every HelmRelease (``render``), validate every built and
rendered object against its schema (``schemas``), lint the smokegate suites (``suites``). Every
problem is a located ``Finding``; nothing here raises for a problem *in* the repository.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smokegate.core.secrets import Redactor
from smokegate.premerge.charts import ChartSettings
from smokegate.premerge.findings import Finding, Findings, as_map, dotted
from smokegate.premerge.model import Repo
from smokegate.premerge.render import RenderedRelease, RenderSettings, render_all
from smokegate.premerge.repo import load_repo
from smokegate.premerge.schemas import Schemas, crds_in
from smokegate.premerge.tools import Tools


@dataclass(frozen=True, slots=True)
class ValidateOptions:
    directory: str = "."
    kube_version: str | None = None
    kube_schemas: bool = True
    chart_dirs: Sequence[str] = ()
    pull: bool = True
    api_versions: Sequence[str] = ()
    jobs: int = 0
    kubectl: str | None = None
    helm: str | None = None
    suites: bool = True


@dataclass(slots=True)
class ValidationReport:
    directory: str
    findings: list[Finding] = field(default_factory=list)
    kustomizations: int = 0
    releases: int = 0
    rendered: int = 0
    objects: int = 0
    validated: int = 0
    unvalidated: dict[str, int] = field(default_factory=dict)
    """``apiVersion Kind`` -> count of objects no schema knows."""
    suites: int = 0
    kube_version: str | None = None
    duration: float = 0.0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "ok": self.ok,
            "summary": {
                "errors": len(self.errors),
                "warnings": len(self.warnings),
                "kustomizations": self.kustomizations,
                "helmReleases": self.releases,
                "helmReleasesRendered": self.rendered,
                "objects": self.objects,
                "objectsValidated": self.validated,
                "suites": self.suites,
                "kubernetesVersion": self.kube_version,
                "durationSeconds": round(self.duration, 3),
            },
            "unvalidatedKinds": self.unvalidated,
            "findings": [f.to_json() for f in self.findings],
        }


def validate_repository(options: ValidateOptions) -> ValidationReport:
    """Raises ``UsageError`` only when the repository cannot be read or a tool is missing."""
    started = time.monotonic()
    tools = Tools.find(kubectl=options.kubectl, helm=options.helm)
    schemas = Schemas(options.kube_version, kube=options.kube_schemas)
    schemas.add_bundled_flux_crds()
    repo = load_repo(options.directory, kubectl=tools.kubectl)
    releases = render_repository(repo, tools, options, schemas.kube_version)
    findings = Findings(list(repo.findings.items))
    report = ValidationReport(options.directory, kube_version=schemas.kube_version)
    _release_findings(releases, findings)
    for crd in crds_in(o.data for o in (*repo.objects, *repo.unowned)):
        schemas.add_crd(crd)
    for r in releases:
        for crd in crds_in(o.data for o in r.objects):
            schemas.add_crd(crd)
    unvalidated: Counter[str] = Counter()
    for obj in (*repo.objects, *repo.unowned):
        report.objects += 1
        _check_object(obj.data, schemas, findings, unvalidated, report, source=obj)
    for r in releases:
        for ro in r.objects:
            report.objects += 1
            _check_object(ro.data, schemas, findings, unvalidated, report, rendered=(r, ro))
    if options.suites:
        from smokegate.premerge.suites import lint_suites

        report.suites = lint_suites(repo, findings)
    report.kustomizations = sum(1 for k in repo.kustomizations if k.obj is not None)
    report.releases = len(releases)
    report.rendered = sum(1 for r in releases if r.error is None)
    report.unvalidated = dict(sorted(unvalidated.items()))
    report.findings = _redacted(findings.items, repo, releases)
    report.duration = time.monotonic() - started
    return report


def render_repository(
    repo: Repo, tools: Tools, options: Any, kube_version: str | None
) -> list[RenderedRelease]:
    settings = RenderSettings(
        helm=tools.helm,
        kubectl=tools.kubectl,
        kube_version=kube_version,
        api_versions=tuple(options.api_versions),
        charts=ChartSettings(
            chart_dirs=tuple(Path(d) for d in options.chart_dirs),
            pull=options.pull,
            helm=tools.helm,
        ),
        jobs=options.jobs,
    )
    return render_all(repo, settings)


def _release_findings(releases: list[RenderedRelease], findings: Findings) -> None:
    for r in releases:
        for path, note in r.notes:
            findings.warning("values", note, release=r.id, **r.hr.where(path))
        if r.error is not None:
            findings.error(
                r.error_category,
                f"HelmRelease {r.id}: {r.error}",
                release=r.id,
                **r.hr.where(r.error_field),
            )


def _check_object(
    data: dict[str, Any],
    schemas: Schemas,
    findings: Findings,
    unvalidated: Counter[str],
    report: ValidationReport,
    *,
    source: Any = None,
    rendered: tuple[RenderedRelease, Any] | None = None,
) -> None:
    kind = str(data.get("kind") or "")
    meta = as_map(data.get("metadata"))
    name = str(meta.get("name") or "")
    ns = meta.get("namespace") or (rendered[0].namespace if rendered else None)
    what = f"{kind} {ns}/{name}" if ns else f"{kind} {name}"

    def where(path: tuple[Any, ...]) -> dict[str, Any]:
        if rendered is not None:
            return {"release": rendered[0].id, "template": rendered[1].template, "object": what}
        return {**source.where(path), "object": what}

    if not data.get("apiVersion") or not kind:
        findings.error("schema", "apiVersion and kind are required", **where(()))
        return
    if not name and not meta.get("generateName"):
        findings.error("schema", "metadata.name is required", **where(("metadata",)))
    problems = schemas.validate(data)
    if problems is None:
        unvalidated[f"{data.get('apiVersion')} {kind}"] += 1
        return
    report.validated += 1
    for p in problems:
        message = p.message
        if kind == "Secret" and p.path[:1] in (("data",), ("stringData",)):
            message = "value is not valid here (Secret value not shown)"
        findings.error("schema", message, field=dotted(p.path) or None, **where(p.path))


def _redacted(items: list[Finding], repo: Repo, releases: list[RenderedRelease]) -> list[Finding]:
    """Findings with every Secret value of the repository and of valuesFrom scrubbed."""
    from dataclasses import replace

    from smokegate.premerge.redact import secret_values

    redactor = Redactor()
    for r in releases:
        for s in r.secret_strings:
            redactor.add(s)
    for obj in repo.objects:
        if obj.kind == "Secret":
            for v in secret_values(obj.data):
                redactor.add(v)
    if not redactor:
        return items
    return [replace(f, message=redactor.redact(f.message)) for f in items]
