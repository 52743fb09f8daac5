"""The registry of check kinds: one line per kind.

Adding a kind (say ``mongodb``) is one new module here with ``SPEC`` and ``run`` plus one line in
``KINDS``; the engine and loader never name kinds. Kinds whose driver is an optional extra name it,
so a suite using them without the driver fails at load time with the pip command to run.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    module: str
    extra: str | None = None
    requires: tuple[str, ...] = ()

    def missing_modules(self) -> list[str]:
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("http", "smokegate.checks.http"),
        Kind("tcp", "smokegate.checks.tcp"),
        Kind("dns", "smokegate.checks.dns"),
        Kind("tls", "smokegate.checks.tls"),
        Kind("exec", "smokegate.checks.exec"),
        Kind("postgres", "smokegate.checks.postgres", extra="postgres", requires=("psycopg",)),
        Kind("mysql", "smokegate.checks.mysql", extra="mysql", requires=("aiomysql",)),
        Kind("redis", "smokegate.checks.redis", extra="redis", requires=("redis",)),
        Kind("grpc", "smokegate.checks.grpc", extra="grpc", requires=("grpc", "grpc_health")),
        Kind("kube", "smokegate.checks.kube"),
        Kind("helmTest", "smokegate.checks.helmtest"),
    )
}


def available_kinds() -> list[Kind]:
    """Kinds whose module exists in this installation (extras may still be missing)."""
    return [k for k in KINDS.values() if importlib.util.find_spec(k.module) is not None]
