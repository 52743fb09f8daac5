"""Typed suite models.

A check entry is one model per kind (``HttpCheck`` has the common fields plus ``http:``),
discriminated by which kind key is present, so a validation error speaks of the kind the user
wrote. The union is assembled from the check registry at first use: a new kind needs no change
here.
"""

from __future__ import annotations

import functools
import types
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    create_model,
    field_validator,
)
from pydantic.alias_generators import to_camel

from smokegate.core.durations import parse_duration
from smokegate.core.secrets import MASK, KeepSecrets, Secret

API_VERSION = "smokegate.io/v1"

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d))+$"},
                {"type": "number", "minimum": 0},
            ],
            "description": "A duration: 500ms, 5s, 1m30s, 2h, or a number of seconds.",
        }
    ),
]


class Model(BaseModel):
    """Base of every suite model (and of check specs, ``checks.base.Spec``).

    Secrets: a field typed ``core.secrets.Text`` (or marked ``KeepSecrets``) keeps a ``Secret``
    as it is, for the check to reveal at the driver call. Any other field gets a Secret's text
    (a check name, a regex, a port, as suites have always allowed: ``validate_with_secrets``);
    the model remembers those texts and ``repr()``, ``model_dump()`` and ``model_dump_json()``
    mask them, so a spec never prints a secret either way."""

    # A field's docstring (the string under it) is its description in the JSON Schema. Not
    # pydantic's `use_attribute_docstrings`: that reads and parses the source of every model
    # class at import, a large share of every start-up; `json_schema()` reads them when asked.
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
    )

    @property
    def revealed_secrets(self) -> tuple[str, ...]:
        """Secret texts held by plain (not ``Text``) fields of this model or the ones in it."""
        private = self.__pydantic_private__
        return private.get(_REVEALED, ()) if private else ()

    def __repr_args__(self) -> Any:
        revealed = self.revealed_secrets
        for name, value in super().__repr_args__():
            yield name, _masked(value, revealed) if revealed else value

    def model_dump(self, **kw: Any) -> Any:
        data = super().model_dump(**kw)
        return _masked(data, self.revealed_secrets) if self.revealed_secrets else data

    def model_dump_json(self, **kw: Any) -> str:
        text = super().model_dump_json(**kw)
        return _masked(text, self.revealed_secrets) if self.revealed_secrets else text


# Not a declared private attribute: declaring one costs every model instance an init (a
# measurable share of planning 10,000 checks); only models built from secrets carry it.
_REVEALED = "_smokegate_revealed"


def validate_with_secrets(model_cls: type[BaseModel], data: Any, context: Any) -> Any:
    """``model_cls.model_validate(data)`` for data that holds ``Secret`` values: fields that
    keep them (``Text``) get them as they are, every other field gets their text, and the
    model and the models inside it remember those texts, to mask them when shown."""
    revealed: list[str] = []
    plain = _plain_model(model_cls, data, revealed)
    model = model_cls.model_validate(plain, context=context)
    if revealed:
        _mark(model, tuple(sorted(set(revealed), key=len, reverse=True)))
    return model


def _mark(value: Any, revealed: tuple[str, ...]) -> None:
    if isinstance(value, BaseModel):
        private = dict(value.__pydantic_private__ or {})
        private[_REVEALED] = tuple(sorted({*private.get(_REVEALED, ()), *revealed}, key=len))[::-1]
        object.__setattr__(value, "__pydantic_private__", private)
        for name in type(value).model_fields:
            _mark(getattr(value, name), revealed)
    elif isinstance(value, dict):
        for item in value.values():
            _mark(item, revealed)
    elif isinstance(value, list | tuple):
        for item in value:
            _mark(item, revealed)


@functools.cache
def _fields_by_key(cls: type[BaseModel]) -> dict[str, tuple[bool, Any]]:
    """``(keeps Secrets, annotation)`` of each field, by every key that may name it in input
    (alias and name)."""
    out: dict[str, tuple[bool, Any]] = {}
    for name, info in cls.model_fields.items():
        annotation: Any = info.annotation
        entry = (_keeps(annotation) or _marked(tuple(info.metadata)), annotation)
        out[name] = entry
        if info.alias:
            out[info.alias] = entry
    return out


def _marked(metadata: tuple[Any, ...]) -> bool:
    return any(isinstance(m, KeepSecrets) for m in metadata)


@functools.lru_cache(maxsize=512)
def _keeps(annotation: Any) -> bool:
    """Does a value of this type keep ``Secret`` values (``Text`` somewhere in it)?"""
    import typing

    if annotation is Secret:
        return True
    if typing.get_origin(annotation) is Annotated:
        base, *extra = typing.get_args(annotation)
        return _keeps(base) or _marked(tuple(extra))
    return any(_keeps(arg) for arg in typing.get_args(annotation))


def _plain_model(cls: type[BaseModel], data: Any, revealed: list[str]) -> Any:
    if not isinstance(data, dict):
        return data
    fields = _fields_by_key(cls)
    out: dict[Any, Any] = {}
    for key, value in data.items():
        field = fields.get(key)
        if field is not None:
            keeps, annotation = field
            value = _plain_keys(value, revealed) if keeps else _plain(annotation, value, revealed)
        out[key] = value
    return out


def _plain(annotation: Any, value: Any, revealed: list[str]) -> Any:
    """``value`` as a field of ``annotation`` takes it: Secrets revealed (and recorded in
    ``revealed``) wherever the type does not keep them."""
    import typing

    if isinstance(value, BaseModel) or _keeps(annotation):
        return _plain_keys(value, revealed)
    if isinstance(value, Secret):
        revealed.extend(value.secret_values())
        return value.reveal()
    if not isinstance(value, dict | list):
        return value
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _plain(typing.get_args(annotation)[0], value, revealed)
    members = typing.get_args(annotation) if origin in (Union, types.UnionType) else (annotation,)
    for member in members:
        member_origin = typing.get_origin(member) or member
        if isinstance(member, type) and issubclass(member, BaseModel) and isinstance(value, dict):
            return _plain_model(member, value, revealed)
        if member_origin is dict and isinstance(value, dict):
            args = typing.get_args(member)
            item = args[1] if len(args) == 2 else Any
            return {_plain(str, k, revealed): _plain(item, v, revealed) for k, v in value.items()}
        if member_origin in (list, tuple) and isinstance(value, list):
            args = typing.get_args(member)
            item = args[0] if len(args) == 1 or (len(args) == 2 and args[1] is ...) else Any
            return [_plain(item, v, revealed) for v in value]
    # Any, or a type that does not say: every Secret inside gets its text.
    return _revealed_all(value, revealed)


def _revealed_all(value: Any, revealed: list[str]) -> Any:
    if isinstance(value, Secret):
        revealed.extend(value.secret_values())
        return value.reveal()
    if isinstance(value, dict):
        return {_revealed_all(k, revealed): _revealed_all(v, revealed) for k, v in value.items()}
    if isinstance(value, list):
        return [_revealed_all(v, revealed) for v in value]
    return value


def _plain_keys(value: Any, revealed: list[str]) -> Any:
    """Mapping keys are plain text even in a field that keeps Secrets (a header name)."""
    if isinstance(value, dict) and any(isinstance(k, Secret) for k in value):
        return {_revealed_all(k, revealed): v for k, v in value.items()}
    return value


def _masked(value: Any, revealed: tuple[str, ...]) -> Any:
    """``value`` as shown: the secret texts in ``revealed`` replaced by ``***``."""
    if isinstance(value, str):
        for secret in revealed:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {_masked(k, revealed): _masked(v, revealed) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_masked(v, revealed) for v in value)
    return value


class RetryPolicy(Model):
    """How often to try a check before calling it failed."""

    attempts: int | None = Field(default=None, ge=1)
    """Maximum attempts (default 1, or unlimited while `within` has time left)."""
    interval: Duration = 1.0
    """Pause after a failed attempt."""
    backoff: float = Field(default=1.0, ge=1.0)
    """Multiply the pause by this after each failed attempt."""
    max_interval: Duration = 30.0
    """Upper bound for the pause."""
    within: Duration | None = None
    """Eventually-consistent deadline: keep retrying until the check passes or this much time has
    passed since its first attempt (the post-deploy case)."""


class Defaults(Model):
    timeout: Duration = 10.0
    """Per-attempt timeout."""
    retry: RetryPolicy = Field(default_factory=RetryPolicy)


class ReleaseRef(Model):
    helm_release: str
    namespace: str | None = None


class Metadata(Model):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


MatrixValues = Union[list[Any], "MatrixRange"]


class MatrixRange(Model):
    range: tuple[int, int] | tuple[int, int, int]
    """Python-style range: [start, stop] or [start, stop, step]."""


class CheckCommon(Model):
    """Fields every check has, whatever its kind."""

    name: str = Field(min_length=1, pattern=r"^[^\s/][^/]*$")
    """Unique within the suite; no `/` (used as `suite/check` in reports)."""
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    needs: list[str] = Field(default_factory=list)
    """Names of checks that must pass first; if one fails this check is skipped."""
    timeout: Duration | None = None
    """Per-attempt timeout (default: spec.defaults.timeout)."""
    retry: RetryPolicy | None = None
    matrix: dict[str, list[Any] | MatrixRange] | None = None
    """Expand this check once per combination of values; each value is available as ${key}."""
    skip: bool | str = False
    """Skip this check (a string gives the reason)."""

    @field_validator("tags")
    @classmethod
    def _tags_nonempty(cls, v: list[str]) -> list[str]:
        if any(not t.strip() for t in v):
            raise ValueError("tags must be non-empty strings")
        return v


class VarSpec(Model):
    value: str
    secret: bool = False
    """Redact this value in every output."""


class SuiteSpec(Model):
    release: ReleaseRef | None = None
    defaults: Defaults = Field(default_factory=Defaults)
    vars: dict[str, str | int | float | bool | VarSpec] = Field(default_factory=dict)
    checks: list[Any] = Field(default_factory=list)
    """Validated per entry by the check-kind models (see `check_model`)."""


class SuiteDoc(Model):
    api_version: Literal["smokegate.io/v1"]
    kind: Literal["Suite"]
    metadata: Metadata
    spec: SuiteSpec


@functools.cache
def kind_names() -> tuple[str, ...]:
    """Registered kinds installed here, in registry order (no module is imported)."""
    from smokegate.checks import available_kinds

    return tuple(k.name for k in available_kinds())


@functools.cache
def kind_model(name: str) -> type[CheckCommon]:
    """The model of one kind: the common fields plus the kind's spec under its key.

    Built on first use only: a suite of `http` checks never pays for building the other
    kinds' validators (a noticeable share of a short run's start-up)."""
    from smokegate.checks import KINDS

    spec_cls = KINDS[name].load().SPEC
    model: type[CheckCommon] = create_model(  # type: ignore[call-overload]
        f"{name[0].upper()}{name[1:]}Check",
        __base__=CheckCommon,
        __doc__=spec_cls.__doc__,
        **{name: (spec_cls, Field(alias=name))},
    )
    return model


def kind_models() -> dict[str, type[CheckCommon]]:
    """Every kind's model (for the JSON Schema and field-name hints)."""
    return {name: kind_model(name) for name in kind_names()}


def kind_of(entry: Any) -> str | None:
    """The kind key present in a raw check entry (first one, in registry order)."""
    if isinstance(entry, dict):
        for name in kind_names():
            if name in entry:
                return name
    elif isinstance(entry, BaseModel):
        for name in kind_names():
            if getattr(entry, name, None) is not None:
                return name
    return None


@functools.cache
def check_adapter() -> Any:
    from pydantic import TypeAdapter

    members = tuple(Annotated[m, Tag(k)] for k, m in kind_models().items())
    union = Annotated[Union[members], Discriminator(kind_of)]  # type: ignore[valid-type]  # noqa: UP007
    return TypeAdapter(union)


def json_schema() -> dict[str, Any]:
    """JSON Schema of a suite file, with every check kind spelled out (for editors)."""
    from pydantic import TypeAdapter

    from smokegate.suite.schemadocs import DocumentedSchema

    schema = TypeAdapter(SuiteDoc).json_schema(by_alias=True, schema_generator=DocumentedSchema)
    check_schema = check_adapter().json_schema(by_alias=True, schema_generator=DocumentedSchema)
    defs = schema.setdefault("$defs", {})
    defs.update(check_schema.pop("$defs", {}))
    defs["Check"] = check_schema
    defs["SuiteSpec"]["properties"]["checks"] = {
        "type": "array",
        "items": {"$ref": "#/$defs/Check"},
        "title": "Checks",
    }
    _allow_variables(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://smokegate.io/schemas/suite-v1.json"
    schema["title"] = "smokegate Suite"
    return schema


@functools.cache
def all_field_names() -> list[str]:
    """Every YAML key any model accepts (for "did you mean" hints)."""
    names: set[str] = set()
    seen: set[type] = set()

    def visit(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for fname, info in model.model_fields.items():
            names.add(info.alias or fname)
            for arg in _model_args(info.annotation):
                visit(arg)

    models: list[type[BaseModel]] = [SuiteDoc, *kind_models().values()]
    for m in models:
        visit(m)
    return sorted(names)


def _model_args(annotation: Any) -> list[type[BaseModel]]:
    import typing

    out: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        out.append(annotation)
    for arg in typing.get_args(annotation):
        out.extend(_model_args(arg))
    return out


_VARIABLE = {"type": "string", "pattern": r"\$\{[^}]+\}", "description": "a ${variable}"}


def _allow_variables(node: Any) -> None:
    """Suites are validated after interpolation, so a number or boolean field may hold a
    ``${var}`` in the file; the published schema must accept that too."""
    if isinstance(node, dict):
        for key, value in list(node.items()):
            if isinstance(value, dict) and value.get("type") in ("integer", "number", "boolean"):
                node[key] = {"anyOf": [value, _VARIABLE]}
            else:
                _allow_variables(value)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, dict) and value.get("type") in ("integer", "number", "boolean"):
                node[i] = {"anyOf": [value, _VARIABLE]}
            else:
                _allow_variables(value)
