"""Which Kubernetes Secrets parsed suites reference, before they are interpolated: Secrets are
read first, in one batch (``api.fetch_suite_secrets``), so their names and namespaces must be
known from everything compiling uses except Secret values themselves.

``suite_secret_keys`` for whole suites; ``secret_keys`` for one value (with ``ref_scope``, the
scope references are expanded with before any Secret is read)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from smokegate.suite.interpolate import (
    NO_SECRET_IN_REF,
    NeedsSecret,
    Scope,
    SecretKey,
    UnresolvedVariable,
    expressions,
    parse_secret_ref,
    secret_ref_body,
    secret_ref_of,
    split_default,
)
from smokegate.suite.yamlpos import Path

__all__ = ["has_variable_secret_refs", "ref_scope", "secret_keys", "suite_secret_keys"]


def suite_secret_keys(
    raws: Sequence[Any],
    default_namespace: str | None,
    context_namespace: str,
    *,
    cli_vars: Mapping[str, str] | None = None,
    release_vars: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[SecretKey, tuple[SecretKey, str]]:
    """For every Secret reference in ``raws``: the key interpolation will look up -> (the key
    to fetch, with its namespace resolved, and the suite file that uses it).

    Variables in a reference's parts (``secretRef: {name: "${release.name}-db"}``) are expanded
    with the values compiling uses (``cli_vars``, ``release_vars``, the suite's vars, ``env``,
    matrix values), minus Secret values: a Secret named with a var that reads a Secret is a
    ``SuiteError``. A reference that cannot be expanded is not fetched (compiling reports it,
    located).

    Namespace resolution mirrors ``Scope``: the reference's own namespace, else
    ``default_namespace`` (``-n`` / the release's), else the suite's ``spec.release.namespace``,
    else the kubeconfig context's namespace (stored under the namespace-less key)."""
    import os

    from smokegate.core.errors import SuiteError

    env = dict(os.environ) if env is None else env
    wanted: dict[SecretKey, tuple[SecretKey, str]] = {}
    problems: list[Any] = []
    for raw in raws:
        release = raw.model.spec.release
        suite_ns = default_namespace or (release.namespace if release else None)
        keys = _raw_secret_keys(raw, cli_vars or {}, release_vars or {}, env, problems)
        for key in sorted(keys, key=lambda k: (k.namespace or "", k.name, k.key)):
            if key.namespace:
                lookup = fetch = key
            elif suite_ns:
                lookup = fetch = SecretKey(suite_ns, key.name, key.key)
            else:
                lookup, fetch = key, SecretKey(context_namespace, key.name, key.key)
            wanted.setdefault(lookup, (fetch, raw.doc.file))
    if problems:
        raise SuiteError(problems)
    return wanted


def _raw_secret_keys(
    raw: Any,
    cli_vars: Mapping[str, str],
    release_vars: Mapping[str, Any],
    env: Mapping[str, str],
    problems: list[Any],
) -> set[SecretKey]:
    """The Secret keys one suite references where compiling expands them: its vars (those no
    ``--var`` overrides) and its checks (each matrix instance, when a reference uses a var)."""
    from smokegate.suite.loader import _matrix

    doc = raw.doc
    spec = doc.data.get("spec") if isinstance(doc.data, dict) else None
    spec = spec if isinstance(spec, dict) else {}
    raw_vars = spec.get("vars") or {}
    raw_vars = raw_vars if isinstance(raw_vars, dict) else {}
    scope = ref_scope(raw_vars, cli_vars=cli_vars, release_vars=release_vars, env=env)
    errors: list[UnresolvedVariable] = []
    keys: set[SecretKey] = set()
    for name, value in raw_vars.items():
        if name in cli_vars:
            continue
        path: tuple[Any, ...] = ("spec", "vars", name)
        if isinstance(value, dict) and "value" in value:
            value, path = value["value"], (*path, "value")
        keys |= secret_keys(value, scope, path, errors=errors)
    for index, entry in enumerate(spec.get("checks") or ()):
        if not isinstance(entry, dict):
            continue
        path = ("spec", "checks", index)
        instance = {k: v for k, v in entry.items() if k != "matrix"}
        if entry.get("matrix") and has_variable_secret_refs(instance):
            for combo in _matrix(entry["matrix"], doc, path, []):
                keys |= secret_keys(instance, scope.child(combo), path, errors=errors)
        else:
            keys |= secret_keys(instance, scope, path, errors=errors)
    seen: set[tuple[Any, str]] = set()
    for exc in errors:
        if (exc.path, exc.message) not in seen:
            seen.add((exc.path, exc.message))
            problems.append(doc.problem(exc.path, exc.message))
    return keys


# --- finding the Secrets a suite references (before interpolation) ------------------------------


def _secret_sites(data: Any, path: Path = ()) -> Iterator[tuple[Path, str, Any]]:
    """Every Secret reference in ``data``: ``(path, "ref", mapping)`` for a ``secretRef``,
    ``(path, "expr", TEXT)`` for a ``${secret:TEXT}`` (at any nesting depth)."""
    if isinstance(data, dict):
        try:
            ref = secret_ref_body(data)
        except ValueError:
            ref = None  # malformed: the compile step reports it
        if ref is not None:
            yield path, "ref", data
            return
        for k, v in data.items():
            yield from _secret_sites(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _secret_sites(v, (*path, i))
    elif isinstance(data, str) and "${" in data and "secret:" in data:
        for expr in expressions(data):
            name = split_default(expr)[0].strip()
            if name.startswith("secret:"):
                yield path, "expr", name[7:]


def has_variable_secret_refs(data: Any) -> bool:
    """Does a Secret reference inside ``data`` use ``${...}`` in its parts?"""
    for _, kind, site in _secret_sites(data):
        if kind == "expr" and "${" in site:
            return True
        if kind == "ref" and any(
            isinstance(v, str) and "${" in v for v in site["secretRef"].values()
        ):
            return True
    return False


def secret_keys(
    data: Any,
    scope: Scope | None = None,
    path: Path = (),
    *,
    errors: list[UnresolvedVariable] | None = None,
) -> set[SecretKey]:
    """Every Secret key referenced inside ``data`` by ``${secret:…}`` or ``secretRef``, with
    the namespace as written (None when not given).

    Without ``scope``, references whose parts use ``${...}`` are left out. With it, those parts
    are expanded with it (see ``ref_scope``). A reference that still cannot be expanded (an
    undefined variable, a malformed result) is left out too: compiling the suite reports it,
    located. One whose parts need a Secret's value (``NeedsSecret``) is appended to ``errors``
    (raised when ``errors`` is None): compiling cannot tell."""
    keys: set[SecretKey] = set()
    for where, kind, site in _secret_sites(data, path):
        try:
            if scope is None:
                if kind == "expr":
                    if "${" in site:
                        continue
                    keys.add(parse_secret_ref(site))
                else:
                    key = secret_ref_of(site)
                    assert key is not None
                    if any("${" in str(p) for p in (key.name, key.key, key.namespace or "")):
                        continue
                    keys.add(key)
                continue
            key = scope.secret_key(site, where) if kind == "expr" else scope.secret_ref(site, where)
            if key is not None:
                keys.add(key)
        except NeedsSecret as exc:
            if errors is None:
                raise
            errors.append(exc)
        except (UnresolvedVariable, ValueError):
            continue
    return keys


VAR_READS_SECRET = (
    "${{{name}}} cannot name a Secret: var {name!r} needs a Secret's value, and Secrets are read "
    "before the suite is interpolated (their names, keys and namespaces may use vars, --var "
    "values, env and release facts, not values read from Secrets)"
)


def ref_scope(
    raw_vars: Mapping[str, Any],
    *,
    cli_vars: Mapping[str, str] | None = None,
    release_vars: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Scope:
    """The scope Secret references are expanded with before any Secret is read: the same
    values compiling the suite uses (release facts, ``--var``s overriding the suite's vars,
    vars referring to each other in any order, env), except vars that need a Secret's value.
    Those are ``unavailable``: naming a Secret with one is a ``NeedsSecret`` error."""
    cli_vars = cli_vars or {}
    scope = Scope(env=env or {}, no_secrets="needs a Secret")
    unavailable: dict[str, str | None] = {}
    scope.unavailable = unavailable
    scope.values.update(release_vars or {})
    scope.values.update(cli_vars)
    pending: dict[str, Any] = {}
    for name, value in raw_vars.items():
        if name in cli_vars:
            continue
        if isinstance(value, dict) and "value" in value:
            value = value["value"]
        pending[name] = value
    while pending:
        progressed = False
        for name, value in list(pending.items()):
            try:
                scope.values[name] = scope.expand(value, ("spec", "vars", name))
            except NeedsSecret:
                unavailable[name] = VAR_READS_SECRET
            except UnresolvedVariable:
                continue
            del pending[name]
            progressed = True
        if not progressed:
            break
    for name in pending:  # cycles, undefined references: compiling reports them
        unavailable[name] = None
    scope.no_secrets = NO_SECRET_IN_REF
    return scope
