"""HelmRelease values, merged exactly as helm-controller merges them.

Source: ``github.com/fluxcd/pkg/chartutil`` (``values.go`` ``ChartValuesFromReferences`` and
``ReplacePathValue``, ``merge.go`` ``MergeMaps``), which helm-controller calls with
``obj.GetValues()`` (spec.values) and ``obj.Spec.ValuesFrom``. The rules, in order:

1. Start from an empty map. Walk ``spec.valuesFrom`` in list order; each entry names a
   ``ConfigMap`` or ``Secret`` in the HelmRelease's namespace and a key (``valuesKey``, default
   ``values.yaml``). Any other kind is an error.
2. A missing object or key is an error, unless the entry is ``optional: true`` (then skipped).
3. Without ``targetPath`` the key's text is YAML (a map; ``chartutil.ReadValues``) and is merged
   over the result with ``MergeMaps`` (maps merge recursively; anything else - lists,
   scalars, a map meeting a scalar - is replaced by the newer value).
4. With ``targetPath`` the result is first merged with ``spec.values``; then the text is set at
   the path with Helm's ``--set`` parser (``strvals.ParseInto``; ``ParseIntoString`` when the
   text is wrapped in quotes, which are trimmed). Because Go maps and slices alias, the value
   written also lands in ``spec.values``' own maps where they were shared, which is why the
   upstream tests call it "target path precedence over all".
5. Finally ``spec.values`` is merged over the result with ``MergeMaps``.

The chart's own ``values.yaml`` is coalesced under this by Helm itself (``helm template -f``
does the same coalescing helm-controller's install/upgrade does).
"""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smokegate.premerge.strvals import StrvalsError, parse_into

DEFAULT_VALUES_KEY = "values.yaml"


def merge_maps(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """``MergeMaps(a, b)``: a new top-level map; ``b`` wins; nested maps merge recursively;
    values are shared, not copied (as in Go)."""
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict):
            current = out.get(k)
            if isinstance(current, dict):
                out[k] = merge_maps(current, v)
                continue
        out[k] = v
    return out


class ValuesError(ValueError):
    """A values reference that helm-controller would refuse (message in its words);
    ``index`` is the valuesFrom entry."""

    def __init__(self, index: int | None, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


@dataclass(slots=True)
class ValuesSource:
    """What a ConfigMap or Secret offers: its ``data`` (Secret data already base64-decoded,
    ``stringData`` merged over it as the API server does), and whether it is a Secret."""

    data: dict[str, str]
    secret: bool = False
    unusable: str | None = None
    """Why its data cannot be used (e.g. SOPS-encrypted): treated as unavailable."""


@dataclass(slots=True)
class ComposedValues:
    values: dict[str, Any]
    secret_strings: list[str] = field(default_factory=list)
    """Text that came from Secrets: to scrub from every output."""
    notes: list[tuple[int, str]] = field(default_factory=list)
    """(valuesFrom index, message) for skipped optional references and unusable sources."""


Lookup = Callable[[str, str], ValuesSource | None]
"""(kind, name) -> the object in the HelmRelease's namespace, or None."""


def source_from_object(obj: Mapping[str, Any]) -> ValuesSource:
    """A ConfigMap or Secret manifest as a ``ValuesSource``."""
    kind = obj.get("kind")
    if kind == "Secret":
        if "sops" in obj:
            return ValuesSource({}, True, "it is SOPS-encrypted (values cannot be read offline)")
        data: dict[str, str] = {}
        for k, v in (obj.get("data") or {}).items():
            try:
                data[str(k)] = base64.b64decode(str(v), validate=True).decode("utf-8")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                return ValuesSource({}, True, f"data.{k} is not base64 of UTF-8 text")
        for k, v in (obj.get("stringData") or {}).items():
            data[str(k)] = str(v)
        return ValuesSource(data, True)
    data = {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
    return ValuesSource(data, False)


def read_values(text: str) -> dict[str, Any]:
    """``chartutil.ReadValues``: YAML that must be a map (empty text: an empty map)."""
    from smokegate.premerge.yamlio import YamlError, load_one

    try:
        data = load_one(text)
    except YamlError as exc:
        raise ValueError(f"error converting YAML to JSON: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(
            "error unmarshaling JSON: cannot unmarshal "
            f"{type(data).__name__} into Go value of type map[string]interface {{}}"
        )
    return _stringify_keys(data)


def _stringify_keys(value: Any) -> Any:
    # YAML -> JSON (sigs.k8s.io/yaml) turns every key into a string.
    if isinstance(value, dict):
        return {_key_text(k): _stringify_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify_keys(v) for v in value]
    return value


def _key_text(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


def replace_path_value(values: dict[str, Any], path: str, value: str) -> None:
    """``ReplacePathValue``."""
    single = value.startswith("'") and value.endswith("'")
    double = value.startswith('"') and value.endswith('"')
    if single or double:
        parse_into(path + "=" + value.strip("'\""), values, as_string=True)
    else:
        parse_into(path + "=" + value, values)


def compose_values(
    inline: Mapping[str, Any] | None,
    refs: list[Mapping[str, Any]],
    lookup: Lookup,
    namespace: str,
) -> ComposedValues:
    """``ChartValuesFromReferences(namespace, spec.values, spec.valuesFrom...)``. Raises
    ``ValuesError`` where helm-controller fails the release."""
    # One copy of spec.values for the whole merge: the aliasing of rule 4 needs one object.
    values: dict[str, Any] = copy.deepcopy(dict(inline or {}))
    result: dict[str, Any] = {}
    out = ComposedValues(result)
    seen: dict[tuple[str, str], ValuesSource | None] = {}
    for index, ref in enumerate(refs):
        kind = str(ref.get("kind") or "")
        name = str(ref.get("name") or "")
        key = str(ref.get("valuesKey") or DEFAULT_VALUES_KEY)
        optional = bool(ref.get("optional"))
        target = str(ref.get("targetPath") or "")
        what = (
            f"could not resolve{' optional' if optional else ''} {kind} chart values "
            f"reference '{namespace}/{name}' with key '{key}'"
        )
        if kind not in ("ConfigMap", "Secret"):
            raise ValuesError(index, f"{what}: unsupported values reference kind")
        if (kind, name) not in seen:
            seen[(kind, name)] = lookup(kind, name)
        source = seen[(kind, name)]
        if source is not None and source.unusable:
            out.notes.append((index, f"{kind} {namespace}/{name} not used: {source.unusable}"))
            continue
        if source is None:
            if optional:
                out.notes.append((index, f"{what}: resource not found (optional: skipped)"))
                continue
            raise ValuesError(index, f"{what}: resource not found")
        if key not in source.data:
            if optional:
                out.notes.append((index, f"{what}: key not found (optional: skipped)"))
                continue
            raise ValuesError(index, f"{what}: key not found")
        text = source.data[key]
        if source.secret:
            out.secret_strings.append(text)
        if target:
            result = merge_maps(result, values)
            try:
                replace_path_value(result, target, text)
            except StrvalsError as exc:
                raise ValuesError(index, f"{what}: {exc}") from None
            continue
        try:
            loaded = read_values(text)
        except ValueError as exc:
            raise ValuesError(index, f"{what}: {exc}") from None
        if source.secret:
            out.secret_strings.extend(_leaf_strings(loaded))
        result = merge_maps(result, loaded)
    out.values = merge_maps(result, values)
    return out


def _leaf_strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _leaf_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _leaf_strings(v)]
    return [value] if isinstance(value, str) else []
