"""Where the objects come from: a Helm release record, labels, or manifests on disk.

For a HelmRelease the release Secret is read first: its ``manifest`` is exactly what Helm
applied (Flux post-renderers included), in one API read, and it is what the chart says the
probes and ports are. When there is no deployed revision to read (or no permission to list
Secrets), the objects are listed by the labels helm-controller stamps on everything it applies
(``helm.toolkit.fluxcd.io/name`` + ``/namespace``), then by ``app.kubernetes.io/instance``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from smokegate.core.errors import ClusterError, SmokegateError
from smokegate.discover.build import PodAddress, workload_key
from smokegate.discover.manifests import load_manifests
from smokegate.discover.objects import WORKLOAD_KINDS, Workload
from smokegate.discover.selector import Selector
from smokegate.helm.release import HelmReleaseRecord, ReleaseDecodeError, ReleaseRef

FLUX_NAME_LABEL = "helm.toolkit.fluxcd.io/name"
FLUX_NAMESPACE_LABEL = "helm.toolkit.fluxcd.io/namespace"
INSTANCE_LABEL = "app.kubernetes.io/instance"
KINDS = (*WORKLOAD_KINDS, "Service", "Ingress")


class NothingFound(SmokegateError):
    """Discovery found no workload, Service or Ingress to derive checks from (exit 2)."""

    exit_code = 2


@dataclass(slots=True)
class Found:
    raw: list[dict[str, Any]]
    namespace: str
    """Objects without a namespace are in this one (the release's)."""
    source: str
    release: ReleaseRef | None = None
    record: HelmReleaseRecord | None = None
    notes: list[str] = field(default_factory=list)


def from_manifest_text(
    text: str, namespace: str, source: str, selector: Selector | None = None
) -> Found:
    """Rendered manifests (``helm template``, ``kubectl get -o yaml``), optionally filtered by
    ``selector`` on the objects' own labels."""
    raw = load_manifests(text, source)
    if selector is not None:
        raw = [o for o in raw if selector.matches((o.get("metadata") or {}).get("labels") or {})]
        source = f"{source} (objects matching {selector.text})"
    return Found(raw, namespace, source)


async def from_helmrelease(client: Any, name: str, namespace: str) -> Found:
    """The objects of HelmRelease ``namespace/name`` (or, when no such HelmRelease exists, of
    the plain Helm release ``name`` in ``namespace``)."""
    from smokegate.helm.release import release_ref
    from smokegate.kube.client import HELMRELEASE, KubeError

    notes: list[str] = []
    try:
        hr = await client.get_or_none(HELMRELEASE, name, namespace)
    except KubeError as exc:
        raise ClusterError(str(exc)) from None
    if hr is None:
        ref = ReleaseRef(name, namespace, namespace)
        notes.append(
            f"no HelmRelease {namespace}/{name}: looking for the Helm release {name!r} instead"
        )
    else:
        ref = release_ref(hr)
    return await from_release_ref(client, ref, notes)


async def from_release_ref(client: Any, ref: ReleaseRef, notes: list[str] | None = None) -> Found:
    """The objects of the Helm release ``ref`` (as ``from_helmrelease``, HelmRelease known)."""
    from smokegate.helm.release import fetch_release
    from smokegate.kube.client import KubeError

    notes = list(notes or [])
    record = None
    problem = None
    try:
        record = await fetch_release(client, ref.name, ref.storage_namespace)
    except KubeError as exc:
        problem = f"cannot read the Helm release Secrets ({exc})"
    except ReleaseDecodeError as exc:
        problem = f"cannot decode the Helm release ({exc})"
    if record is not None:
        secret = record.secret or f"{ref.storage_namespace}/{ref.secret_name(record.version)}"
        raw = load_manifests(record.manifest, f"Secret {secret}")
        source = (
            f"Helm release {ref.name} revision {record.version} "
            f"({record.chart.name}-{record.chart.version}; Secret {secret})"
        )
        return Found(raw, record.namespace or ref.namespace, source, ref, record, notes)
    notes.append(
        (
            problem
            or f"no deployed revision of Helm release {ref.name!r} in namespace "
            f"{ref.storage_namespace!r}"
        )
        + "; found objects by labels"
    )
    tries: list[dict[str, str]] = []
    if ref.helmrelease:
        flux_ns = ref.helmrelease_namespace or ref.namespace
        tries.append({FLUX_NAME_LABEL: ref.helmrelease, FLUX_NAMESPACE_LABEL: flux_ns})
    tries.append({INSTANCE_LABEL: ref.name})
    for labels in tries:
        selector = Selector.of(labels)
        raw = await list_kinds(client, ref.namespace, selector)
        if raw:
            source = f"objects labelled {selector.text} in namespace {ref.namespace}"
            return Found(raw, ref.namespace, source, ref, None, notes)
    raise NothingFound(
        f"nothing to discover for Helm release {ref.name!r}: no deployed revision in namespace "
        f"{ref.storage_namespace!r} and no objects labelled "
        + " or ".join(Selector.of(t).text for t in tries)
        + f" in namespace {ref.namespace!r}"
        + (f" ({problem})" if problem else "")
    )


async def from_selector(client: Any, namespace: str, selector: Selector) -> Found:
    raw = await list_kinds(client, namespace, selector)
    return Found(raw, namespace, f"objects labelled {selector.text} in namespace {namespace}")


async def list_kinds(
    client: Any, namespace: str, selector: Selector, kinds: Iterable[str] = KINDS
) -> list[dict[str, Any]]:
    """Every object of ``kinds`` in ``namespace`` matching ``selector``."""
    from smokegate.kube.client import BUILTIN, KubeError

    out: list[dict[str, Any]] = []
    for kind in kinds:
        rt = BUILTIN[kind.lower()]
        try:
            items = await client.list(rt, namespace, selector.lightkube())
        except KubeError as exc:
            if exc.not_found:  # the API is not served here (no networking.k8s.io/v1, say)
                continue
            raise ClusterError(f"{exc} (discovery lists {', '.join(KINDS)})") from None
        for item in items:
            # Lists omit kind/apiVersion on their items.
            item.setdefault("kind", rt.kind)
            item.setdefault("apiVersion", rt.api_version)
        out.extend(items)
    return out


async def pod_addresses(client: Any, workloads: Sequence[Workload]) -> dict[str, list[PodAddress]]:
    """The running pods (with an IP) of each workload, for ``--via pods``."""
    from smokegate.kube.client import POD, KubeError

    out: dict[str, list[PodAddress]] = {}
    for w in workloads:
        if not w.selector:
            continue
        try:
            pods = await client.list(POD, w.namespace, Selector.of(w.selector).lightkube())
        except KubeError as exc:
            raise ClusterError(f"{exc} (--via pods lists the pods of {w.ref})") from None
        out[workload_key(w)] = [
            PodAddress(p["metadata"]["name"], p["status"]["podIP"])
            for p in sorted(pods, key=lambda p: p["metadata"]["name"])
            if (p.get("status") or {}).get("phase") == "Running"
            and (p.get("status") or {}).get("podIP")
        ]
    return out
