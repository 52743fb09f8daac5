"""``${...}`` variables in suites.

Forms (all usable in any string value):

* ``${name}``             a suite var, a ``--var``, a matrix value or a release fact
                           (``release.appVersion``)
* ``${name:-default}``    with a default when the name is not defined
* ``${env:NAME}``         an environment variable (``${env:NAME:-default}`` too)
* ``${secret:NAME/KEY}``  a key of a Kubernetes Secret (``${secret:NS/NAME/KEY}`` for another
                           namespace)
* ``$${``                 a literal ``${``

A string that is exactly one ``${...}`` keeps the value's type (so ``status: ${code}`` stays an
int when ``code`` is one). Values that come from Secrets or vars marked ``secret: true`` are
registered with the run's ``Redactor``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smokegate.secrets import Redactor
from smokegate.suite.yamlpos import Path

_REF = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class UnresolvedVariable(Exception):
    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class SecretKey:
    namespace: str | None
    name: str
    key: str

    def __str__(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"secret {ns}{self.name} key {self.key!r}"


def parse_secret_ref(text: str) -> SecretKey:
    parts = text.split("/")
    if len(parts) == 2 and all(parts):
        return SecretKey(None, parts[0], parts[1])
    if len(parts) == 3 and all(parts):
        return SecretKey(parts[0], parts[1], parts[2])
    raise ValueError(f"secret reference {text!r} must be NAME/KEY or NAMESPACE/NAME/KEY")


def secret_ref_of(value: Any) -> SecretKey | None:
    """``{secretRef: {name, key, namespace?}}`` — accepted wherever a string is."""
    if isinstance(value, dict) and set(value) == {"secretRef"}:
        ref = value["secretRef"]
        if not isinstance(ref, dict) or not {"name", "key"} <= set(ref) <= {
            "name",
            "key",
            "namespace",
        }:
            raise ValueError("secretRef needs `name` and `key` (and optionally `namespace`)")
        return SecretKey(ref.get("namespace"), str(ref["name"]), str(ref["key"]))
    return None


@dataclass
class Scope:
    """Everything a ``${...}`` can resolve to, for one suite."""

    values: dict[str, Any] = field(default_factory=dict)
    secret_names: set[str] = field(default_factory=set)
    env: Mapping[str, str] = field(default_factory=dict)
    # Pre-fetched Secret values (resolution is async and batched before interpolation).
    secrets: Mapping[SecretKey, str] = field(default_factory=dict)
    default_namespace: str | None = None
    # Called for a SecretKey that was not pre-fetched; lint passes a placeholder maker.
    missing_secret: Callable[[SecretKey], str] | None = None
    redactor: Redactor = field(default_factory=Redactor)

    def child(self, extra: Mapping[str, Any]) -> Scope:
        return Scope(
            {**self.values, **extra},
            self.secret_names,
            self.env,
            self.secrets,
            self.default_namespace,
            self.missing_secret,
            self.redactor,
        )

    def _secret(self, key: SecretKey, path: Path) -> str:
        if key.namespace is None and self.default_namespace:
            key = SecretKey(self.default_namespace, key.name, key.key)
        if key in self.secrets:
            value = self.secrets[key]
        elif self.missing_secret is not None:
            value = self.missing_secret(key)
        else:
            raise UnresolvedVariable(path, f"{key} was not resolved (no Kubernetes access?)")
        self.redactor.add(value)
        return value

    def lookup(self, expr: str, path: Path) -> Any:
        name, sep, default = expr.partition(":-")
        name = name.strip()
        if name.startswith("env:"):
            var = name[4:]
            if var in self.env:
                return self.env[var]
            if sep:
                return default
            raise UnresolvedVariable(path, f"environment variable {var!r} is not set")
        if name.startswith("secret:"):
            try:
                key = parse_secret_ref(name[7:])
            except ValueError as exc:
                raise UnresolvedVariable(path, str(exc)) from None
            return self._secret(key, path)
        if not _NAME.match(name):
            raise UnresolvedVariable(path, f"invalid variable reference ${{{expr}}}")
        if name in self.values:
            value = self.values[name]
            if name in self.secret_names:
                self.redactor.add(str(value))
            return value
        if sep:
            return default
        known = ", ".join(sorted(self.values)) or "none defined"
        raise UnresolvedVariable(path, f"undefined variable ${{{name}}} (known: {known})")

    def expand(self, data: Any, path: Path = ()) -> Any:
        """A copy of ``data`` with every ``${...}`` and ``secretRef`` resolved."""
        if isinstance(data, str):
            if "$" not in data:
                return data
            return self._expand_str(data, path)
        if isinstance(data, dict):
            try:
                ref = secret_ref_of(data)
            except ValueError as exc:
                raise UnresolvedVariable(path, str(exc)) from None
            if ref is not None:
                return self._secret(ref, path)
            return {k: self.expand(v, (*path, k)) for k, v in data.items()}
        if isinstance(data, list):
            return [self.expand(v, (*path, i)) for i, v in enumerate(data)]
        return data

    def _expand_str(self, text: str, path: Path) -> Any:
        whole = _REF.fullmatch(text)
        if whole and whole.group(1) is not None:
            return self.lookup(whole.group(1), path)

        def sub(m: re.Match[str]) -> str:
            if m.group(1) is None:  # "$${" escape
                return "${"
            value = self.lookup(m.group(1), path)
            return _to_text(value)

        return _REF.sub(sub, text)


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def references(data: Any) -> set[str]:
    """Every ``${...}`` expression inside ``data`` (used to pre-fetch Secrets)."""
    found: set[str] = set()
    if isinstance(data, str):
        if "${" in data:
            found.update(m.group(1) for m in _REF.finditer(data) if m.group(1) is not None)
    elif isinstance(data, dict):
        for v in data.values():
            found |= references(v)
    elif isinstance(data, list):
        for v in data:
            found |= references(v)
    return found


def secret_keys(data: Any) -> set[SecretKey]:
    """Every Secret key referenced inside ``data`` by ``${secret:…}`` or ``secretRef``."""
    keys: set[SecretKey] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            try:
                ref = secret_ref_of(node)
            except ValueError:
                ref = None
            if ref is not None:
                keys.add(ref)
                return
            for v in node.values():
                visit(v)
        elif isinstance(node, list):
            for v in node:
                visit(v)
        elif isinstance(node, str) and "${secret:" in node:
            for m in _REF.finditer(node):
                expr = m.group(1)
                if expr and expr.strip().startswith("secret:"):
                    with contextlib.suppress(ValueError):
                        keys.add(parse_secret_ref(expr.strip()[7:].partition(":-")[0]))

    visit(data)
    return keys
