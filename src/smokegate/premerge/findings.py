"""Findings: one problem each, located as precisely as its origin allows.

A finding in a source object says ``file:line`` (repository-relative); one in a rendered object
says the HelmRelease and the chart template (``# Source:``) it came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    category: str
    """schema | render | kustomize | values | chart | source | suite | yaml | reference"""
    message: str
    file: str | None = None
    line: int | None = None
    release: str | None = None
    """``namespace/name`` of the HelmRelease a rendered object came from."""
    template: str | None = None
    """The chart template (``# Source:`` path) of a rendered object."""
    object: str | None = None
    """``Kind namespace/name`` (or ``Kind name`` for cluster-scoped objects)."""
    field: str | None = None
    """Dotted path of the offending field (``spec.replicas``, ``spec.containers[0].image``)."""
    kustomization: str | None = None

    @property
    def location(self) -> str:
        """``file:line``, or ``HelmRelease ns/name: template``, or what is known."""
        if self.template or (self.release and not self.file):
            where = f"HelmRelease {self.release}" if self.release else "rendered"
            return f"{where}: {self.template}" if self.template else where
        if self.file:
            return f"{self.file}:{self.line}" if self.line else self.file
        if self.kustomization:
            return f"Kustomization {self.kustomization}"
        return "repository"

    def text(self) -> str:
        parts = [self.location]
        if self.object:
            parts.append(self.object)
        head = ": ".join(parts)
        body = f"{self.field}: {self.message}" if self.field else self.message
        return f"{head}: {body}"

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        data["location"] = self.location
        return data


@dataclass(slots=True)
class Findings:
    items: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        self.items.append(finding)

    def error(self, category: str, message: str, **where: Any) -> None:
        self.items.append(Finding("error", category, message, **where))

    def warning(self, category: str, message: str, **where: Any) -> None:
        self.items.append(Finding("warning", category, message, **where))

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.items if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.items if f.severity == "warning"]


def dotted(path: tuple[Any, ...] | list[Any]) -> str:
    """``("spec", "containers", 0, "image")`` -> ``spec.containers[0].image``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def as_map(value: Any) -> dict[str, Any]:
    """``value`` when it is a mapping, else an empty one: for reading fields of objects whose
    shape is not guaranteed (the schema check reports the wrong shapes)."""
    return value if isinstance(value, dict) else {}
