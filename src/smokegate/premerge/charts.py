"""HelmRelease -> the chart helm-controller would install.

``spec.chart.spec`` (a HelmChart template) names a chart and a ``sourceRef``:

* ``GitRepository`` (or ``Bucket``): ``chart`` is a path in the source; the source is taken to
  be this repository (how a GitOps repository carries its own charts);
* ``HelmRepository``: ``chart`` is a name and ``version`` a semver constraint (default ``*``).
  The chart is looked up as ``NAME-VERSION.tgz`` in each ``--chart-dir`` (highest version
  matching), then in the pull cache, then pulled with ``helm pull`` (``oci://`` for
  ``type: oci`` repositories) unless pulling is off.

``spec.chartRef`` names an ``OCIRepository`` (the chart is the artifact at ``spec.url``, tag
``spec.ref.tag`` or ``spec.ref.semver``; its name is the last path segment) or a ``HelmChart``
object (resolved like ``spec.chart.spec``).

``valuesFiles`` replace the chart's default values with the merge of the listed files (in the
source for Git sources, in the chart for Helm repositories), as source-controller does.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smokegate.premerge.model import Repo, RepoObject
from smokegate.premerge.semver import best, is_exact
from smokegate.premerge.tools import ToolError, run_tool
from smokegate.premerge.yamlio import YamlError, dump, load_one

CACHE = Path.home() / ".cache" / "smokegate" / "charts"


class ChartError(Exception):
    def __init__(self, message: str, field_path: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.field_path = field_path


@dataclass(frozen=True, slots=True)
class ChartSettings:
    chart_dirs: Sequence[Path] = ()
    pull: bool = True
    cache: Path = CACHE
    helm: str = "helm"
    scratch: Path | None = None
    """Where charts changed for ``valuesFiles`` are written."""


@dataclass(slots=True)
class ResolvedChart:
    path: str
    """A chart directory or a packaged ``.tgz``."""
    name: str
    version: str
    source: str
    """In words: ``charts/web in this repository``, ``HelmRepository apps/bitnami``."""
    notes: list[str] = field(default_factory=list)


_TGZ = re.compile(r"^(?P<name>.+?)-(?P<version>v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?)\.tgz$")


def resolve_chart(hr: RepoObject, repo: Repo, settings: ChartSettings) -> ResolvedChart:
    spec = hr.data.get("spec") or {}
    namespace = hr.namespace or "default"
    if spec.get("chartRef"):
        return _from_chart_ref(hr, spec["chartRef"], repo, settings, namespace)
    chart_spec = ((spec.get("chart") or {}).get("spec")) or {}
    if not chart_spec:
        raise ChartError("has neither spec.chart nor spec.chartRef", ("spec",))
    return _from_chart_spec(
        chart_spec, namespace, repo, settings, ("spec", "chart", "spec"), hr.cluster
    )


def _from_chart_ref(
    hr: RepoObject,
    ref: Mapping[str, Any],
    repo: Repo,
    settings: ChartSettings,
    namespace: str,
) -> ResolvedChart:
    kind = str(ref.get("kind") or "")
    name = str(ref.get("name") or "")
    ns = str(ref.get("namespace") or namespace)
    obj = repo.find(kind, ns, name, hr.cluster)
    where = ("spec", "chartRef")
    if obj is None:
        raise ChartError(f"spec.chartRef: {kind} {ns}/{name} is not in the repository", where)
    if kind == "HelmChart":
        spec = obj.data.get("spec") or {}
        return _from_chart_spec(spec, ns, repo, settings, where, hr.cluster)
    if kind != "OCIRepository":
        raise ChartError(f"spec.chartRef: kind {kind!r} is not supported", where)
    spec = obj.data.get("spec") or {}
    url = str(spec.get("url") or "")
    if not url.startswith("oci://"):
        raise ChartError(f"OCIRepository {ns}/{name}: spec.url {url!r} is not oci://", where)
    ref_spec = spec.get("ref") or {}
    if ref_spec.get("digest") and not (ref_spec.get("tag") or ref_spec.get("semver")):
        version = ""
        constraint = "*"
    else:
        version = str(ref_spec.get("tag") or "")
        constraint = str(ref_spec.get("semver") or version or "latest")
    chart = url.rstrip("/").rsplit("/", 1)[-1]
    source = f"OCIRepository {ns}/{name} ({url})"
    local = _from_chart_dirs(chart, constraint if constraint != "latest" else "*", settings)
    if local is not None:
        return ResolvedChart(str(local[0]), chart, local[1], source)
    try:
        pulled = _pull(url, None, constraint if constraint != "latest" else "", settings, source)
    except ChartError as exc:
        raise ChartError(exc.message, where) from None
    return ResolvedChart(str(pulled[0]), chart, pulled[1], source)


def _from_chart_spec(
    chart_spec: Mapping[str, Any],
    namespace: str,
    repo: Repo,
    settings: ChartSettings,
    where: tuple[str, ...],
    cluster: str | None = None,
) -> ResolvedChart:
    chart = str(chart_spec.get("chart") or "")
    if not chart:
        raise ChartError("no chart named", (*where, "chart"))
    source_ref = chart_spec.get("sourceRef") or {}
    kind = str(source_ref.get("kind") or "")
    name = str(source_ref.get("name") or "")
    ns = str(source_ref.get("namespace") or namespace)
    constraint = str(chart_spec.get("version") or "*")
    values_files = [str(v) for v in chart_spec.get("valuesFiles") or ()]
    if kind in ("GitRepository", "Bucket"):
        path = (repo.root / chart.lstrip("/")).resolve()
        if repo.root not in path.parents and path != repo.root:
            raise ChartError(f"chart path {chart!r} leaves the repository", (*where, "chart"))
        if not (path / "Chart.yaml").is_file():
            what = "does not exist" if not path.exists() else "has no Chart.yaml"
            raise ChartError(
                f"chart {chart!r} ({kind} {ns}/{name}: this repository) {what}",
                (*where, "chart"),
            )
        version = _chart_version(path / "Chart.yaml")
        resolved = ResolvedChart(
            str(path),
            _chart_name(path / "Chart.yaml") or path.name,
            version,
            f"{chart} in this repository",
        )
        if values_files:
            resolved.path = _with_values_files(path, values_files, repo.root, settings, where)
        return resolved
    if kind != "HelmRepository":
        raise ChartError(f"sourceRef kind {kind!r} is not supported", (*where, "sourceRef"))
    source = repo.find("HelmRepository", ns, name, cluster)
    source_spec = (source.data.get("spec") or {}) if source is not None else {}
    url = str(source_spec.get("url") or "")
    oci = source_spec.get("type") == "oci" or url.startswith("oci://")
    words = f"HelmRepository {ns}/{name}" + (f" ({url})" if url else "")
    local = _from_chart_dirs(chart, constraint, settings)
    if local is not None:
        resolved = ResolvedChart(str(local[0]), chart, local[1], words)
    else:
        if source is None:
            raise ChartError(
                f"chart {chart!r} {constraint}: HelmRepository {ns}/{name} is not in the "
                f"repository and no {chart}-<version>.tgz matching {constraint!r} is in "
                "--chart-dir",
                (*where, "sourceRef"),
            )
        ref = f"{url.rstrip('/')}/{chart}" if oci else chart
        try:
            pulled = _pull(
                ref, None if oci else url, constraint, settings, f"{words}, chart {chart}"
            )
        except ChartError as exc:
            raise ChartError(exc.message, (*where, "sourceRef")) from None
        resolved = ResolvedChart(str(pulled[0]), chart, pulled[1], words)
    if values_files:
        resolved.path = _with_values_files(Path(resolved.path), values_files, None, settings, where)
    return resolved


def _chart_meta(chart_yaml: Path) -> dict[str, Any]:
    try:
        data = load_one(chart_yaml.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YamlError):
        return {}
    return data if isinstance(data, dict) else {}


def _chart_version(chart_yaml: Path) -> str:
    return str(_chart_meta(chart_yaml).get("version") or "")


def _chart_name(chart_yaml: Path) -> str:
    return str(_chart_meta(chart_yaml).get("name") or "")


def _packages(directory: Path, chart: str) -> dict[str, Path]:
    out: dict[str, Path] = {}
    if not directory.is_dir():
        return out
    for p in directory.glob(f"{chart}-*.tgz"):
        m = _TGZ.match(p.name)
        if m and m.group("name") == chart:
            out[m.group("version")] = p
    return out


def _pick(packages: dict[str, Path], constraint: str) -> tuple[Path, str] | None:
    if constraint in packages:
        return packages[constraint], constraint
    if is_exact(constraint):
        return None
    version = best(list(packages), constraint)
    return (packages[version], version) if version else None


def _from_chart_dirs(
    chart: str, constraint: str, settings: ChartSettings
) -> tuple[Path, str] | None:
    for d in settings.chart_dirs:
        found = _pick(_packages(Path(d), chart), constraint)
        if found:
            return found
    return None


def _pull(
    ref: str, repo_url: str | None, constraint: str, settings: ChartSettings, words: str
) -> tuple[Path, str]:
    """A chart from the pull cache, else ``helm pull`` into it."""
    chart = ref.rstrip("/").rsplit("/", 1)[-1]
    key = hashlib.sha256(f"{repo_url or ''}|{ref}".encode()).hexdigest()[:16]
    cache = settings.cache / key
    if constraint:
        found = _pick(_packages(cache, chart), constraint)
        if found:
            return found
    if not settings.pull:
        raise ChartError(
            f"chart {chart!r} {constraint or 'latest'} from {words} is not in --chart-dir "
            f"and pulling is off (--no-pull): put {chart}-<version>.tgz in a --chart-dir"
        )
    cache.mkdir(parents=True, exist_ok=True)
    argv = [settings.helm, "pull", ref, "--destination", str(cache)]
    if repo_url:
        argv += ["--repo", repo_url]
    if constraint and constraint not in ("*", "latest"):
        argv += ["--version", constraint]
    before = set(_packages(cache, chart))
    try:
        run_tool(argv, timeout=120)
    except ToolError as exc:
        raise ChartError(
            f"chart {chart!r} {constraint or 'latest'} from {words}: not in --chart-dir and "
            f"`helm pull` failed: {exc.message}"
        ) from None
    after = _packages(cache, chart)
    new = [v for v in after if v not in before] or list(after)
    version = best(new, "*") or (new[0] if new else "")
    if not version:
        raise ChartError(f"`helm pull` of {chart!r} from {words} left no {chart}-*.tgz")
    return after[version], version


def _with_values_files(
    chart: Path,
    values_files: list[str],
    source_root: Path | None,
    settings: ChartSettings,
    where: tuple[str, ...],
) -> str:
    """A copy of the chart whose values.yaml is the merge of ``values_files``."""
    from smokegate.premerge.values import merge_maps

    scratch = settings.scratch or Path(CACHE.parent / "scratch")
    digest = hashlib.sha256(f"{chart}|{values_files}".encode()).hexdigest()[:12]
    dest = scratch / f"chart-{digest}"
    if dest.exists():
        shutil.rmtree(dest)
    if chart.is_file():
        with tarfile.open(chart) as tar:
            tar.extractall(dest, filter="data")
        inner = next(p for p in dest.iterdir() if (p / "Chart.yaml").is_file())
    else:
        shutil.copytree(chart, dest / chart.name)
        inner = dest / chart.name
    merged: dict[str, Any] = {}
    for vf in values_files:
        base = source_root if source_root is not None else inner
        path = (base / vf.lstrip("/")).resolve()
        try:
            data = load_one(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError) as exc:
            raise ChartError(
                f"valuesFiles: {vf}: cannot read: {exc}", (*where, "valuesFiles")
            ) from None
        except YamlError as exc:
            raise ChartError(f"valuesFiles: {vf}: {exc.message}", (*where, "valuesFiles")) from None
        if not isinstance(data, dict):
            raise ChartError(f"valuesFiles: {vf}: not a map", (*where, "valuesFiles"))
        merged = merge_maps(merged, data)
    (inner / "values.yaml").write_text(dump(merged), encoding="utf-8")
    return str(inner)
