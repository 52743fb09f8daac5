"""``smokegate diff BASE [HEAD]``: what a merge would change, per HelmRelease and Kustomization.

Each side is a directory, or a git revision of the repository (materialized with ``git
archive`` into a scratch directory: the repository is never checked out or changed). Without
HEAD the working tree is the head side, uncommitted changes included. Both sides are built and
rendered exactly as ``validate`` does; then, per owner (a Flux Kustomization's own objects, a
HelmRelease's rendered objects):

* objects added, removed and changed, with a unified diff of each changed object's YAML (keys
  sorted, so only real changes show; Secret values replaced by ``redact.SecretMasker`` marks);
* for a HelmRelease: the chart and version on each side, the diff of its merged values (text
  from valuesFrom Secrets scrubbed), render errors on either side;
* the smokegate suites covering each changed release (``spec.release``), and the checks offline
  discovery derives from its rendered objects that are new, gone or changed.
"""

from __future__ import annotations

import difflib
import io
import os
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smokegate.core.errors import UsageError
from smokegate.premerge.findings import as_map
from smokegate.premerge.model import CLUSTER_SCOPED, Repo, group_of
from smokegate.premerge.redact import SecretMasker, SecretScrubber, secret_values
from smokegate.premerge.render import RenderedRelease
from smokegate.premerge.repo import load_repo
from smokegate.premerge.tools import ToolError, Tools, run_tool
from smokegate.premerge.yamlio import dump


@dataclass(frozen=True, slots=True)
class DiffOptions:
    base: str
    head: str | None = None
    repo: str = "."
    kube_version: str | None = None
    chart_dirs: Sequence[str] = ()
    pull: bool = True
    api_versions: Sequence[str] = ()
    jobs: int = 0
    kubectl: str | None = None
    helm: str | None = None
    context: int = 3
    discovery: bool = True


@dataclass(slots=True)
class ObjectChange:
    object: str
    """``Kind namespace/name``."""
    change: str
    """added | removed | changed"""
    diff: str
    """Unified diff (for added/removed: the whole object as + or - lines)."""
    template: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"object": self.object, "change": self.change, "diff": self.diff}
        if self.template:
            out["template"] = self.template
        return out


@dataclass(slots=True)
class OwnerChange:
    kind: str
    """HelmRelease | Kustomization"""
    id: str
    change: str
    """added | removed | changed"""
    objects: list[ObjectChange] = field(default_factory=list)
    chart: tuple[str | None, str | None] | None = None
    """(base ``name version``, head ``name version``) when it changed."""
    values_diff: str | None = None
    errors: list[str] = field(default_factory=list)
    suites: list[str] = field(default_factory=list)
    checks_new: list[str] = field(default_factory=list)
    checks_gone: list[str] = field(default_factory=list)
    checks_changed: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.kind} {self.id}"

    def counts(self) -> dict[str, int]:
        out = {"added": 0, "removed": 0, "changed": 0}
        for o in self.objects:
            out[o.change] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "id": self.id,
            "change": self.change,
            "objects": [o.to_json() for o in self.objects],
        }
        if self.chart:
            data["chart"] = {"base": self.chart[0], "head": self.chart[1]}
        if self.values_diff:
            data["valuesDiff"] = self.values_diff
        if self.errors:
            data["errors"] = self.errors
        if self.kind == "HelmRelease":
            data["suites"] = self.suites
        if self.kind == "HelmRelease" or self.checks_new or self.checks_gone:
            data["discoveredChecks"] = {
                "new": self.checks_new,
                "gone": self.checks_gone,
                "changed": self.checks_changed,
            }
        return data


@dataclass(slots=True)
class DiffResult:
    base: str
    head: str
    owners: list[OwnerChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duration: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.owners)

    def to_json(self) -> dict[str, Any]:
        releases = [o for o in self.owners if o.kind == "HelmRelease"]
        return {
            "base": self.base,
            "head": self.head,
            "changed": self.changed,
            "summary": {
                "helmReleasesChanged": len(releases),
                "kustomizationsChanged": len(self.owners) - len(releases),
                "objectsAdded": sum(o.counts()["added"] for o in self.owners),
                "objectsRemoved": sum(o.counts()["removed"] for o in self.owners),
                "objectsChanged": sum(o.counts()["changed"] for o in self.owners),
                "durationSeconds": round(self.duration, 3),
            },
            "owners": [o.to_json() for o in self.owners],
            "notes": self.notes,
        }


@dataclass(slots=True)
class Side:
    label: str
    repo: Repo
    releases: list[RenderedRelease]


# --- materializing ------------------------------------------------------------------------------


def materialize(spec: str, repo_dir: str, scratch: Path, tools: Tools, label: str) -> Path:
    """A directory holding side ``spec``: itself when it is a directory, else the tree of git
    revision ``spec`` of the repository at ``repo_dir`` (its subdirectory, when ``repo_dir``
    is one)."""
    if Path(spec).is_dir():
        return Path(spec)
    git = tools.git
    try:
        top = run_tool([git, "-C", repo_dir, "rev-parse", "--show-toplevel"]).strip()
        prefix = run_tool([git, "-C", repo_dir, "rev-parse", "--show-prefix"]).strip()
    except ToolError:
        raise UsageError(
            f"{label} {spec!r}: not a directory, and {repo_dir} is not in a git repository "
            "(give two directories, or run inside the repository / pass --repo)"
        ) from None
    try:
        commit = run_tool(
            [git, "-C", top, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"]
        )
    except ToolError:
        raise UsageError(
            f"{label} {spec!r}: neither a directory nor a git revision of {top}"
        ) from None
    import subprocess

    proc = subprocess.run(
        [git, "-C", top, "archive", "--format=tar", commit.strip()],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise UsageError(
            f"{label} {spec!r}: git archive failed: {proc.stderr.decode(errors='replace').strip()}"
        )
    dest = scratch / label.lower()
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest / prefix if prefix else dest


def _describe(spec: str | None, path: Path) -> str:
    return spec if spec else f"working tree ({path})"


# --- comparing ----------------------------------------------------------------------------------


def diff_repositories(options: DiffOptions) -> DiffResult:
    from smokegate.premerge.schemas import resolve_kube_version
    from smokegate.premerge.validate import render_repository

    started = time.monotonic()
    tools = Tools.find(kubectl=options.kubectl, helm=options.helm)
    try:
        kube_version = resolve_kube_version(options.kube_version)
    except UsageError:
        if options.kube_version:
            raise
        kube_version = None  # without kubernetes-validate: helm's default capabilities
    with tempfile.TemporaryDirectory(prefix="smokegate-diff-") as scratch_name:
        scratch = Path(scratch_name)
        os.chmod(scratch, 0o700)
        base_dir = materialize(options.base, options.repo, scratch, tools, "BASE")
        head_dir = (
            materialize(options.head, options.repo, scratch, tools, "HEAD")
            if options.head
            else Path(options.repo)
        )
        sides = []
        for label, d in (("base", base_dir), ("head", head_dir)):
            repo = load_repo(d, kubectl=tools.kubectl)
            sides.append(Side(label, repo, render_repository(repo, tools, options, kube_version)))
    result = DiffResult(options.base, _describe(options.head, head_dir))
    compare(sides[0], sides[1], result, options)
    result.duration = time.monotonic() - started
    return result


def _scrubber(masker: SecretMasker, *sides: Side) -> SecretScrubber:
    r = SecretScrubber(masker)
    for side in sides:
        for rel in side.releases:
            for s in rel.secret_strings:
                r.add(s)
        for obj in side.repo.objects:
            if obj.kind == "Secret":
                for v in secret_values(obj.data):
                    r.add(v)
        for rel in side.releases:
            for ro in rel.objects:
                if ro.kind == "Secret":
                    for v in secret_values(ro.data):
                        r.add(v)
    return r


def _key(data: dict[str, Any], default_ns: str | None) -> tuple[str, str, str, str]:
    meta = as_map(data.get("metadata"))
    kind = str(data.get("kind") or "")
    ns = meta.get("namespace") or (None if kind in CLUSTER_SCOPED else default_ns)
    return (group_of(str(data.get("apiVersion") or "")), kind, str(ns or ""), str(meta.get("name")))


def _label(key: tuple[str, str, str, str]) -> str:
    _, kind, ns, name = key
    return f"{kind} {ns}/{name}" if ns else f"{kind} {name}"


def compare(base: Side, head: Side, result: DiffResult, options: DiffOptions) -> None:
    masker = SecretMasker()
    redactor = _scrubber(masker, base, head)

    def text(data: dict[str, Any]) -> str:
        return dump(masker.object(data))

    owners: list[OwnerChange] = []
    # What each side would apply, all of it: a Service of a Kustomization is served by the pods
    # of a HelmRelease (discovery needs both to tell which checks a change adds or removes).
    base_world, head_world = _world(base), _world(head)
    # Kustomizations: their own objects.
    base_ks = {k.id: k for k in base.repo.kustomizations}
    head_ks = {k.id: k for k in head.repo.kustomizations}
    for ks_id in sorted(set(base_ks) | set(head_ks)):
        b: Keyed = {
            _key(o.data, "default"): (o.data, None)
            for o in (base_ks[ks_id].objects if ks_id in base_ks else [])
        }
        h: Keyed = {
            _key(o.data, "default"): (o.data, None)
            for o in (head_ks[ks_id].objects if ks_id in head_ks else [])
        }
        change = OwnerChange("Kustomization", ks_id, _presence(ks_id in base_ks, ks_id in head_ks))
        ks_errors = [
            redactor.scrub(k.error) if k is not None and k.error else None
            for k in (base_ks.get(ks_id), head_ks.get(ks_id))
        ]
        if ks_errors[0] and ks_errors[0] == ks_errors[1]:
            result.notes.append(f"Kustomization {ks_id} builds on neither side: {ks_errors[1]}")
            continue
        for side, err in zip(("base", "head"), ks_errors, strict=True):
            if err:
                change.errors.append(f"{side}: {err}")
        change.objects = _object_changes(b, h, text, redactor, options.context)
        if change.objects or change.errors or change.change != "changed":
            if options.discovery and change.objects:
                _checks(
                    change,
                    [o.data for o in base_ks[ks_id].objects] if ks_id in base_ks else None,
                    [o.data for o in head_ks[ks_id].objects] if ks_id in head_ks else None,
                    "default",
                    (base_world, head_world),
                )
            owners.append(change)
    # HelmReleases: their rendered objects, chart and values.
    base_rel = {r.id: r for r in base.releases}
    head_rel = {r.id: r for r in head.releases}
    suites = _suites(head) + [s for s in _suites(base) if s not in _suites(head)]
    for rid in sorted(set(base_rel) | set(head_rel)):
        br, hr = base_rel.get(rid), head_rel.get(rid)
        change = OwnerChange("HelmRelease", rid, _presence(br is not None, hr is not None))
        rb: Keyed = (
            {_key(o.data, br.namespace): (o.data, o.template) for o in br.objects} if br else {}
        )
        rh: Keyed = (
            {_key(o.data, hr.namespace): (o.data, o.template) for o in hr.objects} if hr else {}
        )
        if not ((br is not None and br.error) or (hr is not None and hr.error)):
            # A side that did not render has no objects to compare: not "all removed".
            change.objects = _object_changes(rb, rh, text, redactor, options.context)
        charts = (_chart_words(br), _chart_words(hr))
        if charts[0] != charts[1]:
            change.chart = charts
        values = [dump(r.values) if r is not None and r.error is None else "" for r in (br, hr)]
        if br is not None and hr is not None and values[0] != values[1]:
            change.values_diff = redactor.scrub(
                _unified(
                    values[0],
                    values[1],
                    f"base/{rid}/values",
                    f"head/{rid}/values",
                    options.context,
                )
            )
        errors = [redactor.scrub(r.error) if r is not None and r.error else None for r in (br, hr)]
        if errors[0] and errors[0] == errors[1]:
            # Broken before and after alike: not a change of this merge, but worth a word.
            result.notes.append(f"HelmRelease {rid} renders on neither side: {errors[1]}")
            continue
        for side, err in zip(("base", "head"), errors, strict=True):
            if err:
                change.errors.append(f"{side}: {err}")
        if (
            change.objects
            or change.chart
            or change.values_diff
            or change.errors
            or change.change != "changed"
        ):
            hr_obj = (hr or br).hr  # type: ignore[union-attr]
            change.suites = [
                f"{s.name} ({s.file})" for s in suites if s.covers(hr_obj.namespace, hr_obj.name)
            ]
            if options.discovery:
                namespace = (hr or br).namespace  # type: ignore[union-attr]
                _checks(change, _objects(br), _objects(hr), namespace, (base_world, head_world))
            owners.append(change)
    result.owners = owners


Keyed = dict[tuple[str, str, str, str], tuple[dict[str, Any], str | None]]
"""Objects by (group, kind, namespace, name), with the chart template of each."""


def _presence(in_base: bool, in_head: bool) -> str:
    if in_base and in_head:
        return "changed"
    return "added" if in_head else "removed"


def _chart_words(r: RenderedRelease | None) -> str | None:
    if r is None or r.chart is None:
        return None
    return f"{r.chart.name} {r.chart.version}".strip()


def _unified(a: str, b: str, from_name: str, to_name: str, context: int) -> str:
    return "".join(
        difflib.unified_diff(
            a.splitlines(keepends=True), b.splitlines(keepends=True), from_name, to_name, n=context
        )
    )


def _object_changes(
    base: dict[tuple[str, str, str, str], tuple[dict[str, Any], str | None]],
    head: dict[tuple[str, str, str, str], tuple[dict[str, Any], str | None]],
    text: Any,
    redactor: SecretScrubber,
    context: int,
) -> list[ObjectChange]:
    out: list[ObjectChange] = []
    for key in sorted(set(base) | set(head)):
        label = _label(key)
        path = label.replace(" ", "/")
        if key not in base:
            data, template = head[key]
            diff = _unified("", text(data), "/dev/null", f"head/{path}", context)
            out.append(ObjectChange(label, "added", redactor.scrub(diff), template))
        elif key not in head:
            data, template = base[key]
            diff = _unified(text(data), "", f"base/{path}", "/dev/null", context)
            out.append(ObjectChange(label, "removed", redactor.scrub(diff), template))
        else:
            a, b = text(base[key][0]), text(head[key][0])
            if a != b:
                diff = _unified(a, b, f"base/{path}", f"head/{path}", context)
                out.append(ObjectChange(label, "changed", redactor.scrub(diff), head[key][1]))
    return out


def _suites(side: Side) -> list[Any]:
    from smokegate.premerge.suites import suite_infos

    return suite_infos(side.repo.suites)


def _objects(r: RenderedRelease | None) -> list[dict[str, Any]] | None:
    return None if r is None or r.error is not None else [o.data for o in r.objects]


def _world(side: Side) -> list[dict[str, Any]]:
    """Every object the side applies, each with its namespace (``helm template`` leaves it out
    of most objects; the release's is where Helm installs them)."""
    # Releases first: discovery names checks by manifest order, and a chart's own Service
    # keeps the plain name when a Kustomization adds another route to the same pods.
    out: list[dict[str, Any]] = []
    for r in side.releases:
        for o in _objects(r) or []:
            meta = as_map(o.get("metadata"))
            if meta.get("namespace") or o.get("kind") in CLUSTER_SCOPED:
                out.append(o)
            else:
                out.append({**o, "metadata": {**meta, "namespace": r.namespace}})
    out.extend(o.data for k in side.repo.kustomizations for o in k.objects)
    return out


def _checks(
    change: OwnerChange,
    base: list[dict[str, Any]] | None,
    head: list[dict[str, Any]] | None,
    namespace: str,
    worlds: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    """Offline discovery (``smokegate discover -f``'s library) on each side: the checks this
    owner's objects bring, among everything else that side applies."""
    b = _owned_checks(base, worlds[0], namespace)
    h = _owned_checks(head, worlds[1], namespace)
    change.checks_new = sorted(set(h) - set(b))
    change.checks_gone = sorted(set(b) - set(h))
    change.checks_changed = sorted(n for n in set(b) & set(h) if b[n] != h[n])


def _owned_checks(
    own: list[dict[str, Any]] | None, world: list[dict[str, Any]], namespace: str
) -> dict[str, str]:
    """Checks discovered with the owner's objects that are not there without them (the side's
    order kept: discovery names checks by manifest order)."""
    if not own:
        return {}
    mine = {_key(o, namespace) for o in own}
    # Discovery (like `discover hr/...`) sees one namespace at a time: only the owner's.
    spaces = {k[2] for k in mine if k[2]}
    world = [o for o in world if _key(o, namespace)[2] in spaces]
    others = [o for o in world if _key(o, namespace) not in mine]
    if len(others) == len(world):  # not part of the side's world: discovery on its own
        world = [*world, *own]
    with_own = _discovered(world, namespace)
    without = _discovered(others, namespace)
    return {n: v for n, v in with_own.items() if without.get(n) != v}


def _discovered(objects: list[dict[str, Any]] | None, namespace: str) -> dict[str, str]:
    if not objects:
        return {}
    from smokegate.discover.build import build_checks
    from smokegate.discover.objects import collect

    try:
        checks, _ = build_checks(collect(objects, namespace))
    except Exception:  # discovery is a bonus here: a shape it cannot read is no diff failure
        return {}
    return {c.name: dump(c.entry()) for c in checks}
