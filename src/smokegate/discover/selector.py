"""kubectl-style label selectors (``-l app=web,tier!=cache,env in (prod,staging),!legacy``):
parsed once, then matched against objects offline or handed to the API server."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smokegate.core.errors import UsageError

_REQUIREMENT = re.compile(
    r"\s*(?:(?P<not>!)\s*(?P<nkey>[\w./-]+)"
    r"|(?P<key>[\w./-]+)\s*(?:(?P<op>==|=|!=)\s*(?P<value>[\w.-]*)"
    r"|\s+(?P<set>in|notin)\s*\((?P<values>[^)]*)\))?)\s*(?:,|$)"
)


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str
    """``=``, ``!=``, ``in``, ``notin``, ``exists``, ``!exists``."""
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.op == "exists":
            return value is not None
        if self.op == "!exists":
            return value is None
        if self.op in ("=", "in"):
            return value in self.values
        return value not in self.values  # != and notin match objects without the label too

    def lightkube(self) -> tuple[str, Any]:
        from lightkube import operators

        op = {
            "=": lambda: self.values[0],
            "!=": lambda: operators.not_equal(self.values[0]),
            "in": lambda: operators.in_(list(self.values)),
            "notin": lambda: operators.not_in(list(self.values)),
            "exists": lambda: operators.exists(),
            "!exists": lambda: operators.not_exists(),
        }[self.op]
        return self.key, op()


@dataclass(frozen=True, slots=True)
class Selector:
    requirements: tuple[Requirement, ...]
    text: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def lightkube(self) -> list[tuple[str, Any]]:
        return [r.lightkube() for r in self.requirements]

    @classmethod
    def of(cls, labels: Mapping[str, str]) -> Selector:
        text = ",".join(f"{k}={v}" for k, v in labels.items())
        return cls(tuple(Requirement(k, "=", (v,)) for k, v in labels.items()), text)


def parse_selector(text: str) -> Selector:
    """Parse a selector as kubectl's ``-l`` takes it; raises ``UsageError``."""
    reqs: list[Requirement] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _REQUIREMENT.match(text, pos)
        if m is None or m.end() == pos:
            raise UsageError(f"--selector {text!r}: cannot parse at {text[pos:]!r}")
        pos = m.end()
        if m["not"]:
            reqs.append(Requirement(m["nkey"], "!exists"))
        elif m["op"]:
            reqs.append(Requirement(m["key"], "!=" if m["op"] == "!=" else "=", (m["value"],)))
        elif m["set"]:
            values = tuple(v.strip() for v in m["values"].split(",") if v.strip())
            reqs.append(Requirement(m["key"], m["set"], values))
        else:
            reqs.append(Requirement(m["key"], "exists"))
    if not reqs:
        raise UsageError("--selector: empty selector")
    return Selector(tuple(reqs), text)
