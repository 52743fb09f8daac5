"""Discovery's entry points: what ``smokegate discover``, ``run --discover``, ``gate --discover``
and ``smokegate serve`` (``discover: true``) call.

``discover_suite(DiscoverRequest)`` (connects when needed) and
``discover_from_helmrelease(client, hr)`` (for the gate and the server, which already have both)
return a ``Discovery``; ``discovered_suite_text`` renders it; ``merge_discovered`` puts it next
to parsed user suites (in memory), dropping discovered checks whose names a user suite already
uses.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smokegate.core.errors import UsageError

if TYPE_CHECKING:
    # Imported where used: a request is built before anything is discovered, and
    # ``DiscoverRequest``'s module is imported by every front end that offers --discover.
    from smokegate.discover.build import BuildOptions, Discovery, Via
    from smokegate.discover.source import Found
    from smokegate.suite.parse import RawSuite


@dataclass(frozen=True, slots=True)
class DiscoverRequest:
    """What to discover from: a HelmRelease ``target``, a label ``selector`` in the namespace,
    or manifest ``files`` (``-`` for stdin; no cluster needed). ``selector`` also filters
    ``files``."""

    target: str | None = None
    selector: str | None = None
    files: Sequence[str] = ()
    kube: Any = None
    """``smokegate.kube.client.KubeOptions`` (kubeconfig, context, namespace)."""
    via: Via = "services"
    cluster_domain: str = "cluster.local"
    resolve: Sequence[str] = ()
    command: str | None = None
    """The command line to print in the suite's header (how to regenerate it)."""
    stdin_text: str | None = None
    build: BuildOptions = field(default_factory=lambda: _build_options())


# --- library entry points -----------------------------------------------------------------------


def _build_options() -> BuildOptions:
    from smokegate.discover.build import BuildOptions

    return BuildOptions()


def discover_suite(request: DiscoverRequest) -> Discovery:
    """Discover checks as ``request`` says; raises ``UsageError``/``ClusterError``/
    ``NothingFound`` (a ``SmokegateError``, exit 2)."""
    namespace = request.kube.namespace if request.kube is not None else None
    if request.files:
        if request.target:
            raise UsageError("give a HelmRelease or -f manifests, not both")
        found = _from_files(request, namespace or "default")
        return _finish(found, request, pods=None, suite_name="discovered", strict=True)
    if not request.target and not request.selector:
        raise UsageError("say what to discover: helmrelease/NAME, --selector LABELS or -f FILE")
    if request.target and request.selector:
        raise UsageError("give a HelmRelease or --selector, not both")
    from smokegate.core.loop import run_async
    from smokegate.kube.client import KubeClient, KubeOptions

    options = request.kube or KubeOptions()
    client = KubeClient.from_options(options)

    async def go() -> Discovery:
        try:
            return await _discover_live(client, request)
        finally:
            await client.close()

    return run_async(go())


async def discover_from_helmrelease(
    client: Any, hr: dict[str, Any], request: DiscoverRequest | None = None
) -> Discovery:
    """For ``gate --discover``: discovery for a HelmRelease object already read (after the gate
    has waited for it, so the release Secret is the new revision's)."""
    from smokegate.discover.source import from_release_ref
    from smokegate.helm.release import release_ref

    request = request or DiscoverRequest()
    found = await from_release_ref(client, release_ref(hr))
    return await _finish_live(client, found, request)


async def _discover_live(client: Any, request: DiscoverRequest) -> Discovery:
    from smokegate.discover.selector import parse_selector
    from smokegate.discover.source import from_helmrelease, from_selector
    from smokegate.flux.helmrelease import parse_target

    if request.target:
        ns, name = parse_target(request.target, request.kube.namespace if request.kube else None)
        found = await from_helmrelease(client, name, ns or client.namespace)
    else:
        assert request.selector is not None
        found = await from_selector(client, client.namespace, parse_selector(request.selector))
    return await _finish_live(client, found, request)


async def _finish_live(client: Any, found: Found, request: DiscoverRequest) -> Discovery:
    from smokegate.discover.source import pod_addresses

    pods = None
    if request.via == "pods":
        from smokegate.discover.objects import collect

        pods = await pod_addresses(client, collect(found.raw, found.namespace).workloads)
    name = f"discovered-{found.release.name}" if found.release else "discovered"
    return _finish(found, request, pods=pods, suite_name=name)


def _from_files(request: DiscoverRequest, namespace: str) -> Found:
    """The objects of ``request.files``, each file read and parsed on its own (so a problem
    names its file and line or document), filtered by ``request.selector``."""
    from smokegate.discover.manifests import load_manifests
    from smokegate.discover.objects import WORKLOAD_KINDS
    from smokegate.discover.selector import parse_selector
    from smokegate.discover.source import Found

    selector = parse_selector(request.selector) if request.selector else None
    raw: list[dict[str, Any]] = []
    for f in request.files:
        raw.extend(load_manifests(_read(f, request.stdin_text), "stdin" if f == "-" else f))
    source = ", ".join("stdin" if f == "-" else f for f in request.files)
    if selector is not None:
        used = (*WORKLOAD_KINDS, "Service", "Ingress")

        def keep(obj: dict[str, Any]) -> bool:
            meta = obj.get("metadata")
            labels = meta.get("labels") if isinstance(meta, dict) else None
            if (meta is None or isinstance(meta, dict)) and (
                labels is None or isinstance(labels, dict)
            ):
                return selector.matches({str(k): str(v) for k, v in (labels or {}).items()})
            # Labels that cannot be read: keep the objects discovery uses (reading them says
            # what is wrong), drop the rest.
            return obj.get("kind") in used

        raw = [o for o in raw if keep(o)]
        source = f"{source} (objects matching {selector.text})"
    return Found(raw, namespace, source)


def _finish(
    found: Found, request: DiscoverRequest, *, pods: Any, suite_name: str, strict: bool = False
) -> Discovery:
    """``strict`` (manifests from files): an object that cannot be read is an error (exit 2),
    not a line under "not checked"."""
    from dataclasses import replace

    from smokegate.discover.build import Discovery, build_checks
    from smokegate.discover.objects import collect

    objects = collect(found.raw, found.namespace)
    if strict and objects.errors:
        errors = [str(e) for e in objects.errors]
        head = "cannot derive checks from these manifests"
        if len(errors) == 1:
            raise UsageError(f"{head}: {errors[0]}")
        raise UsageError(f"{head} ({len(errors)} problems):\n  " + "\n  ".join(errors))
    options = replace(
        request.build,
        via=request.via,
        cluster_domain=request.cluster_domain,
        resolve=tuple(request.resolve),
        pods=pods,
    )
    checks, not_checked = build_checks(objects, options)
    return Discovery(
        checks,
        not_checked,
        found.source,
        found.namespace,
        suite_name=suite_name,
        release=found.release,
        record=found.record,
        notes=found.notes,
        command=request.command,
    )


def _read(path: str, stdin_text: str | None) -> str:
    """The text of ``-f path`` (``-``: stdin). Unreadable files and bytes that are not UTF-8
    are ``UsageError``s saying where."""
    if path == "-":
        if stdin_text is not None:
            return stdin_text
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
        return _decode(data, "stdin") if isinstance(data, bytes) else data
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"-f {path}: cannot read: {exc.strerror or exc}") from None
    return _decode(data, path)


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UsageError(
            f"{name}:{line}:{column}: not UTF-8 text (byte 0x{data[exc.start]:02x}); manifests "
            "must be UTF-8 YAML"
        ) from None


def discovered_suite_text(discovery: Discovery) -> str:
    """The discovered suite as commented YAML (what ``smokegate discover`` prints)."""
    return discovery.yaml()


def merge_discovered(suites: Sequence[RawSuite], discovery: Discovery) -> list[RawSuite]:
    """``suites`` (parsed) plus the discovered suite, built in memory (no file, parsed by
    nobody), without the discovered checks whose names a suite in ``suites`` already has (the
    user's check wins). Its file name, as problems and reports show it, is
    ``<discovered-NAME>``."""
    from smokegate.suite.parse import suite_from_data

    taken: set[str] = set()
    for raw in suites:
        for entry in raw.doc.data["spec"].get("checks") or ():
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                taken.add(entry["name"])
    kept = suite_from_data(discovery.without(taken).suite(), f"<{discovery.suite_name}>")
    clash = next((raw for raw in suites if raw.name == kept.name), None)
    if clash is not None:
        from smokegate.core.errors import SuiteError

        problem = clash.doc.problem(
            ("metadata", "name"), f"duplicate suite name {kept.name!r} (also the discovered suite)"
        )
        raise SuiteError([problem])
    return [*suites, kept]
