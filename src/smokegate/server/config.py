"""``serve.yaml``: the server's configuration, validated like suites (every problem reported as
``file:line:col: message``, never just the first).

Secrets (webhook HMAC keys, the API token, a store password) are never written into the model as
plain strings: a ``SecretRef`` names where to read them (``env:``/``file:``; ``value:`` for
tests and demos) and ``resolve()`` returns a ``smokegate.core.secrets.Secret``, which renders as
``***`` however it is printed or logged.
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from smokegate.core.errors import Problem, SuiteError
from smokegate.server.config_sections import (
    ApiConfig,
    ConfigError,
    DashboardConfig,
    GatesConfig,
    KubernetesConfig,
    ReleaseRule,
    Schedule,
    StoreConfig,
    SuitesConfig,
    WebhooksConfig,
    WorkerConfig,
)
from smokegate.suite.model import Model
from smokegate.suite.yamlpos import Document, Path, YamlSyntaxError, load_documents

API_VERSION = "smokegate.io/v1"
KIND = "ServerConfig"
SUITES_ANNOTATION = "smokegate.io/suites"
DISCOVER_ANNOTATION = "smokegate.io/discover"
SUITE_CONFIGMAP_LABEL = "smokegate.io/suite"


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
    def _in_cluster_needs_kubernetes(self) -> ServeConfig:
        if not self.kubernetes.enabled:
            for i, rule in enumerate(self.releases):
                if rule.in_cluster is not None:
                    raise ValueError(
                        f"releases[{i}].inCluster runs a Job: it needs kubernetes.enabled: true"
                    )
        return self

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
    from smokegate.core.hints import unknown_field_hint

    names = sorted(n for n in _field_names(ServeConfig, set()) if n[:1].islower())
    return unknown_field_hint(str(loc[-1]), names)


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
