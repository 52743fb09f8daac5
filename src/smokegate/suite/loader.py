"""From parsed suites (``suite.parse``) to validated, interpolated ``Suite`` objects, or one
``SuiteError`` that lists every problem found (``file:line:col: message``), never just the
first: variables, matrices, reused blocks, ``needs``. ``parse_suites``/``find_suite_files`` are
importable from here too (loading a suite is parsing then compiling it)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from smokegate.core.errors import MissingExtraError, Problem, SuiteError
from smokegate.suite.interpolate import Scope, UnresolvedVariable
from smokegate.suite.matrixrow import RowTemplate
from smokegate.suite.model import (
    CheckCommon,
    RetryPolicy,
    kind_model,
    kind_names,
    kind_of,
    validate_with_secrets,
)
from smokegate.suite.parse import RawSuite, find_suite_files, parse_suites, problems_from
from smokegate.suite.yamldoc import paused_gc
from smokegate.suite.yamlpos import Document, Path

# A matrix larger than this is almost certainly a typo (and would exhaust memory).
MAX_MATRIX = 100_000

__all__ = [
    "CompileOptions",
    "PlannedCheck",
    "RawSuite",
    "Suite",
    "compile_suites",
    "find_suite_files",
    "parse_suites",
]


@dataclass(slots=True)
class PlannedCheck:
    """A check ready for the engine: interpolated, validated, defaults applied."""

    id: str
    name: str
    suite: str
    kind: str
    spec: Any
    tags: tuple[str, ...]
    needs: tuple[str, ...]
    timeout: float
    retry: RetryPolicy
    source: str
    description: str | None = None
    skip: str | None = None
    cases: tuple[str, ...] = ()
    """``-k check/CASE`` globs: only these test cases of a suite-running check count."""


@dataclass(slots=True)
class Suite:
    name: str
    file: str
    checks: list[PlannedCheck]
    release: dict[str, Any] | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class CompileOptions:
    cli_vars: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    release_vars: Mapping[str, Any] = field(default_factory=dict)
    scope: Scope | None = None  # carries secrets/redactor; built fresh when None


def compile_suites(raws: list[RawSuite], options: CompileOptions) -> list[Suite]:
    problems: list[Problem] = []
    with paused_gc():  # (suite.yamldoc: 10,000 checks are millions of objects, no cycles)
        suites = [_compile_one(raw, options, problems) for raw in raws]
    if problems and options.scope is not None and options.scope.redactor:
        # A message may quote a value that came from a Secret or a secret var.
        red = options.scope.redactor
        problems = [Problem(p.file, p.line, p.column, red.redact(p.message)) for p in problems]
    if problems:
        missing = [p for p in problems if p.message.startswith("check kind")]
        raise (MissingExtraError if missing and len(missing) == len(problems) else SuiteError)(
            problems
        )
    return suites


def _compile_one(raw: RawSuite, options: CompileOptions, problems: list[Problem]) -> Suite:
    doc, spec = raw.doc, raw.model.spec
    base = options.scope or Scope(env=options.env)
    scope = base.child({})
    if options.release_vars:
        scope.values.update(options.release_vars)
    if spec.release and spec.release.namespace and scope.default_namespace is None:
        scope.default_namespace = spec.release.namespace
    _define_vars(doc, scope, doc.data["spec"].get("vars", {}) or {}, options.cli_vars, problems)

    checks: list[PlannedCheck] = []
    names: dict[str, tuple[int, int] | None] = {}
    templates: dict[str, list[str]] = {}
    raw_checks = doc.data["spec"].get("checks") or []
    # `vars`: kinds that run a test tool hand the suite's vars (and ${release.*}) to it as
    # environment variables (checks._tool.ToolSpec).
    context = {"base_dir": raw.base_dir, "vars": scope.values}
    defaults = spec.defaults
    # A check's retry merged with the defaults, per retry block (matrix rows share theirs).
    retries: dict[int, tuple[Any, RetryPolicy]] = {}
    for index, entry in enumerate(raw_checks):
        path: Path = ("spec", "checks", index)
        if not isinstance(entry, dict):
            problems.append(doc.problem(path, "a check must be a mapping"))
            continue
        kind = kind_of(entry)
        present = [k for k in entry if k in kind_names()]
        if len(present) > 1:
            problems.append(
                doc.problem(
                    (*path, present[1]),
                    "one kind per check: found " + " and ".join(present),
                    key=True,
                )
            )
            continue
        if kind is not None:
            from smokegate.checks import KINDS

            missing = KINDS[kind].missing_modules()
            if missing:
                extra = KINDS[kind].extra
                problems.append(
                    doc.problem(
                        (*path, kind),
                        f"check kind {kind!r} needs the optional dependency "
                        f"{', '.join(missing)}: run  pip install 'smokegate[{extra}]'",
                        key=True,
                    )
                )
                continue
        template_name = entry.get("name")
        reuse: dict[str, Any] | None = None
        rows: RowTemplate | None = None
        source = _source(raw, path)
        for combo in _matrix(entry.get("matrix"), doc, path, problems):
            used = scope.secrets_used[0]
            try:
                inst_scope = scope.child(combo) if combo else scope
                if rows is not None:
                    expanded = rows.expand(inst_scope, path)
                else:
                    instance = {k: v for k, v in entry.items() if k != "matrix"}
                    if reuse:
                        # Blocks that mention no matrix variable validate to the same model
                        # every time: hand pydantic the instance it already built (it does not
                        # revalidate model instances).
                        instance = _with_reused(instance, kind, reuse)
                    expanded = inst_scope.expand(instance, path)
            except UnresolvedVariable as exc:
                problems.append(doc.problem(exc.path, exc.message))
                break
            # (Reused blocks are models already: what they hold was dealt with when first built.)
            with_secrets = scope.secrets_used[0] != used
            if (
                combo
                and reuse is None
                and kind
                and not with_secrets
                and RowTemplate.usable(entry, kind)
            ):
                first = dict(expanded)  # before the name gets its label
            else:
                first = None
            if combo and expanded.get("name") == template_name and isinstance(template_name, str):
                label = ",".join(f"{k}={v}" for k, v in combo.items())
                expanded["name"] = f"{template_name}[{label}]"
            try:
                if kind is None:
                    kinds = ", ".join(kind_names())
                    problems.append(
                        doc.problem(path, f"a check needs exactly one kind key ({kinds})")
                    )
                    break
                model_cls = kind_model(kind)
                model: CheckCommon = (
                    validate_with_secrets(model_cls, expanded, context)
                    if with_secrets
                    else model_cls.model_validate(expanded, context=context)
                )
            except ValidationError as exc:
                problems.extend(problems_from(exc, doc, path))
                break
            if combo and reuse is None:
                reuse = _reusable_blocks(entry, kind, model, set(combo))
                if first is not None and kind:
                    # Compile the template once: later rows expand only what mentions a
                    # matrix variable (suite.matrixrow).
                    rows = RowTemplate(entry, kind, first, reuse, set(combo))
            name = model.name
            if name in names:
                problems.append(doc.problem((*path, "name"), f"duplicate check name {name!r}"))
                continue
            names[name] = None
            if isinstance(template_name, str):
                templates.setdefault(template_name, []).append(name)
            checks.append(_plan(raw, model, kind or "", defaults, source, retries))
    _resolve_needs(raw, checks, templates, problems)
    release = spec.release.model_dump(by_alias=True) if spec.release else None
    return Suite(raw.name, doc.file, checks, release, raw.model.metadata.labels)


def _define_vars(
    doc: Document,
    scope: Scope,
    raw_vars: dict[str, Any],
    cli_vars: Mapping[str, str],
    problems: list[Problem],
) -> None:
    """Suite vars may refer to each other in any order (``base: http://${host}:${port}``) and
    to ``--var`` values, which override suite values; resolve in dependency order."""
    scope.values.update(cli_vars)
    pending: dict[str, tuple[Any, Path]] = {}
    for name, value in raw_vars.items():
        path: Path = ("spec", "vars", name)
        secret = isinstance(value, dict) and bool(value.get("secret"))
        if isinstance(value, dict) and "value" in value:
            value, path = value["value"], (*path, "value")
        if secret:
            scope.secret_names.add(name)
        if name in cli_vars:
            continue
        pending[name] = (value, path)
    while pending:
        progressed = False
        errors: list[UnresolvedVariable] = []
        for name, (value, path) in list(pending.items()):
            try:
                scope.values[name] = scope.expand(value, path)
            except UnresolvedVariable as exc:
                errors.append(exc)
                continue
            del pending[name]
            progressed = True
        if not progressed:
            cycle = _var_cycle(raw_vars, set(pending))
            if cycle:
                first = ("spec", "vars", cycle[0])
                problems.append(doc.problem(first, "vars cycle: " + " -> ".join(cycle)))
            else:
                problems.extend(doc.problem(e.path, e.message) for e in errors)
            return
    for name in scope.secret_names:
        if name in scope.values:
            scope.values[name] = scope.secret_var(scope.values[name])


def _var_cycle(raw_vars: dict[str, Any], pending: set[str]) -> list[str]:
    """A loop among the unresolved vars (``a: ${b}``, ``b: ${a}``), spelled out, if any."""
    from smokegate.suite.interpolate import references

    graph = {
        name: [r.partition(":-")[0].strip() for r in references(raw_vars[name])] for name in pending
    }
    for start in sorted(pending):
        trail, node = [start], start
        while True:
            nxt = next((d for d in graph.get(node, []) if d in pending), None)
            if nxt is None:
                break
            if nxt in trail:
                return [*trail[trail.index(nxt) :], nxt]
            trail.append(nxt)
            node = nxt
    return []


def _reusable_blocks(
    entry: dict[str, Any], kind: str | None, model: CheckCommon, matrix_keys: set[str]
) -> dict[str, Any]:
    """Validated sub-models of the first matrix instance whose source mentions no matrix var,
    keyed ``"common:<alias>"`` (check-level fields) or ``"kind:<alias>"`` (inside the kind)."""
    from pydantic import BaseModel

    from smokegate.suite.interpolate import references

    def independent(value: Any) -> bool:
        refs = {r.partition(":-")[0].strip() for r in references(value)}
        return not refs & matrix_keys and "secretRef" not in str(value)

    out: dict[str, Any] = {}
    for alias, value in entry.items():
        if alias in ("matrix", "name", kind) or not isinstance(value, dict):
            continue
        field = _field_for_alias(type(model), alias)
        sub = getattr(model, field, None) if field else None
        if isinstance(sub, BaseModel) and independent(value):
            out[f"common:{alias}"] = sub
    block = entry.get(kind) if kind else None
    spec = getattr(model, kind, None) if kind else None
    if isinstance(block, dict) and spec is not None:
        for alias, value in block.items():
            field = _field_for_alias(type(spec), alias)
            sub = getattr(spec, field, None) if field else None
            if isinstance(sub, BaseModel) and isinstance(value, dict) and independent(value):
                out[f"kind:{alias}"] = sub
    return out


def _field_for_alias(model_cls: Any, alias: str) -> str | None:
    for name, info in model_cls.model_fields.items():
        if (info.alias or name) == alias:
            return name
    return None


def _with_reused(
    instance: dict[str, Any], kind: str | None, reuse: dict[str, Any]
) -> dict[str, Any]:
    out = dict(instance)
    for key, sub in reuse.items():
        where, _, alias = key.partition(":")
        if where == "common":
            out[alias] = sub
        elif kind and isinstance(out.get(kind), dict):
            out[kind] = {**out[kind], alias: sub}
    return out


def _matrix(
    matrix: Any, doc: Document, path: Path, problems: list[Problem]
) -> Iterable[dict[str, Any]]:
    if not matrix:
        return [{}]
    if not isinstance(matrix, dict):
        problems.append(doc.problem((*path, "matrix"), "matrix must map names to value lists"))
        return []
    axes: list[list[tuple[str, Any]]] = []
    size = 1
    for key, values in matrix.items():
        if isinstance(values, dict) and set(values) == {"range"}:
            bounds = values["range"]
            if (
                not isinstance(bounds, list)
                or len(bounds) not in (2, 3)
                or not all(isinstance(b, int) for b in bounds)
            ):
                problems.append(
                    doc.problem(
                        (*path, "matrix", key),
                        "range must be [start, stop] or [start, stop, step] integers",
                    )
                )
                return []
            if len(range(*bounds)) > MAX_MATRIX:
                problems.append(
                    doc.problem(
                        (*path, "matrix", key), f"range has more than {MAX_MATRIX:,} values"
                    )
                )
                return []
            values = list(range(*bounds))
        if not isinstance(values, list) or not values:
            problems.append(
                doc.problem((*path, "matrix", key), "matrix values must be a non-empty list")
            )
            return []
        axes.append([(key, v) for v in values])
        size *= len(values)
        if size > MAX_MATRIX:
            problems.append(
                doc.problem((*path, "matrix"), f"matrix expands to more than {MAX_MATRIX:,} checks")
            )
            return []
    return (dict(combo) for combo in itertools.product(*axes))


def _source(raw: RawSuite, path: Path) -> str:
    line = raw.doc.locate(path)
    return f"{raw.doc.file}:{line[0]}" if line else raw.doc.file


def _plan(
    raw: RawSuite,
    model: CheckCommon,
    kind: str,
    defaults: Any,
    source: str,
    retries: dict[int, tuple[Any, RetryPolicy]],
) -> PlannedCheck:
    retry = defaults.retry
    if model.retry is not None:
        # A check's retry block overrides only the fields it sets.
        cached = retries.get(id(model.retry))
        if cached is None:
            merged = RetryPolicy.model_validate(
                {**retry.model_dump(), **model.retry.model_dump(exclude_unset=True)}
            )
            # (The block is kept with its result so its id cannot be reused by another.)
            cached = retries[id(model.retry)] = (model.retry, merged)
        retry = cached[1]
    skip = (
        model.skip if isinstance(model.skip, str) else ("skipped in suite" if model.skip else None)
    )
    return PlannedCheck(
        id=f"{raw.name}/{model.name}",
        name=model.name,
        suite=raw.name,
        kind=kind,
        spec=getattr(model, kind),
        tags=tuple(model.tags),
        needs=tuple(model.needs),
        timeout=model.timeout if model.timeout is not None else defaults.timeout,
        retry=retry,
        source=source,
        description=model.description,
        skip=skip,
    )


def _resolve_needs(
    raw: RawSuite,
    checks: list[PlannedCheck],
    templates: dict[str, list[str]],
    problems: list[Problem],
) -> None:
    by_name = {c.name: c for c in checks}
    raw_checks = raw.doc.data["spec"].get("checks") or []
    # Only string names: an invalid entry (`name: {a: 1}`) was reported already, and is no key.
    index_of = {
        e["name"]: i
        for i, e in enumerate(raw_checks)
        if isinstance(e, dict) and isinstance(e.get("name"), str)
    }
    for check in checks:
        resolved: list[str] = []
        for need in check.needs:
            targets = templates.get(need) or ([need] if need in by_name else [])
            if not targets:
                i = index_of.get(check.name.split("[")[0], 0)
                problems.append(
                    raw.doc.problem(
                        ("spec", "checks", i, "needs"),
                        f"check {check.name!r} needs unknown check {need!r}",
                    )
                )
            resolved.extend(f"{raw.name}/{t}" for t in targets)
        check.needs = tuple(resolved)
    # Cycles would deadlock the scheduler: reject them here with the loop spelled out.
    graph = {c.id: c.needs for c in checks}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                loop = " -> ".join(n.split("/", 1)[1] for n in [*trail, node, dep])
                problems.append(raw.doc.problem(("spec", "checks"), f"`needs` cycle: {loop}"))
            elif dep not in state:
                visit(dep, [*trail, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])
