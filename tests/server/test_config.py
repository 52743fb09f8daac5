"""serve.yaml validation: every problem, located at file:line:col; secrets resolved from
env/file and never shown."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from smokegate.server.config import (
    ConfigError,
    discover_annotation,
    load_config,
    parse_config,
)
from tests.server.support import REPO

HEAD = "apiVersion: smokegate.io/v1\nkind: ServerConfig\n"


def problems(text: str, tmp_path: Path, **kw: object) -> list[str]:
    path = tmp_path / "serve.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path), **kw)  # type: ignore[arg-type]
    return [str(p).replace(str(path), "serve.yaml") for p in info.value.problems]


def test_minimal_config_has_safe_defaults(tmp_path: Path) -> None:
    (tmp_path / "serve.yaml").write_text(HEAD)
    cfg = load_config(str(tmp_path / "serve.yaml"))
    assert cfg.listen == "0.0.0.0:8080"
    assert cfg.store_url() == f"sqlite:///{tmp_path / 'smokegate-history.db'}"
    assert cfg.webhooks.flux.reasons == ["InstallSucceeded", "UpgradeSucceeded", "TestSucceeded"]
    assert cfg.webhooks.flux.max_body_bytes == 1024 * 1024
    assert cfg.api.token is None and not cfg.kubernetes.enabled


def test_every_problem_is_reported_with_its_position(tmp_path: Path) -> None:
    text = HEAD + textwrap.dedent(
        """\
        listen: "127.0.0.1:80x"
        store:
          url: mysql://db/x
          retntion: {}
        webhooks:
          flux:
            secrets: [{env: A, file: b}]
        releases:
          - match: {name: podinfo}
            suites: []
        schedules:
          - {name: Bad_Name, every: 5s}
        """
    )
    assert problems(text, tmp_path) == [
        "serve.yaml:3:9: listen: '127.0.0.1:80x': use HOST:PORT, e.g. 0.0.0.0:8080",
        "serve.yaml:5:8: store.url: unsupported store URL scheme 'mysql': use sqlite:/// or "
        "postgresql://",
        "serve.yaml:6:3: unknown field 'retntion' (did you mean 'retention'?)",
        "serve.yaml:11:5: releases.0: a release rule needs suites, discover: true, or both",
        "serve.yaml:14:12: schedules.0.name: String should match pattern "
        "'^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$'",
        "serve.yaml:14:29: schedules.0.every: at least 10s",
        "serve.yaml:9:15: webhooks.flux.secrets.0: give exactly one of env, file, value",
    ]


def test_a_known_field_in_the_wrong_block_says_so(tmp_path: Path) -> None:
    text = HEAD + "store:\n  url: sqlite:///x.db\n  listen: 0.0.0.0:8080\n"
    assert problems(text, tmp_path) == [
        "serve.yaml:5:3: unknown field 'listen' ('listen' is a field of other blocks, not of "
        "this one)"
    ]


def test_wrong_kind_syntax_errors_and_missing_file(tmp_path: Path) -> None:
    assert problems("apiVersion: v1\nkind: Suite\n", tmp_path) == [
        "serve.yaml:1:13: apiVersion must be 'smokegate.io/v1'",
        "serve.yaml:2:7: kind must be 'ServerConfig'",
    ]
    assert problems(HEAD + "listen: [\n", tmp_path)[0].startswith("serve.yaml:4:1: YAML:")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "missing.yaml"))


def test_suite_names_are_checked_against_the_directories(tmp_path: Path) -> None:
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "web.yaml").write_text(
        "apiVersion: smokegate.io/v1\nkind: Suite\nmetadata: {name: web}\n"
        "spec:\n  checks:\n    - {name: a, tcp: {host: 127.0.0.1, port: 1}}\n"
    )
    text = HEAD + textwrap.dedent(
        """\
        suites: {directories: [suites, nowhere]}
        releases:
          - suites: [web, wbe]
        """
    )
    assert problems(text, tmp_path) == [f"serve.yaml:3:32: {tmp_path / 'nowhere'}: not a directory"]
    text = text.replace(", nowhere", "")
    assert problems(text, tmp_path) == ["serve.yaml:5:19: no suite named 'wbe' (suites: web)"]


def test_secrets_come_from_env_or_file_and_never_print(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("from-a-file\n")
    cfg = parse_config(
        HEAD
        + f"webhooks: {{flux: {{secrets: [{{env: SG_X}}, {{file: {secret_file}}}, inline]}}}}\n",
        str(tmp_path / "serve.yaml"),
    )
    monkeypatch.setenv("SG_X", "from-env")
    values = [ref.resolve() for ref in cfg.webhooks.flux.secrets]
    assert [v.reveal() for v in values] == ["from-env", "from-a-file", "inline"]
    assert "from-env" not in repr(values) and "inline" not in repr(cfg)
    monkeypatch.delenv("SG_X")
    with pytest.raises(ConfigError, match=r"\$SG_X is not set"):
        cfg.webhooks.flux.secrets[0].resolve()


def test_rules_match_namespace_name_and_labels(tmp_path: Path) -> None:
    cfg = parse_config(
        HEAD
        + textwrap.dedent(
            """\
            releases:
              - match: {namespace: apps, name: "pod*", labels: {tier: web}}
                suites: [a]
              - match: {namespace: "team-*"}
                suites: [b]
            """
        ),
        str(tmp_path / "serve.yaml"),
        check_suites=False,
    )
    assert cfg.rule_for("apps", "podinfo", {"tier": "web"}).suites == ["a"]  # type: ignore[union-attr]
    assert cfg.rule_for("apps", "podinfo", {}) is None
    assert cfg.rule_for("team-x", "any").suites == ["b"]  # type: ignore[union-attr]


def test_discover_rules_need_no_suites_and_a_rule_needs_one_or_the_other(tmp_path: Path) -> None:
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "web.yaml").write_text(
        "apiVersion: smokegate.io/v1\nkind: Suite\nmetadata: {name: web}\n"
        "spec:\n  checks:\n    - {name: a, tcp: {host: 127.0.0.1, port: 1}}\n"
    )
    path = tmp_path / "serve.yaml"
    path.write_text(
        HEAD
        + textwrap.dedent(
            """\
            suites: {directories: [suites]}
            releases:
              - match: {namespace: apps}
                discover: true
                resolve: ["web.apps.svc.cluster.local:80:127.0.0.1"]
              - match: {namespace: shop}
                suites: [web]
                discover: true
              - match: {namespace: "*"}
                suites: [web]
            """
        )
    )
    cfg = load_config(str(path))  # suite names checked too: none to check in the first rule
    first, second, third = cfg.releases
    assert (first.suites, first.discover) == ([], True)
    assert first.resolve_table() == {("web.apps.svc.cluster.local", 80): "127.0.0.1"}
    assert (second.suites, second.discover) == (["web"], True)
    assert (third.discover, third.resolve) == (False, [])
    # Neither suites nor discover: located at the rule; a bad resolve entry at the entry.
    text = HEAD + textwrap.dedent(
        """\
        releases:
          - match: {namespace: apps}
            vars: {a: b}
          - match: {namespace: shop}
            discover: false
            suites: []
          - discover: true
            resolve: [web.apps.svc.cluster.local:80:127.0.0.1, "web:80"]
        """
    )
    assert problems(text, tmp_path, check_suites=False) == [
        "serve.yaml:4:5: releases.0: a release rule needs suites, discover: true, or both",
        "serve.yaml:6:5: releases.1: a release rule needs suites, discover: true, or both",
        "serve.yaml:10:56: releases.2.resolve.1: resolve entry 'web:80' must look like "
        "host:port:address",
    ]


def test_discover_annotation_values() -> None:
    def hr(value: str | None) -> dict[str, object]:
        annotations = {} if value is None else {"smokegate.io/discover": value}
        return {"metadata": {"name": "web", "annotations": annotations}}

    assert discover_annotation(hr("true")) is True
    assert discover_annotation(hr(" True ")) is True
    assert discover_annotation(hr("false")) is False
    assert discover_annotation(hr(None)) is None
    assert discover_annotation(hr("maybe")) is None
    assert discover_annotation(None) is None


def test_example_config_in_the_docs_is_valid(tmp_path: Path) -> None:
    text = (REPO / "docs" / "server.md").read_text()
    block = text.split("```yaml\n# serve.yaml", 1)[1].split("```", 1)[0]
    (tmp_path / "suites").mkdir()
    cfg = parse_config("# serve.yaml" + block, str(tmp_path / "serve.yaml"), check_suites=False)
    assert cfg.kubernetes.enabled
