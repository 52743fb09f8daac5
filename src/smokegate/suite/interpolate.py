"""``${...}`` variables in suites.

Forms (all usable in any string value):

* ``${name}``             a suite var, a ``--var``, a matrix value or a release fact
                           (``release.appVersion``)
* ``${name:-default}``    with a default when the name is not defined (the default may itself
                           use ``${...}``)
* ``${env:NAME}``         an environment variable (``${env:NAME:-default}`` too)
* ``${secret:NAME/KEY}``  a key of a Kubernetes Secret (``${secret:NS/NAME/KEY}`` for another
                           namespace)
* ``$${``                 a literal ``${``

The parts of a Secret reference — in ``${secret:…}`` and in ``{secretRef: {name, key,
namespace}}`` — may use variables (``${secret:${release.name}-db/dsn}``, ``name:
"${release.name}-db"``): vars, ``--var`` values, matrix values, env and release facts, but never
a value read from a Secret (Secrets are fetched before interpolation, so their names must be
known without them).

A string that is exactly one ``${...}`` keeps the value's type (so ``status: ${code}`` stays an
int when ``code`` is one). Values that come from Secrets or vars marked ``secret: true`` are
``core.secrets.Secret`` values (registered with the run's ``Redactor`` too), and so is a string
that embeds one (``"Bearer ${token}"`` renders as ``Bearer ***``): a spec field typed ``Text``
keeps it for the check to reveal at the driver call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from smokegate.core.secrets import Redactor, Secret
from smokegate.suite.yamlpos import Path

_REF = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
# A ``${`` opened inside another ``${...}``: such strings take the (slower) nesting-aware scanner.
_NESTED = re.compile(r"\$\{[^{}]*\$\{")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")

NO_SECRET_IN_REF = (
    "a Secret reference cannot use a value read from a Secret (Secrets are read before the "
    "suite is interpolated: their names, keys and namespaces may use vars, --var values, env "
    "and release facts)"
)


class UnresolvedVariable(Exception):
    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class NeedsSecret(UnresolvedVariable):
    """A value that needs a Secret's value where none may be used (a Secret reference's parts)
    or none has been read yet (the pre-fetch scan)."""


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


def secret_ref_body(value: Any) -> dict[str, Any] | None:
    """The ``{name, key, namespace?}`` of a ``{secretRef: ...}`` mapping, None for any other
    value; ValueError when it is a malformed ``secretRef``."""
    if isinstance(value, dict) and set(value) == {"secretRef"}:
        ref = value["secretRef"]
        if not isinstance(ref, dict) or not {"name", "key"} <= set(ref) <= {
            "name",
            "key",
            "namespace",
        }:
            raise ValueError("secretRef needs `name` and `key` (and optionally `namespace`)")
        return ref
    return None


def secret_ref_of(value: Any) -> SecretKey | None:
    """``{secretRef: {name, key, namespace?}}`` — accepted wherever a string is. The parts as
    written (``Scope.secret_ref`` expands variables in them)."""
    ref = secret_ref_body(value)
    if ref is None:
        return None
    return SecretKey(ref.get("namespace"), str(ref["name"]), str(ref["key"]))


@dataclass
class Scope:
    """Everything a ``${...}`` can resolve to, for one suite."""

    values: dict[str, Any] = field(default_factory=dict)
    secret_names: set[str] = field(default_factory=set)
    env: Mapping[str, str] = field(default_factory=dict)
    # Pre-fetched Secret values (resolution is async and batched before interpolation).
    secrets: Mapping[SecretKey, str | Secret] = field(default_factory=dict)
    default_namespace: str | None = None
    # Called for a SecretKey that was not pre-fetched; lint passes a placeholder maker.
    missing_secret: Callable[[SecretKey], str] | None = None
    redactor: Redactor = field(default_factory=Redactor)
    # Set: reading a Secret raises ``NeedsSecret`` with this message (a Secret reference's
    # parts; the pre-fetch scan, when no Secret has been read yet).
    no_secrets: str | None = None
    # The pre-fetch scan only: vars without a value -> why (``NeedsSecret`` when the message
    # is set: the var reads a Secret; None: the var is broken, the compile step says how).
    unavailable: Mapping[str, str | None] = field(default_factory=dict)
    # How many Secret values expansions have produced (shared with child scopes): the loader
    # looks for Secrets only in what an expansion that produced one returned.
    secrets_used: list[int] = field(default_factory=lambda: [0])

    def child(self, extra: Mapping[str, Any]) -> Scope:
        return Scope(
            {**self.values, **extra},
            self.secret_names,
            self.env,
            self.secrets,
            self.default_namespace,
            self.missing_secret,
            self.redactor,
            self.no_secrets,
            self.unavailable,
            self.secrets_used,
        )

    def _secret(self, key: SecretKey, path: Path) -> Secret:
        if self.no_secrets is not None:
            raise NeedsSecret(path, self.no_secrets)
        if key.namespace is None and self.default_namespace:
            key = SecretKey(self.default_namespace, key.name, key.key)
        if key in self.secrets:
            value = self.secrets[key]
        elif self.missing_secret is not None:
            value = self.missing_secret(key)
        else:
            raise UnresolvedVariable(path, f"{key} was not resolved (no Kubernetes access?)")
        secret = value if isinstance(value, Secret) else Secret(value)
        self.redactor.add(secret)
        self.secrets_used[0] += 1
        return secret

    def secret_var(self, value: Any) -> Secret:
        """The value of a var marked ``secret: true``: all of it secret, and known to the
        ``Redactor``."""
        secret = Secret(value.reveal() if isinstance(value, Secret) else _to_text(value))
        self.redactor.add(secret)
        return secret

    # --- Secret references ----------------------------------------------------------------------

    def _ref_part(self, value: Any, path: Path) -> str:
        """One part of a Secret reference, its ``${...}`` expanded without Secret values."""
        if not isinstance(value, str):
            return str(value)
        if "$" not in value:
            return value
        restricted = self.child({})
        restricted.no_secrets = NO_SECRET_IN_REF
        return _to_text(restricted._expand_str(value, path))

    def secret_ref(self, data: Any, path: Path) -> SecretKey | None:
        """The key a ``{secretRef: ...}`` mapping names (variables in its parts expanded), None
        for any other value. Raises ``UnresolvedVariable`` located at the offending part."""
        try:
            ref = secret_ref_body(data)
        except ValueError as exc:
            raise UnresolvedVariable(path, str(exc)) from None
        if ref is None:
            return None
        where = (*path, "secretRef")
        parts: dict[str, str] = {}
        for part in ("name", "key", "namespace"):
            if ref.get(part) is None and part == "namespace":
                continue
            parts[part] = self._ref_part(ref[part], (*where, part)) if ref[part] is not None else ""
            if not parts[part] and part != "namespace":
                raise UnresolvedVariable((*where, part), f"secretRef {part} is empty")
        return SecretKey(parts.get("namespace") or None, parts["name"], parts["key"])

    def secret_key(self, text: str, path: Path) -> SecretKey:
        """The key ``${secret:TEXT}`` names (variables in TEXT expanded)."""
        if "$" in text:
            text = self._ref_part(text, path)
        try:
            return parse_secret_ref(text)
        except ValueError as exc:
            raise UnresolvedVariable(path, str(exc)) from None

    # --- lookup and expansion --------------------------------------------------------------------

    def lookup(self, expr: str, path: Path) -> Any:
        name, sep, default = split_default(expr)
        name = name.strip()
        if name.startswith("env:"):
            var = name[4:]
            if var in self.env:
                return self.env[var]
            if sep:
                return self._default(default, path)
            raise UnresolvedVariable(path, f"environment variable {var!r} is not set")
        if name.startswith("secret:"):
            return self._secret(self.secret_key(name[7:], path), path)
        if not _NAME.match(name):
            raise UnresolvedVariable(path, f"invalid variable reference ${{{expr}}}")
        if name in self.values:
            value = self.values[name]
            if name in self.secret_names and not isinstance(value, Secret):
                value = self.secret_var(value)
            if isinstance(value, Secret):
                self.secrets_used[0] += 1
            return value
        if name in self.unavailable:
            why = self.unavailable[name]
            if why is not None:
                raise NeedsSecret(path, why.format(name=name))
            raise UnresolvedVariable(path, f"variable ${{{name}}} has no value")
        if sep:
            return self._default(default, path)
        known = ", ".join(sorted(self.values)) or "none defined"
        raise UnresolvedVariable(path, f"undefined variable ${{{name}}} (known: {known})")

    def _default(self, default: str, path: Path) -> Any:
        return self._expand_str(default, path) if "${" in default else default

    def expand(self, data: Any, path: Path = ()) -> Any:
        """A copy of ``data`` with every ``${...}`` and ``secretRef`` resolved."""
        if isinstance(data, str):
            if "$" not in data:
                return data
            return self._expand_str(data, path)
        if isinstance(data, dict):
            ref = self.secret_ref(data, path)
            if ref is not None:
                return self._secret(ref, path)
            return {k: self.expand(v, (*path, k)) for k, v in data.items()}
        if isinstance(data, list):
            return [self.expand(v, (*path, i)) for i, v in enumerate(data)]
        return data

    def _expand_str(self, text: str, path: Path) -> Any:
        if _NESTED.search(text) is None:
            whole = _REF.fullmatch(text)
            if whole and whole.group(1) is not None:
                return self.lookup(whole.group(1), path)

            def sub(m: re.Match[str]) -> str:
                if m.group(1) is None:  # "$${" escape
                    return "${"
                value = self.lookup(m.group(1), path)
                if isinstance(value, Secret):
                    raise _EmbedsSecret
                return _to_text(value)

            try:
                return _REF.sub(sub, text)  # the hot path: plain text
            except _EmbedsSecret:
                refs = [(m.start(), m.end(), m.group(1)) for m in _REF.finditer(text)]
        else:
            refs = list(_scan(text))
            if len(refs) == 1 and refs[0][2] is not None and refs[0][:2] == (0, len(text)):
                return self.lookup(refs[0][2], path)
        out: list[Any] = []
        secret = False
        pos = 0
        for start, end, expr in refs:
            out.append(text[pos:start])
            value = "${" if expr is None else self.lookup(expr, path)
            if isinstance(value, Secret):
                secret = True
                out.append(value)
            else:
                out.append(_to_text(value))
            pos = end
        out.append(text[pos:])
        # A Secret when a piece is one (its secret parts stay secret), else plain text.
        return Secret.concat(out) if secret else "".join(out)


class _EmbedsSecret(Exception):
    """A string being expanded embeds a Secret: it is built piece by piece instead."""


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _scan(text: str) -> Iterator[tuple[int, int, str | None]]:
    """The top-level ``${...}`` of ``text`` as ``(start, end, expression)``, nesting-aware
    (``${secret:${ns}/db/dsn}`` is one); ``expression`` is None for a ``$${`` escape. Like the
    plain pattern, a ``${`` whose expression holds a bare brace is literal text."""
    i = 0
    while True:
        j = text.find("$", i)
        if j < 0:
            return
        if text.startswith("$${", j):
            yield j, j + 3, None
            i = j + 3
            continue
        if text.startswith("${", j):
            end = _closing(text, j + 2)
            if end is not None:
                yield j, end + 1, text[j + 2 : end]
                i = end + 1
                continue
        i = j + 1


def _closing(text: str, start: int) -> int | None:
    depth, k, n = 1, start, len(text)
    while k < n:
        if text.startswith("${", k):
            depth += 1
            k += 2
            continue
        c = text[k]
        if c == "{":
            return None
        if c == "}":
            depth -= 1
            if depth == 0:
                return k
        k += 1
    return None


def split_default(expr: str) -> tuple[str, str, str]:
    """``expr.partition(":-")``, ignoring a ``:-`` inside a nested ``${...}``."""
    if "${" not in expr:
        return expr.partition(":-")
    depth = 0
    for i, c in enumerate(expr):
        if c == "$" and expr.startswith("${", i):
            depth += 1
        elif c == "}" and depth:
            depth -= 1
        elif depth == 0 and expr.startswith(":-", i):
            return expr[:i], ":-", expr[i + 2 :]
    return expr, "", ""


def expressions(text: str) -> Iterator[str]:
    """Every ``${...}`` expression in ``text``, nested ones included (outer first)."""
    if _NESTED.search(text) is None:
        yield from (m.group(1) for m in _REF.finditer(text) if m.group(1) is not None)
        return
    for _, _, expr in _scan(text):
        if expr is not None:
            yield expr
            if "${" in expr:
                yield from expressions(expr)


def references(data: Any) -> set[str]:
    """Every ``${...}`` expression inside ``data``, nested ones included (``${secret:${ns}/a/b}``
    gives ``secret:${ns}/a/b`` and ``ns``)."""
    found: set[str] = set()
    if isinstance(data, str):
        if "${" in data:
            found.update(expressions(data))
    elif isinstance(data, dict):
        for v in data.values():
            found |= references(v)
    elif isinstance(data, list):
        for v in data:
            found |= references(v)
    return found
