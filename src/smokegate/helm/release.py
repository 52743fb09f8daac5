"""Helm release records: which release a Flux HelmRelease is, and what Helm stored about it.

Helm keeps one Secret per revision, ``sh.helm.release.v1.<release>.v<N>`` (type
``helm.sh/release.v1``; labels ``owner=helm``, ``name``, ``status``, ``version``). Its
``data.release`` is Helm's payload ``base64(gzip(json))``, and the Secret API base64-encodes
``data`` once more, so a client reading the Secret decodes base64 twice, then gunzips, except
that releases written before Helm compressed them are plain JSON (Helm checks the gzip magic
bytes; so do we). The JSON holds the rendered ``manifest`` (the objects Helm applied,
post-renderers included), ``hooks`` (``helm test`` pods among them), ``chart.metadata``,
``config`` and ``info.status``. The live revision is the newest one whose status is
``deployed``.

For a Flux HelmRelease (helm-controller v1.x): the Helm release name is ``spec.releaseName``,
else ``<spec.targetNamespace>-<name>`` when a target namespace is set, else ``<name>``, then
shortened as Flux does when longer than 53 characters. The workloads go to
``spec.targetNamespace`` (else the HelmRelease's namespace) while the release Secrets live in
``spec.storageNamespace`` (else the HelmRelease's namespace), *not* the target namespace.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smokegate.kube.client import KubeClient

SECRET_TYPE = "helm.sh/release.v1"
SECRET_PREFIX = "sh.helm.release.v1."
MAX_RELEASE_NAME = 53
"""Helm's limit; Flux shortens longer derived names (``internal/release/name.go``)."""
GZIP_MAGIC = b"\x1f\x8b\x08"


class ReleaseDecodeError(ValueError):
    """A release Secret whose payload is not what Helm writes."""


# --- which release -----------------------------------------------------------------------------


def shorten_name(name: str) -> str:
    """Flux's ``ShortenName``: names over 53 characters become the first 40, ``-`` and the first
    12 hex digits of the full name's SHA-256 (still unique, and within Helm's limit)."""
    if len(name) <= MAX_RELEASE_NAME:
        return name
    return f"{name[:40]}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"


@dataclass(frozen=True, slots=True)
class ReleaseRef:
    """Where a HelmRelease's Helm release is: its name, the namespace its objects go to and the
    namespace its release Secrets are stored in."""

    name: str
    namespace: str
    """Target namespace: where Helm applies the objects (the release's namespace)."""
    storage_namespace: str
    """Where the ``sh.helm.release.v1.*`` Secrets are."""
    helmrelease: str | None = None
    """The Flux HelmRelease object's name, when there is one."""
    helmrelease_namespace: str | None = None

    def secret_name(self, version: int) -> str:
        return f"{SECRET_PREFIX}{self.name}.v{version}"


def release_ref(hr: Mapping[str, Any]) -> ReleaseRef:
    """The Helm release a Flux ``HelmRelease`` object manages (``GetReleaseName`` +
    ``ShortenName``, ``GetTargetNamespace``, ``GetStorageNamespace``)."""
    meta = hr.get("metadata") or {}
    spec = hr.get("spec") or {}
    name = str(meta.get("name") or "")
    own_ns = str(meta.get("namespace") or "default")
    target = spec.get("targetNamespace") or None
    release = spec.get("releaseName") or (f"{target}-{name}" if target else name)
    return ReleaseRef(
        name=shorten_name(release),
        namespace=target or own_ns,
        storage_namespace=spec.get("storageNamespace") or own_ns,
        helmrelease=name,
        helmrelease_namespace=own_ns,
    )


# --- what Helm stored --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HelmHook:
    """One hook of a release (``helm.sh/hook`` objects are kept out of ``manifest``)."""

    name: str
    kind: str
    path: str
    manifest: str
    events: tuple[str, ...]
    weight: int = 0
    delete_policies: tuple[str, ...] = ()
    last_run: Mapping[str, Any] = field(default_factory=dict)
    """``{started_at, completed_at, phase}`` of the last run (empty if never run)."""

    @property
    def is_test(self) -> bool:
        # Helm 2 called it "test-success"; Helm 3/4 write "test".
        return any(e in ("test", "test-success") for e in self.events)


@dataclass(frozen=True, slots=True)
class ChartMetadata:
    name: str
    version: str
    app_version: str | None = None
    description: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    """Every field of ``Chart.yaml`` as Helm stored it."""


@dataclass(frozen=True, slots=True)
class HelmReleaseRecord:
    """One revision of a Helm release, as decoded from its release Secret."""

    name: str
    namespace: str
    version: int
    status: str
    chart: ChartMetadata
    manifest: str
    """The rendered objects Helm applied, ``---``-separated YAML."""
    hooks: tuple[HelmHook, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    """The user-supplied values of this revision."""
    info: Mapping[str, Any] = field(default_factory=dict)
    """``info`` as stored: status, description, first/last deployed, notes."""
    secret: str | None = None
    """``namespace/name`` of the Secret this came from."""

    @property
    def test_hooks(self) -> tuple[HelmHook, ...]:
        return tuple(h for h in self.hooks if h.is_test)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, secret: str | None = None) -> HelmReleaseRecord:
        info = data.get("info") or {}
        chart_meta = (data.get("chart") or {}).get("metadata") or {}
        hooks = tuple(
            HelmHook(
                name=str(h.get("name") or ""),
                kind=str(h.get("kind") or ""),
                path=str(h.get("path") or ""),
                manifest=str(h.get("manifest") or ""),
                events=tuple(h.get("events") or ()),
                weight=int(h.get("weight") or 0),
                delete_policies=tuple(h.get("delete_policies") or ()),
                last_run=dict(h.get("last_run") or {}),
            )
            for h in data.get("hooks") or ()
            if isinstance(h, Mapping)
        )
        return cls(
            name=str(data.get("name") or ""),
            namespace=str(data.get("namespace") or ""),
            version=int(data.get("version") or 0),
            status=str(info.get("status") or "unknown"),
            chart=ChartMetadata(
                name=str(chart_meta.get("name") or ""),
                version=str(chart_meta.get("version") or ""),
                app_version=chart_meta.get("appVersion"),
                description=chart_meta.get("description"),
                raw=dict(chart_meta),
            ),
            manifest=str(data.get("manifest") or ""),
            hooks=hooks,
            config=dict(data.get("config") or {}),
            info=dict(info),
            secret=secret,
        )

    @classmethod
    def from_secret(cls, secret: Mapping[str, Any]) -> HelmReleaseRecord:
        """Decode a release Secret as the API returns it (``data`` base64-encoded)."""
        meta = secret.get("metadata") or {}
        where = f"{meta.get('namespace', '?')}/{meta.get('name', '?')}"
        raw = (secret.get("data") or {}).get("release")
        if not raw:
            raise ReleaseDecodeError(f"Secret {where} has no data.release: not a Helm release")
        try:
            payload = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise ReleaseDecodeError(f"Secret {where}: data.release is not base64") from None
        try:
            return cls.from_json(decode_release(payload), secret=where)
        except ReleaseDecodeError as exc:
            raise ReleaseDecodeError(f"Secret {where}: {exc}") from None


def decode_release(payload: str | bytes) -> dict[str, Any]:
    """Helm's stored form (``base64(gzip(json))``, or ``base64(json)`` for releases written
    before Helm compressed them) -> the release JSON."""
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ReleaseDecodeError("release payload is not base64") from None
    if data[:3] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ReleaseDecodeError(f"release payload is not valid gzip: {exc}") from None
    try:
        decoded = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReleaseDecodeError(f"release payload is not JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise ReleaseDecodeError("release payload is not a JSON object")
    return decoded


def encode_release(release: Mapping[str, Any], *, compress: bool = True) -> str:
    """The inverse of ``decode_release`` (what Helm puts in ``data.release``, before the Secret
    API's own base64); ``compress=False`` writes the pre-gzip form of older Helm versions."""
    data = json.dumps(release).encode()
    if compress:
        data = gzip.compress(data)
    return base64.b64encode(data).decode()


def _version(secret: Mapping[str, Any]) -> int:
    labels = (secret.get("metadata") or {}).get("labels") or {}
    try:
        return int(labels.get("version", ""))
    except ValueError:
        # No usable label: the name ends in .v<N>.
        name = str((secret.get("metadata") or {}).get("name") or "")
        tail = name.rpartition(".v")[2]
        return int(tail) if tail.isdigit() else -1


def pick_latest(
    secrets: Iterable[Mapping[str, Any]], release: str, status: str | None = "deployed"
) -> Mapping[str, Any] | None:
    """The newest release Secret of ``release`` (with label ``status`` when given)."""
    candidates = []
    for s in secrets:
        meta = s.get("metadata") or {}
        labels = meta.get("labels") or {}
        if labels.get("owner", "helm") != "helm" or labels.get("name", release) != release:
            continue
        if not str(meta.get("name") or "").startswith(f"{SECRET_PREFIX}{release}.v"):
            continue
        if status is not None and labels.get("status") != status:
            continue
        candidates.append(s)
    return max(candidates, key=_version, default=None)


async def fetch_release(
    client: KubeClient, release: str, namespace: str, *, status: str | None = "deployed"
) -> HelmReleaseRecord | None:
    """The newest revision of ``release`` with ``status`` (``None``: any) from the release
    Secrets in ``namespace`` (the storage namespace), or None when there is none.

    Needs ``list`` on Secrets in that namespace; raises ``KubeError`` (e.g. forbidden) and
    ``ReleaseDecodeError``."""
    from smokegate.kube.client import SECRET

    secrets = await client.list(SECRET, namespace, {"owner": "helm", "name": release})
    chosen = pick_latest(secrets, release, status)
    return None if chosen is None else HelmReleaseRecord.from_secret(chosen)
