"""The sections of ``serve.yaml`` (store, suites, releases, schedules, kubernetes, webhooks,
api, worker, gates, dashboard) as pydantic models; ``server.config.ServeConfig`` puts them
together and loads the file."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path as FsPath
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from smokegate.core.errors import Problem, SuiteError
from smokegate.core.secrets import Secret
from smokegate.suite.model import Duration, Model


class ConfigError(SuiteError):
    """serve.yaml is missing or invalid (exit 2); ``problems`` lists every one."""


DEFAULT_REASONS = ("InstallSucceeded", "UpgradeSucceeded", "TestSucceeded")


def _secret_shorthand(value: Any) -> Any:
    # `secret: s3cr3t` is accepted as `{value: s3cr3t}`: handy in tests, and the config file is
    # usually a mounted Secret itself. env:/file: are what the docs show.
    return {"value": value} if isinstance(value, str) else value


class SecretRef(Model):
    """Where a secret comes from: exactly one of ``env``, ``file``, ``value``."""

    env: str | None = None
    """Environment variable holding it."""
    file: str | None = None
    """File holding it (a mounted Secret key); surrounding whitespace is stripped."""
    value: str | None = Field(default=None, repr=False)
    """The secret itself (tests and demos only)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        given = [k for k in ("env", "file", "value") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of env, file, value")
        return self

    def resolve(self) -> Secret:
        """The secret, or ``ConfigError`` naming the variable/file (never the value)."""
        if self.value is not None:
            text = self.value
        elif self.env is not None:
            text = os.environ.get(self.env, "")
            if not text:
                raise ConfigError([Problem("serve.yaml", None, None, f"${self.env} is not set")])
        else:
            assert self.file is not None
            try:
                text = FsPath(self.file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    [Problem("serve.yaml", None, None, f"secret file {self.file}: {exc.strerror}")]
                ) from None
        if not text:
            raise ConfigError([Problem("serve.yaml", None, None, "a configured secret is empty")])
        return Secret(text)


SecretField = Annotated[SecretRef, BeforeValidator(_secret_shorthand)]


class Retention(Model):
    max_age: Duration | None = 30 * 86400.0
    """Delete runs older than this (default 30d; null keeps them forever)."""
    max_runs_per_release: int | None = Field(default=500, ge=1)
    """Keep at most this many runs per release (newest first; null: no limit)."""
    interval: Duration = 3600.0
    """How often the retention sweep runs."""


class StoreConfig(Model):
    url: str = "sqlite:///smokegate-history.db"
    """``sqlite:///history.db`` (default; relative to serve.yaml), ``sqlite:////abs/path.db``
    or ``postgresql://user@host/db``. ``${VAR}`` is expanded from the environment (keep
    passwords there)."""
    retention: Retention = Field(default_factory=Retention)

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        # The whole URL from one variable (`${SMOKEGATE_STORE_URL}`, a Secret's `uri` key in a
        # pod): its scheme can only be checked once expanded, at start (expanded_url).
        if not _WHOLE_VAR.fullmatch(value):
            _check_scheme(value)
        return value

    def expanded_url(self) -> str:
        url = re.sub(r"\$\{(\w+)\}", lambda m: os.environ.get(m.group(1), ""), self.url)
        if (whole := _WHOLE_VAR.fullmatch(self.url)) is not None:
            if not url:
                raise ConfigError(
                    [Problem("serve.yaml", None, None, f"store.url: ${whole[1]} is not set")]
                )
            try:
                _check_scheme(url)
            except ValueError:
                # Not the scheme itself: a malformed value may be all secret (a bare password).
                message = f"store.url: ${whole[1]} is not a sqlite:/// or postgresql:// URL"
                raise ConfigError([Problem("serve.yaml", None, None, message)]) from None
        return url


_WHOLE_VAR = re.compile(r"\$\{(\w+)\}")


def _check_scheme(url: str) -> None:
    scheme = url.split(":", 1)[0].lower()
    if scheme not in ("sqlite", "postgresql", "postgres", "sqlite+aiosqlite", "postgresql+psycopg"):
        raise ValueError(
            f"unsupported store URL scheme {scheme!r}: use sqlite:/// or postgresql://"
        )


class ConfigMapSource(Model):
    enabled: bool = False
    """Also load suites from ConfigMaps labelled ``smokegate.io/suite=true`` (needs kubernetes)."""
    namespaces: list[str] = Field(default_factory=list)
    """Where to look (default: the namespaces of kubernetes.namespaces, else all)."""


class SuitesConfig(Model):
    directories: list[str] = Field(default_factory=list)
    """Directories of suite files (``*.yaml``/``*.yml``, recursively); relative to serve.yaml."""
    config_maps: ConfigMapSource = Field(default_factory=ConfigMapSource)


class ReleaseMatch(Model):
    namespace: str = "*"
    """Glob on the HelmRelease's namespace."""
    name: str = "*"
    """Glob on the HelmRelease's name."""
    labels: dict[str, str] = Field(default_factory=dict)
    """The HelmRelease's labels must include these (needs kubernetes.enabled)."""

    def matches(self, namespace: str, name: str, labels: dict[str, str] | None = None) -> bool:
        if not fnmatch.fnmatchcase(namespace, self.namespace):
            return False
        if not fnmatch.fnmatchcase(name, self.name):
            return False
        have = labels or {}
        return all(have.get(k) == v for k, v in self.labels.items())


def _resolve_entry(value: str) -> str:
    from smokegate.checks.http import parse_resolve

    parse_resolve(value)  # ValueError: "resolve entry ... must look like host:port:address"
    return value


ResolveEntry = Annotated[str, AfterValidator(_resolve_entry)]


def _in_cluster_shorthand(value: Any) -> Any:
    # `inCluster: true` is the common case; `false` is the same as leaving it out.
    if value is True:
        return {}
    return None if value is False else value


class InClusterRun(Model):
    """Run a release's suites in a Job in the release's namespace, as ``run --in-cluster`` does
    (docs/in-cluster.md): checks then see the namespace's DNS, NetworkPolicies and mesh."""

    image: str | None = None
    """The runner image (default: ghcr.io/smokegate/smokegate at this smokegate's version)."""
    service_account: str | None = None
    """The pod's ServiceAccount (default: the namespace's ``default``): it reads the Secrets."""
    timeout: Duration = 1800.0
    """The whole in-cluster run, image pull included."""
    env: dict[str, str] = Field(default_factory=dict)
    """The pod's environment, for ``${env:…}`` (visible in the Job: not for secrets)."""
    image_pull_secrets: list[str] = Field(default_factory=list)
    pod_labels: dict[str, str] = Field(default_factory=dict)
    pod_annotations: dict[str, str] = Field(default_factory=dict)


class ReleaseRule(Model):
    """Which suites test which HelmReleases (the ``smokegate.io/suites`` annotation on a
    HelmRelease, when present, wins over every rule; ``smokegate.io/discover`` over
    ``discover``)."""

    match: ReleaseMatch = Field(default_factory=ReleaseMatch)
    suites: list[str] = Field(default_factory=list)
    """Suite names (``metadata.name``); may be empty with ``discover: true``."""
    discover: bool = False
    """Also run checks derived from the release's probes, Services and Ingresses (read from
    its Helm release Secret after Flux has reconciled it, like ``gate --discover``; needs
    kubernetes.enabled). The suites' own checks win on name clashes."""
    vars: dict[str, str] = Field(default_factory=dict)
    """Extra variables for these runs (like ``--var``)."""
    resolve: list[ResolveEntry] = Field(default_factory=list)
    """``HOST:PORT:ADDR`` overrides for these runs (like ``--resolve``): connect to ADDR for
    HOST:PORT. For a server outside the cluster, whose discovered checks name cluster DNS
    names (``web.apps.svc.cluster.local:80:10.0.0.7``)."""
    in_cluster: Annotated[InClusterRun | None, BeforeValidator(_in_cluster_shorthand)] = None
    """``true`` (or the Job's settings): run these suites in a Job in the release's namespace
    (needs kubernetes.enabled, and the in-cluster RBAC there: docs/in-cluster.md)."""

    @model_validator(mode="after")
    def _something_to_run(self) -> ReleaseRule:
        if not self.suites and not self.discover:
            raise ValueError("a release rule needs suites, discover: true, or both")
        return self

    def resolve_table(self) -> dict[tuple[str, int], str]:
        """``resolve`` as ``CheckContext`` takes it: (host, port) -> address."""
        from smokegate.checks.http import parse_resolve

        table = {}
        for item in self.resolve:
            host, port, addr = parse_resolve(item)
            table[(host, port)] = addr
        return table


class Schedule(Model):
    """Continuous checking: run suites every so often (the blackbox-exporter use case)."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    every: Duration
    release: str | None = Field(default=None, pattern=r"^[^/\s]+/[^/\s]+$")
    """``NAMESPACE/NAME`` of a HelmRelease: its facts become ``${release.*}``."""
    suites: list[str] = Field(default_factory=list)
    """Suites to run (default: those the release maps to)."""

    @field_validator("every")
    @classmethod
    def _not_too_often(cls, value: float) -> float:
        if value < 10:
            raise ValueError("at least 10s")
        return value

    @model_validator(mode="after")
    def _something_to_run(self) -> Schedule:
        if not self.suites and not self.release:
            raise ValueError("a schedule needs suites, a release, or both")
        return self


class LeaderElection(Model):
    enabled: bool = False
    """Elect one replica (a coordination.k8s.io Lease) to watch and schedule."""
    lease_name: str = "smokegate-leader"
    namespace: str | None = None
    """Where the Lease lives (default: the pod's namespace)."""
    lease_duration: Duration = 15.0
    renew_every: Duration = 5.0


class KubernetesConfig(Model):
    enabled: bool = False
    """Read HelmReleases (facts, readiness, suite annotation), record Events. Off: runs use the
    facts in the trigger (release name, namespace, revision)."""
    kubeconfig: str | None = None
    context: str | None = None
    namespaces: list[str] = Field(default_factory=list)
    """Namespaces to watch and read suite ConfigMaps from (default: all)."""
    wait_timeout: Duration = 600.0
    """How long a run waits for Flux to finish reconciling the release."""
    record_events: bool = True
    """Record SmokeTestSucceeded/Failed Events on the HelmRelease."""
    notify_flux: str | None = None
    """POST results to Flux's notification-controller so Flux Alerts carry them."""
    watch: bool = False
    """Watch HelmReleases and run when one becomes Ready at a new revision."""
    leader_election: LeaderElection = Field(default_factory=LeaderElection)

    @field_validator("notify_flux")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class FluxWebhook(Model):
    secrets: list[SecretField] = Field(default_factory=list)
    """HMAC keys (the Provider Secret's ``token``); any one may match, so keys can be rotated.
    Empty: the webhook is unauthenticated (Provider type ``generic``); a warning is logged."""
    reasons: list[str] = Field(default_factory=lambda: list(DEFAULT_REASONS))
    """HelmRelease event reasons that start a run."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Larger bodies are refused with 413 (an event message is at most 39,000 characters)."""
    body_timeout: Duration = 10.0
    """A body not received in full within this long is refused with 408, so a client that
    trickles its body (slow loris) does not hold a request open (Flux sends it at once)."""


class WebhooksConfig(Model):
    flux: FluxWebhook = Field(default_factory=FluxWebhook)


class ApiConfig(Model):
    token: SecretField | None = None
    """Bearer token for ``POST /api/v1/runs`` (and reads, with protectReads). Unset: manual
    runs are refused."""
    protect_reads: bool = False
    """Also require the token for GET API calls and the dashboard."""


class WorkerConfig(Model):
    concurrency: int = Field(default=2, ge=0)
    """Runs in flight per replica (0: this replica only serves HTTP)."""
    check_concurrency: int = Field(default=32, ge=1)
    """Checks in flight within one run."""
    lease: Duration = 60.0
    """A claimed job is re-queued if its worker stops renewing it for this long (crash)."""
    max_attempts: int = Field(default=3, ge=1)
    """A job whose worker crashed this many times is recorded as an error."""
    poll_interval: Duration = 1.0
    """How often an idle worker looks for queued jobs (other replicas' jobs included)."""
    shutdown_grace: Duration = 20.0
    """On SIGTERM, running jobs get this long to finish; then they are re-queued."""


class GatesConfig(Model):
    flagger_wait: Duration = 8.0
    """How long ``POST /gates/flagger`` waits for a verdict before answering 503 (stay below
    the webhook's timeout; Flagger's default is 10s)."""


class DashboardConfig(Model):
    title: str = "smokegate"
    refresh: Duration = 30.0
    """The release board reloads itself this often (0: never)."""
    history: int = Field(default=30, ge=1, le=200)
    """Runs shown in each release's history strip."""
