"""The repository model: which objects Flux would apply from a GitOps repository.

1. Every ``*.yaml``/``*.yml`` file (not in hidden directories, not inside Helm charts) is read
   with positions, so any object can later be located as ``file:line``.
2. The Flux ``Kustomization`` objects found there (``kustomize.toolkit.fluxcd.io``) are built
   (``smokegate.premerge.kustomize``); Kustomizations their builds produce are built in turn.
   A Kustomization whose ``sourceRef`` is a ``GitRepository`` is taken to point at this
   repository (how a GitOps repository is laid out); other sources are reported and skipped.
3. A repository without any Flux Kustomization is treated as one whose root Flux applies.

The result: every built object with the Kustomization that applies it and the file it came
from, plus the smokegate suites found in the repository.
"""

from __future__ import annotations

import copy
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from smokegate.core.errors import UsageError
from smokegate.premerge.model import (
    FLUX_KS_GROUP,
    SKIP_DIRS,
    SUITE_GROUP,
    UNOWNED,
    FluxKustomization,
    Repo,
    RepoObject,
    SourceDoc,
    SourceFile,
)
from smokegate.premerge.yamlio import YamlError, load_all
from smokegate.suite.yamlpos import YamlSyntaxError, load_documents


def load_repo(root: str | Path, *, kubectl: str) -> Repo:
    """Read and build the repository at ``root``. Problems in the repository become findings;
    only an unreadable root is a ``UsageError``."""
    base = Path(root)
    if not base.exists():
        raise UsageError(f"{root}: no such directory")
    if not base.is_dir():
        raise UsageError(f"{root}: not a directory")
    repo = Repo(base.resolve())
    _scan(repo)
    with tempfile.TemporaryDirectory(prefix="smokegate-ks-") as scratch:
        _build_all(repo, Path(scratch), kubectl)
    return repo


def _walk(root: Path) -> Iterable[Path]:
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            entries = sorted(d.iterdir())
        except OSError:
            continue
        if (d / "Chart.yaml").is_file():
            continue  # a Helm chart: templates are not manifests
        for e in entries:
            if e.name.startswith(".") or e.name in SKIP_DIRS:
                continue
            if e.is_dir():
                stack.append(e)
            elif e.suffix in (".yaml", ".yml") and e.is_file():
                yield e


def _scan(repo: Repo) -> None:
    for path in sorted(_walk(repo.root)):
        rel = path.relative_to(repo.root).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        source = SourceFile(rel, text)
        try:
            loaded = [d for d in load_all(text) if d is not None]
        except YamlError:
            # Reported only if something uses the file (kustomize says so when it does);
            # a smokegate suite's problems are always reported (with the suite loader's
            # position).
            repo.documents[rel] = []
            if "smokegate.io/" in text:
                try:
                    load_documents(text, rel)
                except YamlSyntaxError as exc:
                    for p in exc.problems:
                        repo.findings.error("yaml", p.message, file=rel, line=p.line)
            continue
        docs = [SourceDoc(source, i, d) for i, d in enumerate(loaded)]
        repo.documents[rel] = docs
        for doc in docs:
            data = doc.data
            if isinstance(data, dict) and str(data.get("apiVersion", "")).startswith(SUITE_GROUP):
                repo.suites.append(doc)


def _source_objects(repo: Repo) -> list[RepoObject]:
    out = []
    for rel, docs in repo.documents.items():
        for doc in docs:
            if isinstance(doc.data, dict) and doc.data.get("kind"):
                out.append(RepoObject(doc.data, "", rel, doc))
    return out


def _is_flux_ks(o: RepoObject) -> bool:
    return o.kind == "Kustomization" and o.api_version.startswith(FLUX_KS_GROUP)


def _ks_id(o: RepoObject) -> str:
    return f"{o.namespace}/{o.name}"


def _spec(o: RepoObject) -> dict[str, Any]:
    spec = o.data.get("spec")
    return dict(spec) if isinstance(spec, dict) else {}


class _Builder:
    """Builds Kustomizations once per (spec, namespace), whoever asks."""

    def __init__(self, repo: Repo, scratch: Path, kubectl: str) -> None:
        self.repo = repo
        self.scratch = scratch
        self.kubectl = kubectl
        self.cache: dict[str, Any] = {}

    def build(self, ks: FluxKustomization) -> Any:
        import json

        from smokegate.premerge import kustomize

        key = json.dumps(
            [ks.spec, ks.obj.namespace if ks.obj else None], sort_keys=True, default=str
        )
        if key not in self.cache:
            self.cache[key] = kustomize.build(
                ks.spec,
                self.repo.root,
                self.scratch / f"ks-{len(self.cache)}",
                self.kubectl,
                variables=lambda: _variables(self.repo, ks),
            )
        return self.cache[key]


def _cluster_name(root: RepoObject) -> str:
    """A root Kustomization's cluster, in words: the directory of the file defining it (or
    its own path when that file is inside it, as for Flux's bootstrap ``flux-system``)."""
    path = str(_spec(root).get("path") or "./").strip("/").removeprefix("./").strip("/") or "."
    where = str(Path(root.file or ".").parent.as_posix())
    if path == "." or where == path or where.startswith(path + "/"):
        return path
    return where


def _build_all(repo: Repo, scratch: Path, kubectl: str) -> None:
    builder = _Builder(repo, scratch, kubectl)
    seeds = [o for o in _source_objects(repo) if _is_flux_ks(o)]
    seeds.sort(key=lambda o: (str(o.file).count("/"), str(o.file)))
    # A seed is a root unless another seed's build produces it (same file, same name): roots
    # are the clusters' entry points; everything else is reached from them.
    produced: set[tuple[str | None, str]] = set()
    for s in seeds:
        built = builder.build(FluxKustomization(s, _spec(s), _ks_id(s)))
        for data, file in built.objects:
            child = RepoObject(data, "", file)
            if _is_flux_ks(child) and not (file == s.file and child.name == s.name):
                produced.add((file, child.name))
    roots = [s for s in seeds if (s.file, s.name) not in produced]
    if seeds and not roots:
        roots = seeds[:1]  # a cycle of Kustomizations building each other: start anywhere
    clusters = [(_cluster_name(r), r) for r in roots]
    names = [c for c, _ in clusters]
    # Two roots of one directory are one cluster (clusters/prod/{apps,infra}.yaml).
    if not clusters:
        _walk_cluster(
            repo, builder, ".", [FluxKustomization(None, {"path": "./"}, "(repository root)")]
        )
    else:
        for cluster in dict.fromkeys(names):
            queue = [FluxKustomization(r, _spec(r), _ks_id(r)) for c, r in clusters if c == cluster]
            _walk_cluster(repo, builder, cluster, queue)
    repo.clusters = list(dict.fromkeys(names)) or ["."]
    _add_unowned(repo)


def _walk_cluster(
    repo: Repo, builder: _Builder, cluster: str, queue: list[FluxKustomization]
) -> None:
    seen = {ks.id for ks in queue}
    owners: dict[tuple[str, str, str, str], str] = {}
    while queue:
        ks = queue.pop(0)
        ks.cluster = cluster
        repo.kustomizations.append(ks)
        ref = ks.spec.get("sourceRef") or {}
        if (
            ks.obj is not None
            and isinstance(ref, Mapping)
            and ref.get("kind")
            not in (
                None,
                "GitRepository",
            )
        ):
            ks.skipped = (
                f"its sourceRef is {ref.get('kind')} {ref.get('name')}, not this repository"
            )
            repo.findings.warning(
                "kustomize", f"not built: {ks.skipped}", **ks.obj.where(("spec", "sourceRef"))
            )
            continue
        built = builder.build(ks)
        if built.error:
            ks.error = built.error
            where: dict[str, Any] = {"kustomization": ks.id}
            if ks.obj is not None:
                field_path = tuple(built.error_field.split(".")) if built.error_field else ()
                where = ks.obj.where(field_path)
            culprit = _culprit(built.error, repo)
            if culprit is not None:
                where = {**where, **culprit}
            message = built.error if ks.obj is None else f"Kustomization {ks.id}: {built.error}"
            repo.findings.error("kustomize", message, **where)
            continue
        for data, file in built.objects:
            obj = RepoObject(copy.deepcopy(data), ks.id, file, _find_doc(repo, file, data), cluster)
            owner = owners.get(obj.key)
            if owner is not None:
                if owner != ks.id:
                    repo.findings.warning(
                        "kustomize",
                        f"{obj.ref} is applied by both Kustomization {owner} and {ks.id}: "
                        "Flux would apply it twice",
                        **obj.where(),
                    )
                continue
            owners[obj.key] = ks.id
            ks.objects.append(obj)
            repo.objects.append(obj)
            if _is_flux_ks(obj) and _ks_id(obj) not in seen:
                seen.add(_ks_id(obj))
                queue.append(FluxKustomization(obj, _spec(obj), _ks_id(obj)))


def _add_unowned(repo: Repo) -> None:
    """Objects of files no Kustomization builds (sources kept next to the clusters, loose
    manifests) are checked as written. Kustomization files, files they name (patches,
    generators) and smokegate suites are not objects to apply."""
    used = {o.file for o in repo.objects if o.file}
    named = _named_by_kustomizations(repo)
    for rel, docs in repo.documents.items():
        if rel in used or rel in named or Path(rel).name in KUSTOMIZATION_NAMES:
            continue
        for doc in docs:
            data = doc.data
            if not (isinstance(data, dict) and data.get("apiVersion") and data.get("kind")):
                continue
            if str(data["apiVersion"]).startswith(SUITE_GROUP):
                continue
            if str(data["apiVersion"]).startswith("kustomize.config.k8s.io/"):
                continue
            obj = RepoObject(data, UNOWNED, rel, doc, ".")
            repo.unowned.append(obj)


KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def _named_by_kustomizations(repo: Repo) -> set[str]:
    out: set[str] = set()

    def strings(value: Any) -> Iterable[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)

    for rel, docs in repo.documents.items():
        if Path(rel).name not in KUSTOMIZATION_NAMES:
            continue
        base = (repo.root / rel).parent
        for doc in docs:
            for text in strings(doc.data):
                if "\n" in text or len(text) > 300:
                    continue
                try:
                    target = (base / text).resolve().relative_to(repo.root).as_posix()
                except (ValueError, OSError):
                    continue
                out.add(target)
    return out


def _find_doc(repo: Repo, file: str | None, data: Mapping[str, Any]) -> SourceDoc | None:
    """The source document of a built object: same kind, then same name (kustomize may add a
    prefix, suffix or hash to the name), else the file's only document."""
    if not file:
        return None
    docs = [d for d in repo.documents.get(file, []) if isinstance(d.data, dict)]
    kind = data.get("kind")
    name = str((data.get("metadata") or {}).get("name") or "")
    same_kind = [d for d in docs if d.data.get("kind") == kind]
    for d in same_kind:
        if (d.data.get("metadata") or {}).get("name") == name:
            return d
    for d in same_kind:
        src = str((d.data.get("metadata") or {}).get("name") or "")
        if src and src in name:
            return d
    if len(same_kind) == 1:
        return same_kind[0]
    return docs[0] if len(docs) == 1 else None


def _variables(repo: Repo, ks: FluxKustomization) -> dict[str, str]:
    """postBuild variables: substituteFrom (in order, later wins), then substitute (wins)."""
    from smokegate.premerge.values import source_from_object

    post = ks.spec.get("postBuild") or {}
    out: dict[str, str] = {}
    ns = ks.obj.namespace if ks.obj is not None else "default"
    for ref in post.get("substituteFrom") or ():
        if not isinstance(ref, Mapping):
            continue
        kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        found = repo.find(kind, ns, name, ks.cluster) or _raw_find(repo, kind, ns, name)
        if found is None:
            if not ref.get("optional") and ks.obj is not None:
                repo.findings.warning(
                    "kustomize",
                    f"postBuild.substituteFrom: {kind} {ns}/{name} is not in the repository; "
                    "its variables are left unset",
                    **ks.obj.where(("spec", "postBuild", "substituteFrom")),
                )
            continue
        out.update(source_from_object(found.data).data)
    for k, v in (post.get("substitute") or {}).items():
        out[str(k)] = str(v)
    return out


def _raw_find(repo: Repo, kind: str, namespace: str | None, name: str) -> RepoObject | None:
    """An object as written in a file (before any build): for postBuild variables, which are
    needed while the Kustomizations are still being built."""
    for o in _source_objects(repo):
        if o.kind == kind and o.name == name and (o.namespace in (namespace, "default")):
            return o
    return None


_IN_FILE = re.compile(r"in File: (\S+)")
_LINE = re.compile(r"\byaml: line (\d+)")


def _culprit(message: str, repo: Repo) -> dict[str, Any] | None:
    """kustomize names the file it could not read (``... yaml: line 4: ... in File: x.yaml``):
    point the finding there."""
    m = _IN_FILE.search(message)
    if not m or m.group(1) not in repo.documents:
        return None
    line = _LINE.search(message)
    return {"file": m.group(1), "line": int(line.group(1)) if line else None}
