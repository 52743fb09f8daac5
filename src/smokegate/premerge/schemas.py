"""Offline schema validation of manifests.

* Kubernetes built-in kinds: the JSON schemas ``kubernetes-validate`` ships per Kubernetes
  version (``-local-strict``: unknown fields are errors, as ``kubectl apply --validate=strict``
  and server-side field validation say). Each schema is compiled once per run.
* Flux kinds: the upstream CRDs bundled in ``smokegate/premerge/crds/`` (see its README), strict
  like every CRD here; parsed on first use of a kind and once per process (``fluxcrds``).
* Any other custom resource: the ``CustomResourceDefinition``s found in the repository or in
  rendered charts (``crds/``), so a chart's own CRs are checked against the chart's own CRDs.

A CRD's ``openAPIV3Schema`` is OpenAPI 3.0; it is turned into JSON Schema 2020-12 here
(``nullable``, ``x-kubernetes-int-or-string``, boolean ``exclusiveMinimum``); objects that
declare ``properties`` get ``additionalProperties: false`` unless they keep unknown fields
(``x-kubernetes-preserve-unknown-fields``), matching the API server's pruning with strict field
validation. CEL rules (``x-kubernetes-validations``) are not evaluated.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from smokegate.core.errors import UsageError

EXTRA_HINT = "pip install 'smokegate[premerge]'"


@dataclass(frozen=True, slots=True)
class SchemaError:
    path: tuple[str | int, ...]
    message: str


def kube_versions() -> list[str]:
    """Kubernetes versions (``1.35``) the installed kubernetes-validate has schemas for."""
    base = _schema_root()
    out = []
    for entry in base.iterdir():
        m = re.fullmatch(r"v(\d+)\.(\d+)\.0-local-strict", entry.name)
        if m:
            out.append(f"{m.group(1)}.{m.group(2)}")
    return sorted(out, key=lambda v: tuple(int(x) for x in v.split(".")))


def _schema_root() -> Any:
    try:
        import kubernetes_validate  # noqa: F401
    except ImportError:
        raise UsageError(
            f"Kubernetes schemas come from the kubernetes-validate package: {EXTRA_HINT} "
            "(or pass --skip-kube-schemas)"
        ) from None
    return resources.files("kubernetes_validate") / "kubernetes-json-schema"


def resolve_kube_version(requested: str | None) -> str:
    """``1.35``/``v1.35.2`` -> the newest shipped schema version not newer than it."""
    versions = kube_versions()
    if not versions:
        raise UsageError("kubernetes-validate ships no schemas?")
    if not requested:
        return versions[-1]
    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", requested.strip())
    if not m:
        raise UsageError(f"--kubernetes-version {requested!r}: expected like 1.35 or v1.35.2")
    wanted = (int(m.group(1)), int(m.group(2)))
    ok = [v for v in versions if tuple(int(x) for x in v.split(".")) <= wanted]
    if not ok:
        raise UsageError(
            f"--kubernetes-version {requested}: the oldest Kubernetes with schemas here is "
            f"{versions[0]}"
        )
    if tuple(int(x) for x in ok[-1].split(".")) != wanted and wanted > tuple(
        int(x) for x in versions[-1].split(".")
    ):
        raise UsageError(
            f"--kubernetes-version {requested}: the newest Kubernetes with schemas here is "
            f"{versions[-1]} (upgrade kubernetes-validate)"
        )
    return ok[-1]


class Schemas:
    """Validators by (apiVersion, kind), built on first use; thread-safe."""

    def __init__(self, kube_version: str | None, *, kube: bool = True) -> None:
        self.kube = kube
        self.kube_version = resolve_kube_version(kube_version) if kube else None
        self._lock = threading.Lock()
        self._validators: dict[tuple[str, str], Any] = {}
        self._crd_schemas: dict[tuple[str, str], dict[str, Any]] = {}
        self._bundled: dict[tuple[str, str], str] = {}
        self._registry: Any = None
        self._dir: Any = None
        if kube:
            self._dir = _schema_root() / f"v{self.kube_version}.0-local-strict"

    # --- custom resources ------------------------------------------------------------------

    def add_crd(self, crd: Mapping[str, Any]) -> None:
        for key, schema in crd_schemas(crd).items():
            with self._lock:
                self._crd_schemas.setdefault(key, schema)

    def add_bundled_flux_crds(self) -> None:
        """Use the bundled Flux CRDs; they win over a repository's copy of the same kind (a
        ``gotk-components.yaml``), which only serves versions they do not."""
        from smokegate.premerge.fluxcrds import bundled_kinds

        self._bundled = bundled_kinds()

    def known(self, api_version: str, kind: str) -> bool:
        return self._validator(api_version, kind) is not None

    # --- validation ------------------------------------------------------------------------

    def validate(self, obj: Mapping[str, Any]) -> list[SchemaError] | None:
        """Problems of ``obj`` (empty: valid), or None when no schema knows its kind."""
        api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
        validator = self._validator(api_version, kind)
        if validator is None:
            return None
        errors = []
        for err in validator.iter_errors(obj):
            errors.extend(_flatten(err))
        errors.sort(key=lambda e: [str(p) for p in e.path])
        return errors

    def _validator(self, api_version: str, kind: str) -> Any:
        key = (api_version, kind)
        with self._lock:
            if key in self._validators:
                return self._validators[key]
        validator = self._build(api_version, kind)
        with self._lock:
            self._validators[key] = validator
        return validator

    def _build(self, api_version: str, kind: str) -> Any:
        from jsonschema import Draft202012Validator

        schema = self._bundled_schema(api_version, kind) or self._crd_schemas.get(
            (api_version, kind)
        )
        if schema is not None:
            return Draft202012Validator(schema)
        if self._dir is None or not kind:
            return None
        # apps/v1 -> apps-v1, rbac.authorization.k8s.io/v1 -> rbac-v1 (kubernetes-validate's names)
        group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        name = f"{kind.lower()}-{group_version}.json"
        f = self._dir / name
        if not f.is_file():
            return None
        kube_schema = json.loads(f.read_text(encoding="utf-8"))
        # kubernetes-validate only names kinds; the schema of a type that is not a top-level
        # object (no apiVersion enum) is no object schema at all.
        enum = ((kube_schema.get("properties") or {}).get("apiVersion") or {}).get("enum")
        if enum and api_version not in enum:
            return None
        return Draft202012Validator(kube_schema, registry=self._kube_registry())

    def _bundled_schema(self, api_version: str, kind: str) -> dict[str, Any] | None:
        name = self._bundled.get((api_version.partition("/")[0], kind))
        return _bundled_file_schemas(name).get((api_version, kind)) if name else None

    def _kube_registry(self) -> Any:
        from referencing import Registry, Resource

        with self._lock:
            if self._registry is None:
                defs = json.loads((self._dir / "_definitions.json").read_text(encoding="utf-8"))
                self._registry = Resource.from_contents(defs) @ Registry()
            return self._registry


def _flatten(err: Any) -> list[SchemaError]:
    """One message per real problem: for ``oneOf``/``anyOf`` failures (int-or-string fields,
    nullable types) the best sub-error says more than "is not valid under any of"."""
    from jsonschema.exceptions import best_match

    if err.validator == "additionalProperties" and isinstance(err.instance, Mapping):
        allowed = set((err.schema.get("properties") or {}).keys())
        extra = sorted(str(k) for k in err.instance if k not in allowed)
        if extra:
            base = tuple(err.absolute_path)
            return [SchemaError((*base, k), f"unknown field {k!r}") for k in extra]
    if err.validator in ("oneOf", "anyOf") and err.context:
        inner = best_match(err.context)
        path = tuple(err.absolute_path)
        if inner.validator == "type":
            return [SchemaError(path, _type_message(err.instance, err.schema))]
        return [SchemaError(tuple(inner.absolute_path) or path, _message(inner))]
    return [SchemaError(tuple(err.absolute_path), _message(err))]


def _type_message(instance: Any, schema: Mapping[str, Any]) -> str:
    types: list[str] = []
    for sub in schema.get("oneOf") or schema.get("anyOf") or ():
        t = sub.get("type") if isinstance(sub, Mapping) else None
        for x in [t] if isinstance(t, str) else list(t or ()):
            if x != "null" and x not in types:
                types.append(x)
    return f"{_show(instance)} is not of type {' or '.join(types) or 'the expected type'}"


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _message(err: Any) -> str:
    if err.validator == "additionalProperties" and isinstance(err.instance, Mapping):
        allowed = set((err.schema.get("properties") or {}).keys())
        extra = sorted(k for k in err.instance if k not in allowed)
        if extra:
            what = ", ".join(repr(k) for k in extra)
            return f"unknown field{'s' if len(extra) > 1 else ''} {what}"
    if err.validator == "type":
        expected = err.validator_value
        if isinstance(expected, list):
            expected = " or ".join(t for t in expected if t != "null")
        return f"{_show(err.instance)} is not of type {expected}"
    if err.validator == "required":
        return str(err.message).replace("is a required property", "is required")
    if err.validator == "enum":
        return f"{_show(err.instance)} is not one of {err.validator_value}"
    msg = str(err.message)
    return msg if len(msg) <= 300 else msg[:297] + "..."


# --- OpenAPI v3 (CRD) -> JSON Schema ------------------------------------------------------------

_KEEP = {
    "type",
    "properties",
    "required",
    "items",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "pattern",
    "additionalProperties",
    "oneOf",
    "anyOf",
    "allOf",
    "not",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
}


def openapi_to_jsonschema(schema: Mapping[str, Any], *, top: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    for key, value in schema.items():
        if key not in _KEEP:
            continue
        if key == "properties" and isinstance(value, Mapping):
            out[key] = {str(k): openapi_to_jsonschema(v) for k, v in value.items()}
        elif (key == "items" and isinstance(value, Mapping)) or (
            key == "additionalProperties" and isinstance(value, Mapping)
        ):
            out[key] = openapi_to_jsonschema(value)
        elif key in ("oneOf", "anyOf", "allOf") and isinstance(value, list):
            out[key] = [openapi_to_jsonschema(v) for v in value if isinstance(v, Mapping)]
        elif key == "not" and isinstance(value, Mapping):
            out[key] = openapi_to_jsonschema(value)
        else:
            out[key] = value
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    for bound, flag in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if schema.get(flag) is True and bound in out:
            out[flag] = out.pop(bound)
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if top:
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
        props.pop("status", None)
        out["properties"]["status"] = {}
    if (
        isinstance(out.get("properties"), dict)
        and "additionalProperties" not in out
        and not preserve
        and (not out.get("type") or out.get("type") == "object" or "object" in out["type"])
    ):
        out["additionalProperties"] = False
    return out


def crd_schemas(crd: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """``(apiVersion, kind)`` -> JSON Schema for every served version of ``crd``."""
    spec = crd.get("spec") or {}
    group = spec.get("group")
    kind = (spec.get("names") or {}).get("kind")
    out: dict[tuple[str, str], dict[str, Any]] = {}
    if not group or not kind:
        return out
    for version in spec.get("versions") or ():
        if not isinstance(version, Mapping) or not version.get("served", True):
            continue
        schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or None
        if isinstance(schema, Mapping):
            key = (f"{group}/{version.get('name')}", str(kind))
            out.setdefault(key, openapi_to_jsonschema(schema, top=True))
    return out


@functools.cache
def _bundled_file_schemas(name: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Converted once per process: every ``Schemas`` shares them (never mutated)."""
    from smokegate.premerge.fluxcrds import bundled_crds

    out: dict[tuple[str, str], dict[str, Any]] = {}
    for crd in bundled_crds(name):
        for key, schema in crd_schemas(crd).items():
            out.setdefault(key, schema)
    return out


def crds_in(objects: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [
        o
        for o in objects
        if o.get("kind") == "CustomResourceDefinition"
        and str(o.get("apiVersion", "")).startswith("apiextensions.k8s.io/")
    ]
