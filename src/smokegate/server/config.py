"""``serve.yaml``: the server's configuration, validated like suites (every problem reported as
``file:line:col: message``, never just the first).

Secrets (webhook HMAC keys, the API token, a store password) are never written into the model as
plain strings: a ``SecretRef`` names where to read them (``env:``/``file:``; ``value:`` for
tests and demos) and ``resolve()`` returns a ``smokegate.secrets.Secret``, which renders as
``***`` however it is printed or logged.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from smokegate.errors import Problem, SuiteError
from smokegate.secrets import Secret
from smokegate.suite.model import Duration, Model
from smokegate.suite.yamlpos import Document, Path, YamlSyntaxError, load_documents

API_VERSION = "smokegate.io/v1"
KIND = "ServerConfig"
SUITES_ANNOTATION = "smokegate.io/suites"
DISCOVER_ANNOTATION = "smokegate.io/discover"
SUITE_CONFIGMAP_LABEL = "smokegate.io/suite"
DEFAULT_REASONS = ("InstallSucceeded", "UpgradeSucceeded", "TestSucceeded")


class ConfigError(SuiteError):
    """serve.yaml is missing or invalid (exit 2); ``problems`` lists every one."""


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


class ServeConfig(Model):
    api_version: Literal["smokegate.io/v1"] = Field(alias="apiVersion")
    kind: Literal["ServerConfig"]
    listen: str = "0.0.0.0:8080"
    """``HOST:PORT`` to serve HTTP on."""
    store: StoreConfig = Field(default_factory=StoreConfig)
    suites: SuitesConfig = Field(default_factory=SuitesConfig)
    releases: list[ReleaseRule] = Field(default_factory=list)
    schedules: list[Schedule] = Field(default_factory=list)
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    gates: GatesConfig = Field(default_factory=GatesConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)

    # Where the file was read from: relative suite directories resolve against it.
    _base_dir: str = PrivateAttr(default=".")

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @model_validator(mode="after")
    def _unique_schedules(self) -> ServeConfig:
        names = [s.name for s in self.schedules]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate schedule names: {', '.join(sorted(dup))}")
        return self

    def store_url(self) -> str:
        """The store URL, ``${VAR}`` expanded; a relative SQLite path is taken relative to
        serve.yaml (like suite directories), so the server behaves the same from any cwd."""
        url = self.store.expanded_url()
        scheme, sep, rest = url.partition(":///")
        if sep and scheme.split("+")[0] == "sqlite" and not rest.startswith("/"):
            url = f"{scheme}:///{(FsPath(self._base_dir) / rest).resolve()}"
        return url

    def suite_dirs(self) -> list[str]:
        return [str((FsPath(self._base_dir) / d).resolve()) for d in self.suites.directories]

    def rule_for(
        self, namespace: str, name: str, labels: dict[str, str] | None = None
    ) -> ReleaseRule | None:
        """The first rule whose selector matches."""
        for rule in self.releases:
            if rule.match.matches(namespace, name, labels):
                return rule
        return None


def discover_annotation(hr: dict[str, Any] | None) -> bool | None:
    """The HelmRelease's ``smokegate.io/discover`` annotation: True (``"true"``), False
    (``"false"``), or None when absent or neither (then the matching rule's ``discover``
    decides)."""
    annotations = ((hr or {}).get("metadata") or {}).get("annotations") or {}
    value = str(annotations.get(DISCOVER_ANNOTATION) or "").strip().lower()
    if value in ("true", "yes", "1"):
        return True
    if value in ("false", "no", "0"):
        return False
    return None


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r}: use HOST:PORT, e.g. 0.0.0.0:8080")
    return host.strip("[]") or "0.0.0.0", int(port)


# --- loading ---------------------------------------------------------------------------------


def load_config(path: str, *, check_suites: bool = True) -> ServeConfig:
    """Read and validate ``path``. Raises ``ConfigError`` listing every problem, located.

    ``check_suites``: also check that every suite name the config mentions exists in the
    configured directories (skipped when suites also come from ConfigMaps)."""
    try:
        text = FsPath(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(path, None, None, f"cannot read: {exc}")]) from None
    return parse_config(text, path, check_suites=check_suites)


def parse_config(text: str, file: str, *, check_suites: bool = True) -> ServeConfig:
    try:
        docs = load_documents(text, file)
    except YamlSyntaxError as exc:
        raise ConfigError(exc.problems) from None
    if len(docs) != 1:
        found = "no document" if not docs else f"{len(docs)} documents"
        raise ConfigError([Problem(file, None, None, f"expected one ServerConfig, found {found}")])
    doc = docs[0]
    if not isinstance(doc.data, dict):
        raise ConfigError([doc.problem((), "expected a mapping (apiVersion: smokegate.io/v1)")])
    try:
        config = ServeConfig.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, doc)) from None
    config._base_dir = str(FsPath(file).resolve().parent)
    if check_suites and not config.suites.config_maps.enabled:
        problems = _unknown_suites(config, doc)
        if problems:
            raise ConfigError(problems)
    return config


def problems_from(exc: ValidationError, doc: Document) -> list[Problem]:
    """pydantic errors -> located problems, worded like the suite loader's."""
    out = []
    for err in exc.errors(include_url=False):
        loc: Path = tuple(err["loc"])
        etype = err["type"]
        path = loc
        key = False
        if etype == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}" + _did_you_mean(loc)
            key = True
        elif etype == "missing":
            message = f"missing required field {loc[-1]!r}"
            path = loc[:-1]
        elif etype == "literal_error" and loc in (("apiVersion",), ("kind",)):
            want = API_VERSION if loc == ("apiVersion",) else KIND
            message = f"{loc[0]} must be {want!r}"
        else:
            msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
            where = ".".join(str(p) for p in loc)
            message = f"{where}: {msg}" if where else msg
        out.append(doc.problem(path, message, key=key))
    return out


def _field_names(model: type[Model], into: set[str]) -> set[str]:
    """Every YAML key of ``model`` and of the models nested in it (for "did you mean")."""
    for name, info in model.model_fields.items():
        into.add(info.alias or name)
        pending: list[Any] = [info.annotation]
        while pending:
            ann = pending.pop()
            args = getattr(ann, "__args__", None)
            if args:
                pending.extend(args)
            elif isinstance(ann, type) and issubclass(ann, Model) and ann.__name__ not in into:
                into.add(ann.__name__)
                _field_names(ann, into)
    return into


def _did_you_mean(loc: Path) -> str:
    import difflib

    names = sorted(n for n in _field_names(ServeConfig, set()) if n[:1].islower())
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_suites(config: ServeConfig, doc: Document) -> list[Problem]:
    """Suite names that no configured directory defines, located where they are written."""
    from smokegate.suite.loader import parse_suites

    dirs = config.suite_dirs()
    problems: list[Problem] = []
    for i, d in enumerate(dirs):
        if not FsPath(d).is_dir():
            problems.append(doc.problem(("suites", "directories", i), f"{d}: not a directory"))
    if problems or not dirs:
        return problems
    try:
        known = {s.name for s in parse_suites(dirs)}
    except SuiteError as exc:
        return list(exc.problems)
    refs: list[tuple[Path, str]] = []
    for i, rule in enumerate(config.releases):
        refs += [(("releases", i, "suites", j), n) for j, n in enumerate(rule.suites)]
    for i, sched in enumerate(config.schedules):
        refs += [(("schedules", i, "suites", j), n) for j, n in enumerate(sched.suites)]
    for path, name in refs:
        if name not in known:
            have = ", ".join(sorted(known)) or "none"
            problems.append(doc.problem(path, f"no suite named {name!r} (suites: {have})"))
    return problems
