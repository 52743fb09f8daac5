"""The repository's smokegate suites: lint them with the suite loader, check that each
``spec.release`` names a HelmRelease the repository defines, and say which suites cover which
release (for ``diff``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from smokegate.premerge.findings import Findings, as_map
from smokegate.premerge.model import Repo, SourceDoc


@dataclass(frozen=True, slots=True)
class SuiteInfo:
    name: str
    file: str
    line: int | None
    helmrelease: str | None
    namespace: str | None

    def covers(self, namespace: str, name: str) -> bool:
        return self.helmrelease == name and (self.namespace or namespace) == namespace


def suite_infos(docs: Iterable[SourceDoc]) -> list[SuiteInfo]:
    out = []
    for doc in docs:
        data = doc.data if isinstance(doc.data, dict) else {}
        if data.get("kind") not in (None, "Suite"):
            continue
        meta = as_map(data.get("metadata"))
        spec = as_map(data.get("spec"))
        release = as_map(spec.get("release"))
        pos = doc.locate(("spec", "release", "helmRelease") if release else ())
        out.append(
            SuiteInfo(
                str(meta.get("name") or ""),
                doc.file,
                pos[0] if pos else None,
                str(release["helmRelease"]) if release.get("helmRelease") else None,
                str(release["namespace"]) if release.get("namespace") else None,
            )
        )
    return out


def lint_suites(repo: Repo, findings: Findings) -> int:
    """Lint every suite file of the repository; returns how many suites were checked."""
    from smokegate.api import plan_run
    from smokegate.core.errors import SmokegateError

    files = sorted({d.file for d in repo.suites})
    for rel in files:
        try:
            plan_run([str(repo.root / rel)], lint=True, env={})
        except SmokegateError as exc:
            problems = getattr(exc, "problems", None)
            if not problems:
                findings.error("suite", str(exc), file=rel)
                continue
            for p in problems:
                file = _relative(p.file, repo.root)
                findings.error("suite", p.message, file=file, line=p.line)
    infos = suite_infos(repo.suites)
    releases = {(hr.namespace, hr.name) for hr in repo.helmreleases}
    names = {name for _, name in releases}
    for info in infos:
        if info.helmrelease is None:
            continue
        if info.namespace:
            ok = (info.namespace, info.helmrelease) in releases
        else:
            ok = info.helmrelease in names
        if not ok:
            where = f"{info.namespace}/{info.helmrelease}" if info.namespace else info.helmrelease
            close = sorted(f"{ns}/{n}" for ns, n in releases if n == info.helmrelease)
            hint = f" (there is {', '.join(close)})" if close else ""
            findings.error(
                "suite",
                f"suite {info.name!r}: spec.release names HelmRelease {where}, which the "
                f"repository does not define{hint}",
                file=info.file,
                line=info.line,
            )
    return len(infos)


def _relative(path: str, root: Path) -> str:
    try:
        return Path(os.path.abspath(path)).relative_to(root).as_posix()
    except ValueError:
        return path
