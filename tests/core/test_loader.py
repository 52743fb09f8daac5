"""Suite loading: every problem reported as file:line:col, exit 2, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smokegate.api import plan_run
from smokegate.core.errors import SuiteError
from tests.helpers import run_cli, write_suite

MISSPELLED = """\
apiVersion: smokegate.io/v1
kind: Suite
metadata:
  name: shop
spec:
  defaults:
    timeout: 5s
  checks:
    - name: healthz
      http:
        url: http://127.0.0.1:9/healthz
        expectt:
          status: 200
"""


def test_misspelled_field_on_line_12_exit_2_with_position(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(MISSPELLED)
    assert MISSPELLED.splitlines()[11].strip() == "expectt:"
    res = run_cli("run", str(suite))
    assert res.code == 2
    assert f"{suite}:12:9: unknown field 'expectt' (did you mean 'expect'?)" in res.err
    assert "Traceback" not in res.text


def test_all_problems_listed_at_once(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        """
        - name: a
          timeout: 5 parsecs
          http: {url: "http://x"}
        - name: a
          http: {url: "http://x", expect: {status: 777}}
        - name: b
          tcp: {host: x, port: 1}
          http: {url: "http://x"}
        - name: c
          retry: {attempts: zero}
          http: {url: "ftp://x"}
        - name: d
    """,
    )
    res = run_cli("lint", str(suite))
    assert res.code == 2
    lines = [ln.strip() for ln in res.err.splitlines() if ln.strip().startswith(str(suite))]
    text = "\n".join(lines)
    assert f"{suite}:7:16: " in text and "invalid duration '5 parsecs'" in text
    assert "invalid status 777" in text
    assert "one kind per check: found tcp and http" in text
    assert "retry.attempts" in text and "integer" in text
    assert "url must be http:// or https://" in text
    assert "a check needs exactly one kind key" in text
    assert len(lines) >= 6


def test_duplicate_check_names(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        """
        - name: same
          http: {url: "http://x"}
        - name: same
          http: {url: "http://y"}
    """,
    )
    with pytest.raises(SuiteError) as err:
        plan_run([str(suite)])
    (problem,) = err.value.problems
    assert problem.line == 8 and "duplicate check name 'same'" in problem.message


def test_yaml_syntax_error_has_position(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: smokegate.io/v1\nkind: Suite\nspec: [unclosed\nmetadata: {}\n")
    res = run_cli("lint", str(bad))
    assert res.code == 2
    assert f"{bad}:4:" in res.err and "YAML" in res.err


def test_wrong_api_version_and_kind(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v0\nkind: Suite\nmetadata: {name: x}\nspec: {}\n")
    res = run_cli("lint", str(bad))
    assert res.code == 2 and f"{bad}:1:13:" in res.err and "smokegate.io/v1" in res.err


def test_variables_cli_env_defaults_and_escape(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        """
        - name: a
          http:
            url: "${base}/${env:SG_TEST_PATH}"
            headers: {X-Lit: "$${notavar}", X-Def: "${missing:-fallback}", X-Env: "${env:NOPE:-e}"}
    """,
        extra_spec="vars: {base: 'http://suite'}",
    )
    plan = plan_run([str(suite)], cli_vars={"base": "http://cli"}, env={"SG_TEST_PATH": "p"})
    spec = plan.checks[0].spec
    assert spec.url == "http://cli/p"
    assert spec.headers == {"X-Lit": "${notavar}", "X-Def": "fallback", "X-Env": "e"}


def test_unresolved_variable_is_located(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        """
        - name: a
          http: {url: "${base}/x"}
        - name: b
          http: {url: "http://h/${env:SG_DEFINITELY_UNSET}"}
    """,
    )
    res = run_cli("lint", str(suite))
    assert res.code == 2
    assert f"{suite}:7:19: undefined variable ${{base}}" in res.err
    assert f"{suite}:9:19: environment variable 'SG_DEFINITELY_UNSET' is not set" in res.err


def test_several_files_and_directories(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    write_suite(
        tmp_path / "d", "- {name: one, http: {url: 'http://a'}}", name="s1", filename="a.yaml"
    )
    write_suite(
        tmp_path / "d", "- {name: two, http: {url: 'http://b'}}", name="s2", filename="b.yml"
    )
    other = write_suite(tmp_path, "- {name: three, http: {url: 'http://c'}}", name="s3")
    plan = plan_run([str(tmp_path / "d"), str(other)])
    assert [c.id for c in plan.checks] == ["s1/one", "s2/two", "s3/three"]
    res = run_cli("lint", str(tmp_path / "d"), str(other))
    assert res.code == 0 and "3 suites, 3 checks" in res.out


def test_duplicate_suite_names_across_files(tmp_path: Path) -> None:
    a = write_suite(tmp_path, "- {name: one, http: {url: 'http://a'}}", filename="a.yaml")
    b = write_suite(tmp_path, "- {name: two, http: {url: 'http://a'}}", filename="b.yaml")
    res = run_cli("lint", str(a), str(b))
    assert res.code == 2 and "duplicate suite name 't'" in res.err


def test_missing_path_is_usage_error(tmp_path: Path) -> None:
    res = run_cli("run", str(tmp_path / "nope.yaml"))
    assert res.code == 2 and "no such file or directory" in res.err


def test_matrix_expands_named_instances(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        """
        - name: page-${p}
          matrix: {p: [home, about]}
          http: {url: "http://site/${p}"}
        - name: shard
          matrix: {n: {range: [0, 3]}}
          http: {url: "http://db-${n}"}
        - name: after
          needs: [shard]
          http: {url: "http://x"}
    """,
    )
    plan = plan_run([str(suite)])
    names = [c.name for c in plan.checks]
    assert names == ["page-home", "page-about", "shard[n=0]", "shard[n=1]", "shard[n=2]", "after"]
    assert plan.checks[3].spec.url == "http://db-1"
    assert plan.checks[-1].needs == ("t/shard[n=0]", "t/shard[n=1]", "t/shard[n=2]")


def test_needs_unknown_and_cycle(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        """
        - {name: a, needs: [b], http: {url: "http://x"}}
        - {name: b, needs: [a], http: {url: "http://x"}}
        - {name: c, needs: [ghost], http: {url: "http://x"}}
    """,
    )
    with pytest.raises(SuiteError) as err:
        plan_run([str(suite)])
    text = str(err.value)
    assert "needs unknown check 'ghost'" in text
    assert "`needs` cycle: a -> b -> a" in text


def test_retry_block_merges_with_defaults(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        """
        - name: a
          retry: {attempts: 4}
          http: {url: "http://x"}
    """,
        extra_spec="defaults: {timeout: 3s, retry: {interval: 250ms, backoff: 2}}",
    )
    (check,) = plan_run([str(suite)]).checks
    assert check.timeout == 3.0
    assert (check.retry.attempts, check.retry.interval, check.retry.backoff) == (4, 0.25, 2.0)


def test_schema_is_valid_and_accepts_the_demo_suite(tmp_path: Path) -> None:
    import jsonschema
    from ruamel.yaml import YAML

    res = run_cli("schema")
    assert res.code == 0
    schema = json.loads(res.out)
    jsonschema.Draft202012Validator.check_schema(schema)
    demo = YAML(typ="safe").load(Path("src/smokegate/demo/demo.yaml").read_text())
    jsonschema.Draft202012Validator(schema).validate(demo)
    demo["spec"]["checks"][0]["http"]["bogus"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(demo)


def test_lint_knows_release_facts_but_not_misspelt_ones(tmp_path: Path) -> None:
    ok = write_suite(
        tmp_path, '- {name: v, http: {url: "http://x/${release.appVersion}/${release.name}"}}'
    )
    assert run_cli("lint", str(ok)).code == 0
    bad = write_suite(
        tmp_path, '- {name: v, http: {url: "http://x/${release.appversion}"}}', filename="b.yaml"
    )
    res = run_cli("lint", str(bad))
    assert res.code == 2 and "undefined variable ${release.appversion}" in res.err
    # `run` has no release: the fact must come from `gate` or a --var.
    res = run_cli("run", str(ok), "--list")
    assert res.code == 0  # --list plans like lint
    res = run_cli("run", str(ok))
    assert res.code == 2 and "undefined variable ${release.appVersion}" in res.err


def test_known_field_in_wrong_block_is_not_suggested_back(tmp_path: Path) -> None:
    """'timeout' is valid on a check but not inside 'exec:'; the hint must not echo it."""
    suite = write_suite(
        tmp_path,
        """
        - name: script
          exec:
            command: ["true"]
            timeout: 5s
    """,
    )
    res = run_cli("lint", str(suite))
    assert res.code == 2
    assert "unknown field 'timeout'" in res.err
    assert "did you mean 'timeout'" not in res.err
    assert "'timeout' is a field of other blocks, not of this one" in res.err


def test_alias_bomb_is_refused_fast_at_its_position(tmp_path: Path) -> None:
    """Nine levels of nine aliases name 9^9 values; the loader stops at MAX_ALIAS_VALUES."""
    lines = ["apiVersion: smokegate.io/v1", "kind: Suite", "metadata: {name: bomb}", "x:"]
    lines.append('  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]')
    for level in range(1, 9):
        refs = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"  l{level}: &l{level} [{refs}]")
    lines.append("spec: {checks: []}")
    suite = tmp_path / "bomb.yaml"
    suite.write_text("\n".join(lines) + "\n")
    res = run_cli("lint", str(suite))
    assert res.code == 2
    # Located at the anchor whose alias crosses the limit (an alias in l5 expands &l4, line 9);
    # ruamel gives an alias the position of its anchor.
    assert f"{suite}:9:7: YAML: aliases expand" in res.err
    assert "to more than 100,000 values (limit reached in an alias of this anchor)" in res.err
    assert "Traceback" not in res.text


def test_anchors_and_merge_keys_within_the_limit_still_work(tmp_path: Path) -> None:
    suite = tmp_path / "anchors.yaml"
    suite.write_text(
        """\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: anchors}
spec:
  checks:
    - &base
      name: one
      exec: {command: ["true"]}
      retry: {attempts: 2, interval: 1s}
    - <<: *base
      name: two
"""
    )
    plan = plan_run([str(suite)])
    assert [c.name for c in plan.checks] == ["one", "two"]


def test_schema_describes_fields_with_their_docstrings() -> None:
    """Field docstrings are read when the schema is generated (suite.schemadocs), not by
    pydantic at import: every one of them is still a description in the schema."""
    from smokegate.suite.model import SuiteDoc, _model_args, json_schema, kind_models
    from smokegate.suite.schemadocs import field_docs

    schema = json.loads(json.dumps(json_schema()))
    descriptions: set[str] = set()

    def collect(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("description"), str):
                descriptions.add(node["description"])
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect(schema)
    todo, seen, docs = [SuiteDoc, *kind_models().values()], set(), set()
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        docs.update(field_docs(cls).values())
        for info in cls.model_fields.values():
            todo.extend(_model_args(info.annotation))
    # (json_schema() replaces spec.checks with the union of the kinds, without its docstring.)
    docs.discard(field_docs(SuiteDoc.model_fields["spec"].annotation)["checks"])
    assert len(docs) > 100
    assert docs <= descriptions
    defaults = schema["$defs"]["Defaults"]["properties"]
    assert defaults["timeout"]["description"] == "Per-attempt timeout."  # over Duration's own


@pytest.mark.parametrize("tab", ["", " #\tcomment"], ids=["libyaml", "ruamel"])
def test_nesting_is_limited_to_100_levels_in_both_readers(tmp_path: Path, tab: str) -> None:
    """100 levels load; 101 are refused at the 101st (a tab sends the text to ruamel)."""
    from smokegate.suite.yamldoc import MAX_NESTING
    from smokegate.suite.yamlpos import load_documents

    def text(levels: int) -> str:
        # The document itself is level 1, so `x:` holds levels - 1 more.
        return "x: " + "[" * (levels - 1) + "1" + "]" * (levels - 1) + tab + "\n"

    (doc,) = load_documents(text(MAX_NESTING), "f.yaml")
    depth, value = 1, doc.data["x"]
    while isinstance(value, list):
        depth, value = depth + 1, value[0]
    assert (depth, value) == (MAX_NESTING, 1)
    with pytest.raises(Exception) as info:
        load_documents(text(MAX_NESTING + 1), "f.yaml")
    assert [str(p) for p in info.value.problems] == [  # type: ignore[attr-defined]
        f"f.yaml:1:{4 + MAX_NESTING - 1}: YAML: nested deeper than {MAX_NESTING} levels"
    ]
