"""helm-controller's values merge, Helm's --set parser, chart version constraints and release
naming. The cases are the upstream ones (fluxcd/pkg chartutil/values_test.go, helm
pkg/strvals parser_test.go): their expected results are the behaviour users get from Flux."""

from __future__ import annotations

import base64

import pytest

from smokegate.premerge.render import release_name
from smokegate.premerge.semver import best, satisfies
from smokegate.premerge.strvals import StrvalsError, parse_into
from smokegate.premerge.values import (
    ValuesError,
    ValuesSource,
    compose_values,
    merge_maps,
    read_values,
    replace_path_value,
    source_from_object,
)


def lookup_of(**objects: ValuesSource):
    def lookup(kind: str, name: str) -> ValuesSource | None:
        return objects.get(f"{kind}/{name}".replace("-", "_").replace("/", "__"))

    return lookup


def cm(data: dict[str, str]) -> ValuesSource:
    return ValuesSource(data, secret=False)


def secret(data: dict[str, str]) -> ValuesSource:
    return ValuesSource(data, secret=True)


def test_merges_in_order_then_inline_values_last() -> None:
    got = compose_values(
        read_values("other: values\n"),
        [{"kind": "ConfigMap", "name": "values"}, {"kind": "Secret", "name": "values"}],
        lookup_of(
            ConfigMap__values=cm({"values.yaml": "flat: value\nnested:\n  configuration: value\n"}),
            Secret__values=secret({"values.yaml": "flat:\n  nested: value\nnested: value\n"}),
        ),
        "apps",
    )
    assert got.values == {"flat": {"nested": "value"}, "nested": "value", "other": "values"}


def test_target_path_sets_a_nested_value() -> None:
    got = compose_values(
        {},
        [
            {
                "kind": "Secret",
                "name": "values",
                "valuesKey": "single",
                "targetPath": "merge.at.specific.path",
            }
        ],
        lookup_of(Secret__values=secret({"single": "value"})),
        "apps",
    )
    assert got.values == {"merge": {"at": {"specific": {"path": "value"}}}}
    assert "value" in got.secret_strings


def test_target_path_takes_precedence_over_everything() -> None:
    """The upstream case: the targetPath value also lands in spec.values' own list (Go slices
    alias), so it survives the final merge of spec.values."""
    got = compose_values(
        read_values("nested:\n  configuration:\n  - list\n  - item\n  - option\n"),
        [
            {
                "kind": "Secret",
                "name": "values",
                "valuesKey": "key",
                "targetPath": "nested.configuration[0]",
            },
            {"kind": "ConfigMap", "name": "values"},
        ],
        lookup_of(
            ConfigMap__values=cm(
                {
                    "values.yaml": "flat: value\nnested:\n  configuration:\n"
                    "  - one\n  - two\n  - three\n"
                }
            ),
            Secret__values=secret({"key": "value"}),
        ),
        "apps",
    )
    assert got.values == {"flat": "value", "nested": {"configuration": ["value", "item", "option"]}}


def test_target_path_for_a_list_item() -> None:
    got = compose_values(
        read_values("other: values\n"),
        [
            {"kind": "ConfigMap", "name": "values"},
            {"kind": "Secret", "name": "values", "targetPath": "nested.configuration[1]"},
        ],
        lookup_of(
            ConfigMap__values=cm(
                {
                    "values.yaml": "flat: value\nnested:\n  configuration:\n"
                    "  - list\n  - item\n  - option\n"
                }
            ),
            Secret__values=secret({"values.yaml": "foo"}),
        ),
        "apps",
    )
    assert got.values == {
        "flat": "value",
        "nested": {"configuration": ["list", "foo", "option"]},
        "other": "values",
    }


@pytest.mark.parametrize(
    ("ref", "objects", "words"),
    [
        ({"kind": "Secret", "name": "missing"}, {}, "resource not found"),
        ({"kind": "ConfigMap", "name": "missing"}, {}, "resource not found"),
        (
            {"kind": "Secret", "name": "values", "valuesKey": "nonexisting"},
            {"Secret__values": secret({})},
            "key not found",
        ),
        (
            {"kind": "ConfigMap", "name": "values", "valuesKey": "nonexisting"},
            {"ConfigMap__values": cm({})},
            "key not found",
        ),
        ({"kind": "Unsupported", "name": "x"}, {}, "unsupported values reference kind"),
        (
            {"kind": "ConfigMap", "name": "values"},
            {"ConfigMap__values": cm({"values.yaml": "\ninvalid"})},
            "cannot unmarshal",
        ),
    ],
)
def test_refused_references(ref: dict, objects: dict, words: str) -> None:
    with pytest.raises(ValuesError) as info:
        compose_values({}, [ref], lookup_of(**objects), "apps")
    assert words in info.value.message
    assert info.value.index == 0
    assert f"'apps/{ref['name']}'" in info.value.message


def test_optional_references_are_skipped_with_a_note() -> None:
    got = compose_values(
        {"a": 1},
        [
            {"kind": "Secret", "name": "missing", "optional": True},
            {"kind": "ConfigMap", "name": "values", "valuesKey": "nope", "optional": True},
        ],
        lookup_of(ConfigMap__values=cm({})),
        "apps",
    )
    assert got.values == {"a": 1}
    assert [i for i, _ in got.notes] == [0, 1]
    assert "resource not found" in got.notes[0][1] and "key not found" in got.notes[1][1]


def test_inline_values_are_not_changed_in_the_caller() -> None:
    inline = {"nested": {"list": ["a", "b"]}}
    compose_values(
        inline,
        [{"kind": "ConfigMap", "name": "v", "valuesKey": "k", "targetPath": "nested.list[0]"}],
        lookup_of(ConfigMap__v=cm({"k": "z"})),
        "apps",
    )
    assert inline == {"nested": {"list": ["a", "b"]}}


@pytest.mark.parametrize(
    ("path", "value", "want"),
    [
        ("outer.inner", "value", {"outer": {"inner": "value"}}),
        ("name", "{a,b,c}", {"name": ["a", "b", "c"]}),
        ("name", r"value1\,value2", {"name": "value1,value2"}),
        ("merge.at.specific.path", "true", {"merge": {"at": {"specific": {"path": True}}}}),
        ("merge.at.specific.path", '"true"', {"merge": {"at": {"specific": {"path": "true"}}}}),
        ("merge.at[2]", "value", {"merge": {"at": [None, None, "value"]}}),
        (
            r"nodeSelector.kubernetes\.io/role",
            "master",
            {"nodeSelector": {"kubernetes.io/role": "master"}},
        ),
        ("replicas", "3", {"replicas": 3}),
        ("replicas", "'3'", {"replicas": "3"}),
        ("port", "0080", {"port": "0080"}),
        ("n", "null", {"n": None}),
        ("a.b[0].c", "x", {"a": {"b": [{"c": "x"}]}}),
    ],
)
def test_replace_path_value(path: str, value: str, want: dict) -> None:
    values: dict = {}
    replace_path_value(values, path, value)
    assert values == want


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a=x,y", 'key "y" has no value'),
        ("a,", 'key "a" has no value (cannot end with ,)'),
        ("a[x]=1", "error parsing index"),
        ("a={x,y", "list must terminate with '}'"),
        ("a[-1]=1", "negative -1 index not allowed"),
    ],
)
def test_strvals_errors_are_helms(line: str, message: str) -> None:
    with pytest.raises(StrvalsError) as info:
        parse_into(line, {})
    assert message in str(info.value)


def test_strvals_updates_existing_maps_in_place() -> None:
    dest = {"a": {"keep": 1}}
    inner = dest["a"]
    parse_into("a.b=2,c=d", dest)
    assert dest == {"a": {"keep": 1, "b": 2}, "c": "d"}
    assert dest["a"] is inner


def test_merge_maps_replaces_lists_and_mixes() -> None:
    a = {"m": {"x": 1, "y": [1, 2]}, "s": "flat"}
    b = {"m": {"y": [3]}, "s": {"now": "map"}}
    assert merge_maps(a, b) == {"m": {"x": 1, "y": [3]}, "s": {"now": "map"}}
    assert a == {"m": {"x": 1, "y": [1, 2]}, "s": "flat"}


def test_secret_sources_decode_data_and_prefer_string_data() -> None:
    src = source_from_object(
        {
            "kind": "Secret",
            "data": {
                "a": base64.b64encode(b"from-data").decode(),
                "b": base64.b64encode(b"x").decode(),
            },
            "stringData": {"b": "from-string-data"},
        }
    )
    assert src.data == {"a": "from-data", "b": "from-string-data"} and src.secret
    sops = source_from_object(
        {"kind": "Secret", "data": {"a": "ENC[...]"}, "sops": {"version": "3"}}
    )
    assert sops.unusable and "SOPS" in sops.unusable


def test_sops_secret_is_reported_not_used() -> None:
    got = compose_values(
        {},
        [{"kind": "Secret", "name": "enc"}],
        lookup_of(Secret__enc=ValuesSource({}, True, "it is SOPS-encrypted")),
        "apps",
    )
    assert got.values == {} and "SOPS" in got.notes[0][1]


@pytest.mark.parametrize(
    ("version", "constraint", "ok"),
    [
        ("1.2.3", "1.2.3", True),
        ("1.2.4", "1.2.3", False),
        ("1.9.0", "^1.2", True),
        ("2.0.0", "^1.2", False),
        ("0.2.5", "^0.2.3", True),
        ("0.3.0", "^0.2.3", False),
        ("1.2.9", "~1.2.3", True),
        ("1.3.0", "~1.2.3", False),
        ("1.4.0", ">=1.2.0 <2.0.0", True),
        ("1.4.0", ">=1.2.0, <1.4.0", False),
        ("3.0.0", "1.x || >=3", True),
        ("1.5.0", "1.x", True),
        ("1.0.0-rc.1", "*", False),
        ("1.0.0-rc.1", ">=1.0.0-rc.0", True),
        ("1.3.0", "1.2 - 1.4", True),
    ],
)
def test_chart_version_constraints(version: str, constraint: str, ok: bool) -> None:
    assert satisfies(version, constraint) is ok


def test_best_version() -> None:
    assert best(["1.0.0", "1.1.0", "2.0.0"], "^1.0") == "1.1.0"
    assert best(["1.0.0"], "^2") is None


def test_release_names_follow_helm_controller() -> None:
    hr = {"metadata": {"name": "web"}, "spec": {}}
    assert release_name(hr) == "web"
    assert release_name({**hr, "spec": {"targetNamespace": "prod"}}) == "prod-web"
    assert release_name({**hr, "spec": {"targetNamespace": "prod", "releaseName": "x"}}) == "x"
    long = "a" * 30 + "-" + "b" * 29
    got = release_name({"metadata": {"name": long}, "spec": {}})
    import hashlib

    assert got == long[:40] + "-" + hashlib.sha256(long.encode()).hexdigest()[:12]
    assert len(got) == 53
