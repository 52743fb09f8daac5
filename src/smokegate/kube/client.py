"""Connecting to Kubernetes the way kubectl does, and a small dict-based async client.

Configuration (``load_config``), in kubectl's order:

1. ``--kubeconfig FILE``;
2. ``$KUBECONFIG`` (a ``:``-separated list, merged like kubectl: the first file to define a
   cluster/context/user or ``current-context`` wins; missing files are skipped);
3. ``~/.kube/config``;
4. in-cluster: the pod's service account (token, CA, namespace), when running in a pod.

``--context`` picks a context; the namespace is ``-n`` or else the context's (or the service
account's) namespace, else ``default``.

``KubeClient`` wraps lightkube's ``AsyncClient`` but speaks plain dicts for every kind (built-in
or custom), so checks, readiness rules and the gate share one shape, and every API failure
becomes a ``KubeError`` whose message names the resource and says why (``secret apps/db:
forbidden: User "…" cannot get resource "secrets" …``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smokegate.errors import UsageError

if TYPE_CHECKING:
    from lightkube import AsyncClient
    from lightkube.config.kubeconfig import SingleConfig

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_KUBECONFIG = "~/.kube/config"
FIELD_MANAGER = "smokegate"


@dataclass(frozen=True, slots=True)
class KubeOptions:
    """What the user said about the cluster: ``--kubeconfig``, ``--context``, ``-n``."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceType:
    """Where a kind lives in the API: enough to build its URLs."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def describe(self, name: str, namespace: str | None) -> str:
        """``deployment apps/api``: how errors and evidence name one object."""
        where = f"{namespace}/{name}" if self.namespaced and namespace else name
        return f"{self.kind.lower()} {where}"


def _rt(api_version: str, kind: str, plural: str, namespaced: bool = True) -> ResourceType:
    group, _, version = api_version.rpartition("/")
    return ResourceType(group, version, kind, plural, namespaced)


# Kinds suites use most, so the common case needs no discovery request (and no permission on
# discovery endpoints beyond the defaults). Anything else is found through API discovery.
BUILTIN: dict[str, ResourceType] = {
    rt.kind.lower(): rt
    for rt in (
        _rt("apps/v1", "Deployment", "deployments"),
        _rt("apps/v1", "StatefulSet", "statefulsets"),
        _rt("apps/v1", "DaemonSet", "daemonsets"),
        _rt("apps/v1", "ReplicaSet", "replicasets"),
        _rt("batch/v1", "Job", "jobs"),
        _rt("batch/v1", "CronJob", "cronjobs"),
        _rt("v1", "Pod", "pods"),
        _rt("v1", "Service", "services"),
        _rt("v1", "ConfigMap", "configmaps"),
        _rt("v1", "Secret", "secrets"),
        _rt("v1", "ServiceAccount", "serviceaccounts"),
        _rt("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        _rt("v1", "Endpoints", "endpoints"),
        _rt("v1", "Event", "events"),
        _rt("v1", "Namespace", "namespaces", namespaced=False),
        _rt("v1", "Node", "nodes", namespaced=False),
        _rt("networking.k8s.io/v1", "Ingress", "ingresses"),
        _rt("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
        _rt("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
        _rt("helm.toolkit.fluxcd.io/v2", "HelmRelease", "helmreleases"),
    )
}
HELMRELEASE = BUILTIN["helmrelease"]
SECRET = BUILTIN["secret"]
EVENT = BUILTIN["event"]
POD = BUILTIN["pod"]
JOB = BUILTIN["job"]

Labels = Mapping[str, Any] | Sequence[tuple[str, Any]]
"""A label selector as lightkube takes it: ``{"key": "value" | operator}`` or the same as
``[(key, value | operator), ...]`` (``operators.exists()``, ``operators.in_([...])`` …)."""


class KubeError(Exception):
    """A Kubernetes API request failed. ``str()`` names the resource and the reason."""

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def forbidden(self) -> bool:
        return self.code == 403

    @property
    def error_kind(self) -> str:
        """The check ``ErrorKind`` that fits (a report groups failures by it)."""
        from smokegate.checks.base import ErrorKind

        return {
            403: ErrorKind.FORBIDDEN,
            404: ErrorKind.NOT_FOUND,
            401: ErrorKind.AUTH,
            None: ErrorKind.CONNECTION_REFUSED,
        }.get(self.code, ErrorKind.PROTOCOL)


def api_error(exc: BaseException, what: str) -> KubeError:
    """Turn a lightkube/httpx error into a ``KubeError`` about ``what`` (``secret apps/db``)."""
    from lightkube import ApiError

    if isinstance(exc, ApiError):
        status = exc.status
        code = getattr(status, "code", None) or exc.response.status_code
        message = (getattr(status, "message", None) or "").strip()
        reason = getattr(status, "reason", None) or ""
        if code == 404:
            return KubeError(f"{what}: not found", code=404, reason=reason)
        if code == 403:
            # The apiserver says: `secrets "db" is forbidden: User "…" cannot get resource …`;
            # the part after "is forbidden: " names the user and the missing permission.
            _, sep, detail = message.partition(" is forbidden: ")
            return KubeError(f"{what}: forbidden: {detail if sep else message}", code=403)
        if code == 401:
            return KubeError(
                f"{what}: unauthorized: the API server rejected the credentials "
                "(expired token? wrong kubeconfig user?)",
                code=401,
            )
        return KubeError(f"{what}: {message or reason} (HTTP {code})", code=code, reason=reason)
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None):
        # A watch stream's error status arrives before its (unread) body: only the code is known.
        code = response.status_code
        text = {401: "unauthorized", 403: "forbidden", 404: "not found"}.get(code, f"HTTP {code}")
        return KubeError(f"{what}: {text}", code=code)
    return KubeError(f"{what}: cannot reach the Kubernetes API: {_transport_text(exc)}")


def _transport_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    # httpx wraps OSError texts like "[Errno 111] Connection refused": keep them short.
    return text.split("\n")[0]


# --- configuration --------------------------------------------------------------------------

_FILE_KEYS = {
    "clusters": ("cluster", ("certificate-authority",)),
    "users": ("user", ("client-certificate", "client-key", "tokenFile")),
}


def _read_kubeconfig(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise UsageError(f"kubeconfig {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"kubeconfig {path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"kubeconfig {path}: not a kubeconfig (expected a mapping)")
    # Relative file references are relative to the file they are written in; make them absolute
    # before merging files from different directories.
    for section, (inner, keys) in _FILE_KEYS.items():
        for entry in data.get(section) or []:
            body = entry.get(inner) if isinstance(entry, dict) else None
            if isinstance(body, dict):
                for key in keys:
                    value = body.get(key)
                    if isinstance(value, str) and value and not os.path.isabs(value):
                        body[key] = str(path.parent / value)
    return data


def _merge(files: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    """kubectl's merge rule: the first file that names a cluster/context/user wins."""
    merged: dict[str, Any] = {"clusters": [], "contexts": [], "users": []}
    for _, data in files:
        for section in ("clusters", "contexts", "users"):
            seen = {e.get("name") for e in merged[section]}
            for entry in data.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") not in seen:
                    merged[section].append(entry)
        if not merged.get("current-context") and data.get("current-context"):
            merged["current-context"] = data["current-context"]
    return merged


def _in_cluster_available() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.isfile(
        os.path.join(SERVICE_ACCOUNT_DIR, "token")
    )


def load_config(options: KubeOptions) -> SingleConfig:
    """The cluster, user and context to use, or a ``UsageError`` that says what is missing."""
    from lightkube import ConfigError, KubeConfig

    if options.kubeconfig:
        candidates = [Path(options.kubeconfig).expanduser()]
        explicit = True
    elif os.environ.get("KUBECONFIG"):
        candidates = [Path(p).expanduser() for p in os.environ["KUBECONFIG"].split(os.pathsep) if p]
        explicit = False
    else:
        candidates = [Path(DEFAULT_KUBECONFIG).expanduser()]
        explicit = False
    files = [(p, _read_kubeconfig(p)) for p in candidates if explicit or p.is_file()]

    if not files:
        if _in_cluster_available():
            if options.context:
                raise UsageError(
                    f"--context {options.context}: no kubeconfig, and the in-cluster "
                    "service-account configuration has no contexts"
                )
            try:
                in_cluster = KubeConfig.from_service_account(SERVICE_ACCOUNT_DIR).get()
            except (ConfigError, KeyError) as exc:
                raise UsageError(f"in-cluster configuration: {exc}") from None
            assert in_cluster is not None  # from_one() always sets the current context
            return in_cluster
        raise UsageError(
            "no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, create "
            f"{DEFAULT_KUBECONFIG}, or run inside a pod with a service account"
        )

    source = ", ".join(str(p) for p, _ in files)
    merged = _merge(files)
    try:
        config = KubeConfig.from_dict(merged, fname=files[0][0]).get(options.context)
    except ConfigError as exc:
        if options.context:
            known = ", ".join(c.get("name", "?") for c in merged["contexts"]) or "none"
            raise UsageError(
                f"context {options.context!r} not found in {source} (contexts: {known})"
            ) from None
        raise UsageError(f"kubeconfig {source}: {exc} (use --context)") from None
    except KeyError as exc:
        raise UsageError(f"kubeconfig {source}: context refers to unknown cluster {exc}") from None
    except Exception as exc:  # malformed entries: msgspec validation errors and the like
        raise UsageError(f"kubeconfig {source}: {exc}") from None
    if config is None:
        raise UsageError(f"kubeconfig {source}: no current-context (use --context)")
    if config.user is None:
        raise UsageError(
            f"kubeconfig {source}: context {config.context_name!r} has no user; "
            "smokegate needs credentials"
        )
    return config


def effective_namespace(config: SingleConfig, options: KubeOptions) -> str:
    """``-n`` if given, else the context's namespace (the service account's in a pod)."""
    return options.namespace or config.namespace


def client_factory(options: KubeOptions) -> Callable[[], KubeClient]:
    """For ``CheckContext(kube_factory=...)``: connects on first use only, so a run without
    ``kube`` checks never reads a kubeconfig; a configuration problem fails the check that
    needed the cluster (kind ``config``) instead of the whole run."""

    def make() -> KubeClient:
        from smokegate.checks.base import CheckFailed, ErrorKind

        try:
            return KubeClient.from_options(options)
        except UsageError as exc:
            raise CheckFailed(str(exc), kind=ErrorKind.CONFIG) from None

    return make


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
        self, rt: ResourceType, namespace: str | None = None, labels: Labels | None = None
    ) -> list[dict[str, Any]]:
        """Every ``rt`` in ``namespace`` (cluster-wide for cluster-scoped kinds) matching
        ``labels``. Items come as the API lists them: without ``kind``/``apiVersion``."""
        ns = self._ns(rt, namespace)
        where = f"{rt.plural} in namespace {ns}" if ns else rt.plural
        selector = _selector(labels)
        try:
            return [
                _plain(obj)
                async for obj in self.api.list(self._class(rt), namespace=ns, labels=selector)
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
