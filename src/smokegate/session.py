"""The library calls behind every front end (CLI ``run``/``demo``/``gate``, the server): plan a
run from suite paths, execute it, write reports. Front ends only parse their inputs and render."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from smokegate.engine.select import Selection, select
from smokegate.errors import UsageError
from smokegate.secrets import Redactor
from smokegate.suite.interpolate import Scope, SecretKey
from smokegate.suite.loader import CompileOptions, PlannedCheck, Suite, compile_suites, parse_suites

T = TypeVar("T")


@dataclass(slots=True)
class RunPlan:
    suites: list[Suite]
    checks: list[PlannedCheck]
    pulled_in: set[str] = field(default_factory=set)
    redactor: Redactor = field(default_factory=Redactor)


def parse_vars(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--var {item!r}: use KEY=VALUE")
        out[key.strip()] = value
    return out


def parse_resolve_flags(items: Sequence[str]) -> dict[tuple[str, int], str]:
    from smokegate.checks.http import parse_resolve

    out = {}
    for item in items:
        try:
            host, port, addr = parse_resolve(item)
        except ValueError as exc:
            raise UsageError(f"--resolve: {exc}") from None
        out[(host, port)] = addr
    return out


def plan_run(
    paths: Sequence[str],
    *,
    cli_vars: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    selection: Selection | None = None,
    release_vars: Mapping[str, Any] | None = None,
    secrets: Mapping[SecretKey, str] | None = None,
    default_namespace: str | None = None,
    lint: bool = False,
    stdin_text: str | None = None,
) -> RunPlan:
    """Load, validate, interpolate and select. Raises SuiteError/UsageError (exit 2)."""
    import os

    redactor = Redactor()
    for value in (secrets or {}).values():
        redactor.add(value)
    scope = Scope(
        env=dict(os.environ) if env is None else env,
        secrets=secrets or {},
        default_namespace=default_namespace,
        redactor=redactor,
        # lint never talks to a cluster: Secret references get a placeholder value.
        missing_secret=(lambda key: "<secret>") if lint else None,
    )
    raws = parse_suites(paths, stdin_text=stdin_text)
    suites = compile_suites(
        raws,
        CompileOptions(
            cli_vars=cli_vars or {}, env=scope.env, release_vars=release_vars or {}, scope=scope
        ),
    )
    every = [c for s in suites for c in s.checks]
    chosen = select(every, selection or Selection())
    return RunPlan(suites, chosen.checks, chosen.pulled_in, redactor)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when installed (measurably faster for large runs), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
