"""Validating manifests against the real test apiserver and the CRDs' own rules.

- ``dry_run``: a server-side dry run of a server-side apply: admission, the CRD's
  OpenAPI schema (types, enums, patterns, required fields), defaulting. It returns what the
  server would store.
- ``pruned_fields``: what the server dropped or changed. Server-side apply refuses fields the
  schema does not declare (``field not declared in schema``), but a plain create or update would
  prune them silently; comparing what was sent with what would be stored guards either way.
- ``cel_violations``: the CRD's ``x-kubernetes-validations`` rules, evaluated with cel-python.
  kube-apiserver v1.20 predates CEL validation (1.25+) and drops these keys when the CRD is
  created, so without this they would not be checked at all. Like a newer apiserver, the rules
  are evaluated on the defaulted object (the dry run's result).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import celpy
import yaml
from kubeenv import KubectlError, KubeEnv

CRD_DIR = Path(__file__).resolve().parents[1] / "kube" / "crds"


def dry_run(env: KubeEnv, obj: dict[str, Any]) -> dict[str, Any]:
    r = env.kubectl(
        "apply",
        # How kustomize-controller applies: server-side apply, with no client-side schema check
        # (kubectl's, from the server's OpenAPI, is not what Flux's apply goes through).
        "--server-side",
        "--field-manager=kustomize-controller",
        "--validate=false",
        "--dry-run=server",
        "-o",
        "json",
        "-f",
        "-",
        input=json.dumps(obj),
    )
    return json.loads(r.stdout)


def dry_run_error(env: KubeEnv, obj: dict[str, Any]) -> str:
    """The apiserver's refusal of ``obj`` (an AssertionError if it accepts it)."""
    try:
        dry_run(env, obj)
    except KubectlError as e:
        return e.stderr
    raise AssertionError(f"the apiserver accepted {obj['kind']} {obj['metadata']['name']}")


def pruned_fields(sent: Any, stored: Any, path: str = "") -> list[str]:
    """Paths present in ``sent`` but missing or different in ``stored``."""
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return [path or "."]
        out = []
        for key, value in sent.items():
            if key not in stored:
                out.append(f"{path}.{key}")
            else:
                out += pruned_fields(value, stored[key], f"{path}.{key}")
        return out
    if isinstance(sent, list):
        if not isinstance(stored, list) or len(sent) != len(stored):
            return [path]
        return [
            p
            for i, (a, b) in enumerate(zip(sent, stored, strict=True))
            for p in pruned_fields(a, b, f"{path}[{i}]")
        ]
    return [] if sent == stored else [path]


@cache
def crds() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> that version's openAPIV3Schema, from the CRD files (not the server,
    which dropped the CEL rules)."""
    out = {}
    for path in CRD_DIR.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec.get("versions", []):
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if schema:
                    out[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return out


def cel_rules(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Every x-kubernetes-validations rule anywhere in ``schema``."""
    rules = list(schema.get("x-kubernetes-validations", []))
    for sub in schema.get("properties", {}).values():
        rules += cel_rules(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            rules += cel_rules(schema[key])
    return rules


_CEL = celpy.Environment()


def _holds(rule: str, value: Any) -> bool:
    program = _CEL.program(_CEL.compile(rule))
    result = program.evaluate({"self": celpy.json_to_cel(value)})
    return result is True or (isinstance(result, celpy.celtypes.BoolType) and bool(result))


def cel_violations(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    out = []
    for rule in schema.get("x-kubernetes-validations", []):
        # Transition rules (oldSelf) only apply to updates; these manifests are creations.
        if "oldSelf" in rule["rule"]:
            continue
        if not _holds(rule["rule"], value):
            out.append(f"{path or '.'}: {rule.get('message') or rule['rule']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, sub in value.items():
            if key in props:
                out += cel_violations(props[key], sub, f"{path}.{key}")
            elif isinstance(extra, dict):
                out += cel_violations(extra, sub, f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, sub in enumerate(value):
            out += cel_violations(schema["items"], sub, f"{path}[{i}]")
    return out
