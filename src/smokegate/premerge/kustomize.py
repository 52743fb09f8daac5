"""Build one Flux Kustomization the way kustomize-controller does, with the real
``kubectl kustomize``.

kustomize-controller (``fluxcd/pkg/kustomize``) builds ``spec.path`` of the source: the
directory's own ``kustomization.yaml`` when it has one, else a generated one listing every
manifest below it (a subdirectory with its own kustomization file is listed as a directory and
not walked further). It then adds the Kustomization's ``targetNamespace``, ``namePrefix``/
``nameSuffix``, ``patches``, ``images``, ``components`` and ``commonMetadata`` and builds with
load restrictions off. Here the same fields go into a wrapper kustomization next to the tree (so
the repository is never written to), which also asks kustomize for origin annotations: every
built object says which file it came from, and a problem in it can name ``file:line``.

``postBuild.substitute``/``substituteFrom`` are applied to each built object's YAML afterwards,
as kustomize-controller does (``${var}``, ``${var:=default}``, ``${var:-default}``,
``$${var}`` for a literal; objects annotated ``kustomize.toolkit.fluxcd.io/substitute:
disabled`` are left alone).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smokegate.premerge.tools import ToolError, run_tool
from smokegate.premerge.yamlio import YamlError, dump, load_all, load_one

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
SUBSTITUTE_ANNOTATION = "kustomize.toolkit.fluxcd.io/substitute"


@dataclass(slots=True)
class Built:
    objects: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)
    """(object, repository-relative file it came from, when kustomize said)."""
    error: str | None = None
    error_field: str | None = None
    """The Kustomization field the error is about (``spec.path``), for locating it."""
    notes: list[str] = field(default_factory=list)


def has_kustomization(directory: Path) -> bool:
    return any((directory / name).is_file() for name in KUSTOMIZATION_FILES)


def generated_resources(directory: Path) -> list[Path]:
    """What Flux's generator lists for a directory without a kustomization file: manifest
    files, and subdirectories that have their own kustomization file (not walked into).
    Directories holding a Helm chart (``Chart.yaml``) are skipped: their templates are not
    manifests."""
    out: list[Path] = []
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if (entry / "Chart.yaml").is_file():
                continue
            if has_kustomization(entry):
                out.append(entry)
            else:
                out.extend(generated_resources(entry))
        elif entry.suffix in MANIFEST_SUFFIXES and _is_manifest(entry):
            out.append(entry)
    return out


def _is_manifest(path: Path) -> bool:
    """A file with at least one Kubernetes object (Flux's generator skips other files)."""
    try:
        docs = load_all(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return False
    except YamlError:
        return True  # let kustomize say what is wrong with it
    return any(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in docs)


def wrapper_kustomization(
    spec: Mapping[str, Any], target: Path, wrap: Path
) -> tuple[dict[str, Any], list[str]]:
    """The kustomization that builds ``target`` with the Flux Kustomization's ``spec``."""
    notes: list[str] = []
    if has_kustomization(target):
        resources = [os.path.relpath(target, wrap)]
    else:
        resources = [os.path.relpath(p, wrap) for p in generated_resources(target)]
    k: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
        "buildMetadata": ["originAnnotations"],
    }
    if spec.get("targetNamespace"):
        k["namespace"] = spec["targetNamespace"]
    for key in ("namePrefix", "nameSuffix"):
        if spec.get(key):
            k[key] = spec[key]
    if spec.get("patches"):
        k["patches"] = list(spec["patches"])
    if spec.get("images"):
        k["images"] = list(spec["images"])
    if spec.get("components"):
        k["components"] = [os.path.relpath(target / c, wrap) for c in spec["components"]]
    meta = spec.get("commonMetadata") or {}
    if isinstance(meta, Mapping):
        if meta.get("labels"):
            k["labels"] = [{"pairs": dict(meta["labels"]), "includeSelectors": False}]
        if meta.get("annotations"):
            k["commonAnnotations"] = dict(meta["annotations"])
    return k, notes


def build(
    spec: Mapping[str, Any],
    repo_root: Path,
    wrap: Path,
    kubectl: str,
    variables: Callable[[], Mapping[str, str]] | None = None,
) -> Built:
    """Build a Flux Kustomization ``spec`` whose source is the repository at ``repo_root``;
    ``wrap`` is an empty scratch directory. ``variables`` gives postBuild's variables."""
    out = Built()
    raw_path = str(spec.get("path") or "./")
    target = (repo_root / raw_path.lstrip("/")).resolve()
    root = repo_root.resolve()
    if target != root and root not in target.parents:
        out.error, out.error_field = f"path {raw_path!r} leaves the repository", "spec.path"
        return out
    if not target.exists():
        out.error = f"path {raw_path!r} does not exist in the repository"
        out.error_field = "spec.path"
        return out
    if not target.is_dir():
        out.error, out.error_field = f"path {raw_path!r} is not a directory", "spec.path"
        return out
    wrap.mkdir(parents=True, exist_ok=True)
    kustomization, out.notes = wrapper_kustomization(spec, target, wrap)
    if not kustomization["resources"]:
        return out  # an empty directory builds to nothing, as in Flux
    (wrap / "kustomization.yaml").write_text(dump(kustomization), encoding="utf-8")
    try:
        text = run_tool(
            [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(wrap)]
        )
    except ToolError as exc:
        out.error = "kustomize build failed: " + _repo_paths(exc.message, wrap, root)
        return out
    try:
        docs = load_all(text)
    except YamlError as exc:
        out.error = f"kustomize output is not YAML: {exc.message}"
        return out
    subst = _postbuild(spec, variables)
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        file = _take_origin(doc, wrap, root)
        if subst is not None:
            doc, err = subst(doc)
            if err:
                out.error = err
                return out
        out.objects.append((doc, file))
    return out


def _repo_paths(message: str, wrap: Path, root: Path) -> str:
    """kustomize's message with scratch-relative and absolute paths made repository-relative."""
    rel = os.path.relpath(root, wrap)
    message = message.replace(str(root) + os.sep, "").replace(rel + os.sep, "")
    return message.replace(str(wrap), "(build)")


def _take_origin(doc: dict[str, Any], wrap: Path, root: Path) -> str | None:
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        return None
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict) or ORIGIN_ANNOTATION not in annotations:
        return None
    origin_text = annotations.pop(ORIGIN_ANNOTATION)
    if not annotations:
        del meta["annotations"]
    try:
        origin = load_one(str(origin_text)) or {}
    except YamlError:
        return None
    path = origin.get("path") or origin.get("configuredIn") if isinstance(origin, dict) else None
    if not path:
        return None
    full = (wrap / str(path)).resolve()
    try:
        return full.relative_to(root).as_posix()
    except ValueError:
        return None


_VAR = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """Flux's postBuild substitution on one object's YAML (non-strict: an unset variable
    without a default becomes empty)."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        expr = m.group(1)
        name_m = _NAME.match(expr)
        if name_m is None:
            return m.group(0)
        name, rest = name_m.group(0), expr[name_m.end() :]
        value = variables.get(name)
        if rest == "":
            return value or ""
        for op in (":=", ":-"):
            if rest.startswith(op):
                return value if value else rest[len(op) :]
        for op in ("=", "-"):
            if rest.startswith(op):
                return value if value is not None else rest[len(op) :]
        return m.group(0)

    return _VAR.sub(one, text)


def _postbuild(
    spec: Mapping[str, Any], variables: Callable[[], Mapping[str, str]] | None
) -> Callable[[dict[str, Any]], tuple[dict[str, Any], str | None]] | None:
    post = spec.get("postBuild")
    if not isinstance(post, Mapping) or not (post.get("substitute") or post.get("substituteFrom")):
        return None
    mapping = dict(variables() if variables else {})

    def apply(doc: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        annotations = (doc.get("metadata") or {}).get("annotations") or {}
        if str(annotations.get(SUBSTITUTE_ANNOTATION, "")).lower() == "disabled":
            return doc, None
        try:
            new = load_one(substitute(dump(doc), mapping))
        except YamlError as exc:
            kind = doc.get("kind")
            name = (doc.get("metadata") or {}).get("name")
            return doc, f"postBuild substitution made {kind}/{name} invalid YAML: {exc.message}"
        return (new if isinstance(new, dict) else doc), None

    return apply
