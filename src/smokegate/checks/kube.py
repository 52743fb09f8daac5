"""``kube``: what the cluster says about an object — ready, present, absent — and what a Secret or
ConfigMap holds (keys, and values matching a regex; values are never shown).

    - name: api-ready
      kube:
        ready: {kind: Deployment, name: api}          # built-in kinds need no apiVersion
      retry: {within: 2m}                              # wait for a rollout: retry until ready
    - name: certificate-issued
      kube:
        ready: {apiVersion: cert-manager.io/v1, kind: Certificate, name: web}
    - name: public-address
      kube:
        ready: {kind: Service, name: web, waitForLoadBalancer: true}  # external IP too
    - name: db-credentials
      kube:
        secret: {name: db, keys: [username], values: {password: '^.{16,}$'}}
    - name: app-config
      kube:
        configMap: {name: app, namespace: shared, keys: [config.yaml]}
    - name: old-service-removed
      kube:
        absent: {kind: Service, name: legacy}

``ready`` follows kstatus rules (``smokegate.kube.readiness``, plus Flux's for HelmReleases)
and says why an object is not ready ("2/3 replicas updated", a condition's reason and message).
The namespace is the item's ``namespace``, else the run's (``-n``, or the release namespace
under ``gate``), else the kubeconfig context's. A missing permission fails the check with the
API server's own words (``forbidden: User "…" cannot get resource "secrets" …``).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from smokegate.checks.base import (
    CheckContext,
    CheckFailed,
    ErrorKind,
    Mismatch,
    Outcome,
    Spec,
    failed,
    passed,
)


class ObjectRef(Spec):
    """One object, by kind and name."""

    api_version: str | None = None
    """e.g. `apps/v1`, `cert-manager.io/v1`; optional for common built-in kinds and HelmRelease."""
    kind: str = Field(min_length=1)
    name: str = Field(min_length=1)
    namespace: str | None = None
    """Default: the run's namespace (`-n`, or the release's under `gate`)."""


class ReadyRef(ObjectRef):
    """The object to wait for, and how strictly."""

    wait_for_load_balancer: bool = False
    """Service of type LoadBalancer: also wait for `status.loadBalancer.ingress` (an external
    address from the cloud controller). Default: kstatus' rule, the cluster IP is enough."""

    @model_validator(mode="after")
    def _load_balancer_is_a_service(self) -> ReadyRef:
        if self.wait_for_load_balancer and self.kind.lower() != "service":
            raise ValueError(
                f"waitForLoadBalancer applies to kind Service only (this is kind {self.kind})"
            )
        return self


class DataExpect(Spec):
    """A Secret or ConfigMap: it exists, has these keys, and values match these regexes."""

    name: str = Field(min_length=1)
    namespace: str | None = None
    keys: list[str] = Field(default_factory=list)
    """Keys that must be present."""
    values: dict[str, str] = Field(default_factory=dict)
    """Key -> regex (Python syntax, searched) its value must match. The value is never shown."""

    @field_validator("values")
    @classmethod
    def _regexes_compile(cls, v: dict[str, str]) -> dict[str, str]:
        for key, pattern in v.items():
            try:
                re.compile(pattern)
            except (re.error, OverflowError) as exc:  # a{99999999999}: OverflowError
                raise ValueError(f"values.{key}: invalid regex {pattern!r}: {exc}") from None
        return v


class KubeSpec(Spec):
    """Ask the Kubernetes API about one object. Give exactly one of the fields."""

    ready: ReadyRef | None = None
    """The object exists and is ready (kstatus rules)."""
    exists: ObjectRef | None = None
    absent: ObjectRef | None = None
    secret: DataExpect | None = None
    config_map: DataExpect | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> KubeSpec:
        given = [
            n for n in ("ready", "exists", "absent", "secret", "config_map") if getattr(self, n)
        ]
        if len(given) != 1:
            names = "ready, exists, absent, secret, configMap"
            found = ", ".join("configMap" if g == "config_map" else g for g in given) or "none"
            raise ValueError(f"give exactly one of {names} (found: {found})")
        return self


SPEC = KubeSpec
# Imported by the engine before the run starts, so the first check's latency is the API call's.
PRELOAD = ("lightkube", "httpx2", "smokegate.kube.client", "smokegate.kube.readiness")


def _namespace(item_ns: str | None, ctx: CheckContext) -> str | None:
    return item_ns or ctx.namespace


def _failed(exc: Any) -> CheckFailed:
    return CheckFailed(exc.message, kind=exc.error_kind)


async def run(spec: KubeSpec, ctx: CheckContext) -> Outcome:
    from smokegate.kube.client import KubeError

    client = ctx.kube
    try:
        if spec.ready is not None:
            return await _ready(client, spec.ready, ctx)
        if spec.exists is not None:
            return await _presence(client, spec.exists, ctx, want=True)
        if spec.absent is not None:
            return await _presence(client, spec.absent, ctx, want=False)
        if spec.secret is not None:
            return await _data(client, spec.secret, ctx, secret=True)
        assert spec.config_map is not None
        return await _data(client, spec.config_map, ctx, secret=False)
    except KubeError as exc:
        raise _failed(exc) from None


def object_readiness(obj: dict[str, Any], *, wait_for_load_balancer: bool = False) -> Any:
    """``ready: true``: kstatus rules (``kube.readiness``) plus Flux's for its kinds."""
    from smokegate.flux.helmrelease import READINESS_RULES
    from smokegate.kube.readiness import evaluate

    return evaluate(obj, READINESS_RULES, wait_for_load_balancer=wait_for_load_balancer)


async def _ready(client: Any, ref: ReadyRef, ctx: CheckContext) -> Outcome:
    rt = await client.resolve(ref.api_version, ref.kind)
    ns = _namespace(ref.namespace, ctx) or client.namespace
    obj = await client.get(rt, ref.name, ns)
    state = object_readiness(obj, wait_for_load_balancer=ref.wait_for_load_balancer)
    what = rt.describe(ref.name, ns)
    if state.ready:
        return passed(f"{what}: {state.summary}")
    evidence = [Mismatch(what, "ready", detail) for detail in state.details]
    outcome = failed(evidence, details={"terminal": state.terminal})
    return outcome


async def _presence(client: Any, ref: ObjectRef, ctx: CheckContext, *, want: bool) -> Outcome:
    rt = await client.resolve(ref.api_version, ref.kind)
    ns = _namespace(ref.namespace, ctx) or client.namespace
    obj = await client.get_or_none(rt, ref.name, ns)
    what = rt.describe(ref.name, ns)
    if (obj is not None) == want:
        return passed(f"{what}: {'exists' if want else 'absent'}")
    if want:
        raise CheckFailed(f"{what}: not found", kind=ErrorKind.NOT_FOUND)
    deleting = (obj or {}).get("metadata", {}).get("deletionTimestamp")
    actual = "exists (being deleted)" if deleting else "exists"
    return failed([Mismatch(what, "absent", actual)])


async def _data(client: Any, item: DataExpect, ctx: CheckContext, *, secret: bool) -> Outcome:
    from smokegate.kube.client import BUILTIN, KubeError
    from smokegate.kube.secrets import decode_value

    rt = BUILTIN["secret" if secret else "configmap"]
    ns = _namespace(item.namespace, ctx) or client.namespace
    what = rt.describe(item.name, ns)
    try:
        obj = await client.get(rt, item.name, ns)
    except KubeError as exc:
        raise _failed(exc) from None
    data: dict[str, str] = obj.get("data") or {}
    present = set(data) | set(obj.get("binaryData") or {})
    evidence: list[Mismatch] = []
    missing = [k for k in dict.fromkeys([*item.keys, *item.values]) if k not in present]
    if missing:
        evidence.append(
            Mismatch(
                what,
                f"key{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                f"missing (has: {', '.join(sorted(present)) or 'no keys'})",
            )
        )
    for key, pattern in item.values.items():
        if key not in present:
            continue
        if secret:
            try:
                value = decode_value(data, key)
            except ValueError as exc:
                evidence.append(Mismatch(f"{what} key {key!r}", "a text value", str(exc)))
                continue
            if value:
                ctx.redactor.add(value)  # belt and braces: never in any output
        else:
            value = data.get(key)
            if value is None:
                evidence.append(Mismatch(f"{what} key {key!r}", "a text value", "binaryData"))
                continue
        if not re.search(pattern, value or ""):
            evidence.append(
                Mismatch(
                    f"{what} key {key!r}",
                    f"a value matching /{pattern}/",
                    "a value that does not match (not shown)",
                )
            )
    if evidence:
        return failed(evidence)
    checked = (
        f"{len(item.keys) + len(item.values)} key check(s)"
        if item.keys or item.values
        else "exists"
    )
    return passed(f"{what}: {checked}")
