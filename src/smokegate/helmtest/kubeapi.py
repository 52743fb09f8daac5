"""The few API verbs helm-test needs beyond ``smokegate.kube.client.KubeClient``.

``KubeClient`` (get, create, watch, kind discovery) speaks plain dicts; running test hooks also
needs list-by-label, delete, pod logs and an optimistic-concurrency replace. Those go through the
same lightkube ``AsyncClient`` the ``KubeClient`` wraps (same credentials, one connection pool),
with dict-based resource classes built here so nothing is registered in lightkube's process-wide
registry. Every failure is a ``KubeError`` naming the object, like the rest of smokegate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from smokegate.kube.client import BUILTIN, KubeClient, KubeError, ResourceType, api_error

POD = BUILTIN["pod"]
JOB = BUILTIN["job"]
SECRET = BUILTIN["secret"]


class Kube:
    """A ``KubeClient`` plus list/delete/log/replace, all dict in, dict out."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self._classes: dict[ResourceType, Any] = {}

    @property
    def namespace(self) -> str:
        return self.client.namespace

    # --- passthrough ------------------------------------------------------------------------------

    async def get(self, rt: ResourceType, name: str, namespace: str) -> dict[str, Any]:
        return await self.client.get(rt, name, namespace)

    async def get_or_none(
        self, rt: ResourceType, name: str, namespace: str
    ) -> dict[str, Any] | None:
        return await self.client.get_or_none(rt, name, namespace)

    async def create(
        self, rt: ResourceType, obj: Mapping[str, Any], namespace: str
    ) -> dict[str, Any]:
        return await self.client.create(rt, obj, namespace)

    async def resolve(self, api_version: str | None, kind: str) -> ResourceType:
        return await self.client.resolve(api_version, kind)

    def watch(
        self, rt: ResourceType, name: str, namespace: str, *, resource_version: str | None
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        # The server ends the stream after this many seconds; KubeClient resumes it.
        return self.client.watch(
            rt, name, namespace, resource_version=resource_version, server_timeout=240
        )

    # --- additions --------------------------------------------------------------------------------

    def _class(self, rt: ResourceType) -> Any:
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

    async def list(
        self, rt: ResourceType, namespace: str, labels: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Objects of ``rt`` in ``namespace`` matching ``labels`` (lightkube selector syntax:
        ``{"key": "value"}`` or ``{"key": operators.exists()}``)."""
        try:
            return [
                _plain(obj)
                async for obj in self.client.api.list(
                    self._class(rt), namespace=namespace, labels=dict(labels) if labels else None
                )
            ]
        except Exception as exc:
            raise api_error(exc, f"listing {rt.plural} in namespace {namespace}") from None

    async def delete(
        self, rt: ResourceType, name: str, namespace: str, *, grace_period: int | None = 0
    ) -> bool:
        """Delete now; False if it was already gone. Dependents (a Job's pods) are left to the
        garbage collector in the background, and callers delete them by label as well."""
        from lightkube.types import CascadeType

        try:
            await self.client.api.delete(
                self._class(rt),
                name,
                namespace=namespace,
                grace_period=grace_period,
                cascade=CascadeType.BACKGROUND,
            )
        except Exception as exc:
            err = api_error(exc, f"deleting {rt.describe(name, namespace)}")
            if err.not_found:
                return False
            raise err from None
        return True

    async def log(self, pod: str, namespace: str, container: str, *, tail_lines: int) -> str:
        """A container's log (its last ``tail_lines`` lines). Raises ``KubeError`` whose message
        is the API server's own words (e.g. ``container "test" in pod "x" is waiting to start:
        PodInitializing``)."""
        from lightkube import ApiError

        try:
            lines = [
                line
                async for line in self.client.api.log(
                    pod, namespace=namespace, container=container, tail_lines=tail_lines
                )
            ]
        except ApiError as exc:
            message = (getattr(exc.status, "message", None) or "").strip()
            code = getattr(exc.status, "code", None) or exc.response.status_code
            raise KubeError(message or f"HTTP {code}", code=code) from None
        except Exception as exc:
            raise api_error(exc, f"log of pod {namespace}/{pod} container {container}") from None
        return "".join(lines)

    async def replace(self, rt: ResourceType, obj: Mapping[str, Any]) -> dict[str, Any]:
        """PUT ``obj``; its ``metadata.resourceVersion`` makes the API server refuse (409) if the
        object changed since it was read, so a concurrent writer's update is never lost."""
        meta = obj.get("metadata") or {}
        name, namespace = meta.get("name", "?"), meta.get("namespace") or self.namespace
        body = self._class(rt)({"apiVersion": rt.api_version, "kind": rt.kind, **obj})
        try:
            out = await self.client.api.replace(body, name, namespace=namespace)
        except Exception as exc:
            raise api_error(exc, f"updating {rt.describe(name, namespace)}") from None
        return _plain(out)


def _plain(obj: Any) -> dict[str, Any]:
    data = dict(obj)
    meta = data.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        data["metadata"] = meta.to_dict()
    return data
