"""Which Kubernetes Secrets parsed suites reference, before they are interpolated: Secrets are
read first, in one batch (``api.fetch_suite_secrets``), so their names and namespaces must be
known from everything compiling uses except Secret values themselves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from smokegate.suite.interpolate import SecretKey

__all__ = ["suite_secret_keys"]


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
    from smokegate.suite.interpolate import (
        UnresolvedVariable,
        has_variable_secret_refs,
        ref_scope,
        secret_keys,
    )
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
