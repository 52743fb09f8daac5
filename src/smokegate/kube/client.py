"""A small dict-based async Kubernetes client, and the kube package's face: the configuration
(``kube.config``: ``KubeOptions``, ``load_config``), the kinds (``kube.resources``) and
``KubeError`` (``kube.errors``) are importable from here too.

``KubeClient`` wraps lightkube's ``AsyncClient`` but speaks plain dicts for every kind (built-in
or custom), so checks, readiness rules and the gate share one shape, and every API failure
becomes a ``KubeError`` whose message names the resource and says why (``secret apps/db:
forbidden: User "…" cannot get resource "secrets" …``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from smokegate.kube.config import (
    DEFAULT_KUBECONFIG,
    SERVICE_ACCOUNT_DIR,
    KubeOptions,
    effective_namespace,
    load_config,
)
from smokegate.kube.errors import KubeError, api_error
from smokegate.kube.resources import (
    BUILTIN,
    EVENT,
    HELMRELEASE,
    JOB,
    POD,
    SECRET,
    ResourceType,
)

__all__ = [
    "BUILTIN",
    "DEFAULT_KUBECONFIG",
    "EVENT",
    "HELMRELEASE",
    "JOB",
    "POD",
    "SECRET",
    "SERVICE_ACCOUNT_DIR",
    "KubeClient",
    "KubeError",
    "KubeOptions",
    "ResourceType",
    "api_error",
    "effective_namespace",
    "load_config",
]

if TYPE_CHECKING:
    from lightkube import AsyncClient
    from lightkube.config.kubeconfig import SingleConfig

FIELD_MANAGER = "smokegate"


Labels = Mapping[str, Any] | Sequence[tuple[str, Any]]
"""A label selector as lightkube takes it: ``{"key": "value" | operator}`` or the same as
``[(key, value | operator), ...]`` (``operators.exists()``, ``operators.in_([...])`` …)."""


# --- client ---------------------------------------------------------------------------------


class KubeClient:
    """One connection to one cluster, for one event loop (httpx clients are loop-bound).

    Objects go in and come out as plain dicts. ``namespace`` is the default for namespaced
    calls made without one.
    """

    def __init__(self, config: SingleConfig, namespace: str, *, timeout: float = 15.0) -> None:
        self.config = config
        self.namespace = namespace
        self.server = config.cluster.server
        self._timeout = timeout
        self._api: AsyncClient | None = None
        self._classes: dict[ResourceType, Any] = {}
        self._discovered: dict[str, dict[str, ResourceType]] = {}
        self._http: Any = None

    @classmethod
    def from_options(cls, options: KubeOptions) -> KubeClient:
        config = load_config(options)
        return cls(config, effective_namespace(config, options))

    @property
    def api(self) -> AsyncClient:
        if self._api is None:
            import httpx2
            from lightkube import AsyncClient

            self._api = AsyncClient(
                self.config,
                namespace=self.namespace,
                timeout=httpx2.Timeout(self._timeout),
                field_manager=FIELD_MANAGER,
            )
        return self._api

    def _discovery_http(self) -> Any:
        # lightkube has no discovery call: a plain HTTP client built by lightkube's own adapter
        # from the same config (same server, auth and TLS), only when a kind needs discovery.
        if self._http is None:
            import httpx2
            from lightkube.config.client_adapter import AsyncClient, ConnectionParams

            self._http = AsyncClient(
                self.config, ConnectionParams(timeout=httpx2.Timeout(self._timeout))
            )
        return self._http

    async def close(self) -> None:
        if self._api is not None:
            api, self._api = self._api, None
            await api.close()
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    # --- kinds ----------------------------------------------------------------------------------

    async def resolve(self, api_version: str | None, kind: str) -> ResourceType:
        """The ``ResourceType`` of ``kind`` (in ``api_version``; optional for built-in kinds)."""
        known = BUILTIN.get(kind.lower())
        if known is not None and (api_version is None or api_version == known.api_version):
            return known
        if api_version is None:
            raise KubeError(
                f"kind {kind!r} is not one smokegate knows by heart: give its apiVersion "
                "(e.g. apiVersion: example.com/v1)"
            )
        kinds = await self._discover(api_version)
        found = kinds.get(kind.lower())
        if found is None:
            raise KubeError(
                f"{api_version} has no kind {kind!r} on this cluster "
                f"(it serves: {', '.join(sorted(r.kind for r in kinds.values())) or 'nothing'})",
                code=404,
            )
        return found

    async def _discover(self, api_version: str) -> dict[str, ResourceType]:
        if api_version in self._discovered:
            return self._discovered[api_version]
        group, _, version = api_version.rpartition("/")
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        http = self._discovery_http()
        try:
            resp = await http.get(path)
        except Exception as exc:
            raise api_error(exc, f"API group {api_version}") from None
        if resp.status_code == 404:
            raise KubeError(f"API group {api_version}: not served by this cluster", code=404)
        if resp.status_code >= 400:
            raise KubeError(
                f"API group {api_version}: HTTP {resp.status_code}", code=resp.status_code
            )
        kinds: dict[str, ResourceType] = {}
        for res in resp.json().get("resources", []):
            if "/" in res.get("name", ""):  # subresources such as deployments/status
                continue
            kinds.setdefault(
                res["kind"].lower(),
                ResourceType(group, version, res["kind"], res["name"], bool(res.get("namespaced"))),
            )
        self._discovered[api_version] = kinds
        return kinds

    def _class(self, rt: ResourceType) -> Any:
        """A lightkube generic resource class for ``rt``.

        Built here rather than with ``create_namespaced_resource`` because that registers the
        class in lightkube's process-wide registry, which rejects a second class for a core kind
        and would hand typed (non-dict) models back if anything else loaded them.
        """
        cls = self._classes.get(rt)
        if cls is None:
            from lightkube.core.resource import ApiInfo, ResourceDef
            from lightkube.generic_resource import GenericGlobalResource, GenericNamespacedResource

            base = GenericNamespacedResource if rt.namespaced else GenericGlobalResource
            info = ApiInfo(
                resource=ResourceDef(rt.group, rt.version, rt.kind),
                plural=rt.plural,
                verbs=["get", "list", "watch", "post", "patch", "delete", "put"],
            )
            cls = type(rt.kind, (base,), {"_api_info": info})
            self._classes[rt] = cls
        return cls

    def _ns(self, rt: ResourceType, namespace: str | None) -> str | None:
        return (namespace or self.namespace) if rt.namespaced else None

    # --- verbs ----------------------------------------------------------------------------------

    async def get(
        self, rt: ResourceType, name: str, namespace: str | None = None
    ) -> dict[str, Any]:
        ns = self._ns(rt, namespace)
        try:
            obj = await self.api.get(self._class(rt), name, namespace=ns)
        except Exception as exc:
            raise api_error(exc, rt.describe(name, ns)) from None
        return _plain(obj)

    async def get_or_none(
        self, rt: ResourceType, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        try:
            return await self.get(rt, name, namespace)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise

    async def create(
        self, rt: ResourceType, obj: Mapping[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        meta = dict(obj.get("metadata") or {})
        ns = self._ns(rt, namespace or meta.get("namespace"))
        if ns:
            meta["namespace"] = ns  # lightkube takes a new object's namespace from its metadata
        body = self._class(rt)(
            {**obj, "apiVersion": rt.api_version, "kind": rt.kind, "metadata": meta}
        )
        name = meta.get("name") or meta.get("generateName")
        try:
            created = await self.api.create(body)
        except Exception as exc:
            raise api_error(exc, f"creating {rt.describe(name or '?', ns)}") from None
        return _plain(created)

    async def watch(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        server_timeout: int | None = None,
    ) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        """Events (``ADDED``/``MODIFIED``/``DELETED``, object) for one object, from
        ``resource_version`` on. When the server ends a stream (after ``server_timeout``)
        lightkube resumes from the last version seen; any error is raised as ``KubeError``
        (a 410 Gone included: the caller re-reads the object and watches again)."""
        ns = self._ns(rt, namespace)
        stream: Any = self.api.watch(
            self._class(rt),
            namespace=ns,
            fields={"metadata.name": name},
            resource_version=resource_version,
            server_timeout=server_timeout,
            on_error=_stop_on_close,
        )
        try:
            async with contextlib.aclosing(stream):
                async for kind, obj in stream:
                    yield kind, _plain(obj)
        except Exception as exc:
            raise api_error(exc, f"watching {rt.describe(name, ns)}") from None

    async def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        labels: Labels | None = None,
        *,
        fields: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Every ``rt`` in ``namespace`` (cluster-wide for cluster-scoped kinds) matching
        ``labels`` (and the field selector ``fields``, e.g. ``{"involvedObject.name": "x"}``).
        Items come as the API lists them: without ``kind``/``apiVersion``."""
        ns = self._ns(rt, namespace)
        where = f"{rt.plural} in namespace {ns}" if ns else rt.plural
        selector = _selector(labels)
        try:
            return [
                _plain(obj)
                async for obj in self.api.list(
                    self._class(rt),
                    namespace=ns,
                    labels=selector,
                    fields=dict(fields or {}) or None,
                )
            ]
        except Exception as exc:
            raise api_error(exc, f"listing {where}") from None

    async def delete(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None = None,
        *,
        grace_period: int | None = None,
    ) -> bool:
        """Delete one object; False if it was already gone. Dependents (a Job's pods) are left
        to the garbage collector, in the background. ``grace_period``: seconds (0: at once;
        None: the object's default)."""
        from lightkube.types import CascadeType

        ns = self._ns(rt, namespace)
        try:
            await self.api.delete(
                self._class(rt),
                name,
                namespace=ns,
                grace_period=grace_period,
                cascade=CascadeType.BACKGROUND,
            )
        except Exception as exc:
            err = api_error(exc, f"deleting {rt.describe(name, ns)}")
            if err.not_found:
                return False
            raise err from None
        return True

    async def log(
        self,
        pod: str,
        namespace: str | None = None,
        container: str | None = None,
        *,
        tail_lines: int | None = None,
    ) -> str:
        """A pod container's log (its last ``tail_lines`` lines when given). The error of a
        container without a log yet names it, with the API server's reason (``… is waiting to
        start: PodInitializing``)."""
        ns = self._ns(POD, namespace)
        what = f"log of {POD.describe(pod, ns)}" + (f" container {container}" if container else "")
        try:
            lines = [
                line
                async for line in self.api.log(
                    pod, namespace=ns, container=container, tail_lines=tail_lines
                )
            ]
        except Exception as exc:
            raise api_error(exc, what) from None
        return "".join(lines)

    async def stream_log(
        self, pod: str, namespace: str | None = None, container: str | None = None
    ) -> AsyncGenerator[str, None]:
        """A pod container's log as it is written (``follow``: no read timeout), line by line,
        from its first line; the stream ends when the container stops (or the connection
        drops: the caller re-reads the pod to tell which)."""
        ns = self._ns(POD, namespace)
        what = f"log of {POD.describe(pod, ns)}" + (f" container {container}" if container else "")
        stream: Any = self.api.log(pod, namespace=ns, container=container, follow=True)
        try:
            async with contextlib.aclosing(stream):
                async for line in stream:
                    yield line
        except Exception as exc:
            err = api_error(exc, what)
            if err.code is None:
                # lightkube cannot read the error body of a refused follow request (it reads
                # the async stream synchronously), so the status is lost: ask once without
                # follow, which answers with the API server's own reason (403, 404 …).
                await self.log(pod, namespace, container, tail_lines=1)
            raise err from None

    async def replace(
        self, rt: ResourceType, obj: Mapping[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        """PUT ``obj`` (kind and apiVersion filled in from ``rt``). Its
        ``metadata.resourceVersion``, when set, makes the API server refuse with 409 Conflict
        if the object changed since it was read, so a concurrent update is never lost."""
        meta = obj.get("metadata") or {}
        name = meta.get("name") or "?"
        ns = self._ns(rt, namespace or meta.get("namespace"))
        body = self._class(rt)({**obj, "apiVersion": rt.api_version, "kind": rt.kind})
        try:
            replaced = await self.api.replace(body, name, namespace=ns)
        except Exception as exc:
            raise api_error(exc, f"updating {rt.describe(name, ns)}") from None
        return _plain(replaced)


def _stop_on_close(exc: BaseException, count: int) -> Any:
    # Raise on every error: the caller re-lists and re-watches (it has to handle 410 Gone and
    # dropped connections the same way anyway, and it must see a 403 at once).
    from lightkube.types import OnErrorAction, OnErrorResult

    return OnErrorResult(OnErrorAction.RAISE)


def _selector(labels: Labels | None) -> Any:
    # lightkube reads a list as pairs and anything else as a mapping.
    if not labels:
        return None
    return dict(labels) if isinstance(labels, Mapping) else [tuple(pair) for pair in labels]


def _plain(obj: Any) -> dict[str, Any]:
    """A lightkube object as a plain dict (``metadata`` included)."""
    if isinstance(obj, dict):
        data = dict(obj)
        meta = data.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            data["metadata"] = meta.to_dict()
        return data
    return obj.to_dict()  # a typed lightkube model (not produced by this client, but be safe)
