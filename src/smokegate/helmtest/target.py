"""Which release to test, and what Helm stored about it.

``RELEASE`` (a name without ``/``) is a Helm release in ``-n`` (Helm keeps its release Secrets
in the release's own namespace). Every other form names a Flux HelmRelease the way the other
commands do (``smokegate.flux.helmrelease.parse_target``): ``hr/NAME`` (also
``helmrelease/NAME``) in ``-n``, ``NS/NAME`` or ``hr/NS/NAME`` in ``NS``. Its Helm release name,
storage namespace and target namespace are resolved as helm-controller does
(``smokegate.helm.release.release_ref``), so the chart's tests run where Flux installed them.

Decoding is ``smokegate.helm.release``'s; this module keeps, besides the decoded record, the
Secret's identity (uid, resourceVersion), which the run uses as the owner of the objects it
creates and ``record.py`` needs to update the record safely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from smokegate.core.errors import ClusterError, SmokegateError, UsageError
from smokegate.flux.helmrelease import parse_target
from smokegate.helm.release import HelmReleaseRecord, ReleaseDecodeError, pick_latest, release_ref
from smokegate.kube.client import HELMRELEASE, SECRET, KubeClient, KubeError


class HelmTestError(SmokegateError):
    """The release or its tests cannot be found as asked: nothing ran (exit 2)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Target:
    """What the user named, resolved to a Helm release."""

    text: str
    release: str
    namespace: str
    """The release namespace: where its objects (and test hooks) are created."""
    storage_namespace: str
    """Where its ``sh.helm.release.v1.*`` Secrets are."""
    helmrelease: Mapping[str, Any] | None = None
    """The Flux HelmRelease object, for HelmRelease targets (``hr/NAME``, ``NS/NAME``)."""

    @property
    def describe(self) -> str:
        """``helm release web/myapp`` (storage namespace: where Helm's record is)."""
        return f"helm release {self.storage_namespace}/{self.release}"

    @property
    def flux_test_hooks(self) -> dict[str, Any]:
        """Flux's last test results for the latest release (``status.history[0].testHooks``)."""
        history = ((self.helmrelease or {}).get("status") or {}).get("history") or []
        latest = history[0] if history and isinstance(history[0], Mapping) else {}
        hooks = latest.get("testHooks") or {}
        return dict(hooks) if isinstance(hooks, Mapping) else {}

    @property
    def flux_filters(self) -> list[Mapping[str, Any]]:
        """``spec.test.filters`` of the HelmRelease (Flux runs only the tests these keep)."""
        test = ((self.helmrelease or {}).get("spec") or {}).get("test") or {}
        filters = test.get("filters") or []
        return [f for f in filters if isinstance(f, Mapping) and f.get("name")]


@dataclass(frozen=True, slots=True)
class LoadedRelease:
    """The latest deployed revision of a release, and the Secret it came from."""

    target: Target
    record: HelmReleaseRecord
    secret_name: str
    secret_uid: str
    secret_resource_version: str
    raw_secret: Mapping[str, Any] = field(repr=False, default_factory=dict)

    @property
    def describe(self) -> str:
        """``helm release web/myapp v3``."""
        return f"{self.target.describe} v{self.record.version}"

    @property
    def chart(self) -> str:
        c = self.record.chart
        return f"{c.name}-{c.version}" if c.version else c.name


def split_target(text: str, namespace: str | None = None) -> tuple[bool, str | None, str]:
    """(is a Flux HelmRelease, its namespace or None for the default, name).

    ``RELEASE`` (no ``/``) is a Helm release; ``hr/NAME``, ``helmrelease/NAME``, ``NS/NAME`` and
    ``hr/NS/NAME`` are HelmReleases, parsed by ``parse_target``: ``namespace`` is ``-n``, which
    a namespace in the target must agree with."""
    stripped = text.strip()
    if stripped and "/" not in stripped:
        return False, namespace, stripped
    try:
        parse_target(stripped, None)
    except UsageError:
        raise HelmTestError(
            f"{text!r}: name a Helm release (RELEASE -n NAMESPACE) or a Flux HelmRelease "
            "(hr/NAME -n NAMESPACE, or NAMESPACE/NAME)"
        ) from None
    try:
        ns, name = parse_target(stripped, namespace)
    except UsageError as exc:  # the target's namespace is not -n's
        raise HelmTestError(str(exc)) from None
    return True, ns, name


async def resolve_target(
    kube: KubeClient, text: str, namespace: str, *, namespace_flag: str | None = None
) -> Target:
    """``RELEASE``, ``hr/NAME``, ``NS/NAME`` or ``hr/NS/NAME`` -> the Helm release to test.
    ``namespace``: where a target without one is; ``namespace_flag``: the user's ``-n``, when
    given (a namespace in the target must agree with it)."""
    is_hr, ns, name = split_target(text, namespace_flag)
    ns = ns or namespace
    if not is_hr:
        return Target(text, name, ns, ns)
    try:
        hr = await kube.get_or_none(HELMRELEASE, name, ns)
    except KubeError as exc:
        raise ClusterError(str(exc)) from None
    if hr is None:
        raise HelmTestError(f"helmrelease {ns}/{name}: not found")
    return target_from_helmrelease(hr, text)


def target_from_helmrelease(hr: Mapping[str, Any], text: str | None = None) -> Target:
    """The Helm release a Flux HelmRelease object manages, as helm-controller resolves it."""
    ref = release_ref(hr)
    return Target(
        text or f"hr/{ref.helmrelease}",
        ref.name,
        ref.namespace,
        ref.storage_namespace,
        helmrelease=hr,
    )


async def load_release(kube: KubeClient, target: Target) -> LoadedRelease:
    """The latest ``deployed`` revision of ``target``, or a ``HelmTestError`` that says what
    is there instead (``helm release web/myapp: no deployed revision found (v3 failed)``)."""
    ns = target.storage_namespace
    try:
        secrets = await kube.list(SECRET, ns, {"owner": "helm", "name": target.release})
    except KubeError as exc:
        hint = " (helm-test reads Helm's release Secrets: it needs list on secrets there)"
        raise ClusterError(f"{target.describe}: {exc}{hint if exc.forbidden else ''}") from None
    chosen = pick_latest(secrets, target.release)
    if chosen is None:
        others = pick_all(secrets, target.release)
        if not others:
            hint = ""
            if target.helmrelease is not None:
                hint = " (has Flux installed it yet?)"
            raise HelmTestError(f"{target.describe}: not found{hint}")
        states = ", ".join(f"v{v} {s}" for v, s in others)
        raise HelmTestError(f"{target.describe}: no deployed revision found ({states})")
    try:
        record = HelmReleaseRecord.from_secret(chosen)
    except ReleaseDecodeError as exc:
        raise HelmTestError(f"{target.describe}: {exc}") from None
    meta = chosen.get("metadata") or {}
    if record.namespace and record.namespace != target.namespace:
        # Helm created the release's objects in the namespace its record names: so do we.
        target = Target(
            target.text, target.release, record.namespace, ns, helmrelease=target.helmrelease
        )
    return LoadedRelease(
        target=target,
        record=record,
        secret_name=str(meta.get("name") or ""),
        secret_uid=str(meta.get("uid") or ""),
        secret_resource_version=str(meta.get("resourceVersion") or ""),
        raw_secret=chosen,
    )


def pick_all(secrets: list[dict[str, Any]], release: str) -> list[tuple[int, str]]:
    """(version, status) of every revision of ``release``, newest first."""
    out = []
    for s in secrets:
        labels = (s.get("metadata") or {}).get("labels") or {}
        if labels.get("name") != release:
            continue
        try:
            version = int(labels.get("version", ""))
        except ValueError:
            continue
        out.append((version, str(labels.get("status") or "unknown")))
    return sorted(out, reverse=True)
