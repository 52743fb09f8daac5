"""The registry of check kinds: one line per kind, one module per kind.

The contract of a kind module (worked example: docs/extending.md)::

    SPEC: type[smokegate.checks.base.Spec]           # pydantic model of its YAML block
    async def run(spec: SPEC, ctx: CheckContext) -> Outcome

* ``run`` is one attempt; the engine owns retries, timeouts, ``needs``, fail-fast, concurrency.
  Return ``passed(...)``/``failed(evidence)``; raise ``CheckFailed(message, kind=ErrorKind.…)``
  for a failure it can name; anything else it raises is an *error* of the check, not a crash.
* Everything it needs arrives in ``spec`` (interpolated) and ``ctx`` (redactor, ``--resolve``,
  HTTP and Kubernetes clients, default namespace).
* It may open connections and subprocesses (and must close them), read files its spec names,
  add redacted ``details``. It may not print or log to the console, read flags or environment
  variables, keep state between attempts, swallow ``asyncio.CancelledError``, or import
  ``smokegate.cli``.

Adding a kind (say ``mongodb``) is that module plus one line in ``KINDS``; the engine and loader
never name kinds. A kind whose checks talk to the Kubernetes API says so with
``needs_cluster=True``. Kinds whose driver is an optional extra name it, so a suite using them
without the driver fails at load time with the pip command to run. This module imports nothing of
smokegate (kinds are named by string and loaded on use): the suite loader may look kinds up here.
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
    needs_cluster: bool = False
    """Its checks talk to the Kubernetes API: a run that has one reads the kubeconfig before it
    starts (a broken kubeconfig is a usage error, not a failure of every such check)."""

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
        Kind("kube", "smokegate.checks.kube", needs_cluster=True),
        Kind("helmTest", "smokegate.checks.helmtest", needs_cluster=True),
        # Bring-your-own test suites: a tool's cases become child results (checks._suites).
        Kind("junit", "smokegate.checks.junit"),
        Kind("pytest", "smokegate.checks.pytest"),
        Kind("newman", "smokegate.checks.newman"),
        Kind("k6", "smokegate.checks.k6"),
    )
}


def available_kinds() -> list[Kind]:
    """Kinds whose module exists in this installation (extras may still be missing)."""
    return [k for k in KINDS.values() if importlib.util.find_spec(k.module) is not None]
