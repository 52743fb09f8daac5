"""Variables in Secret references (``secretRef: {name: "${release.name}-db"}``,
``${secret:${ns}/name/key}``): which Secrets the pre-fetch scan asks for, how compiling looks
them up, and the located errors when a part cannot be expanded. No cluster: Secret values are
handed to ``plan_run`` the way ``fetch_suite_secrets`` does after reading them."""

from __future__ import annotations

from pathlib import Path

import pytest

from smokegate.api import plan_run, suite_secret_keys
from smokegate.core.errors import SuiteError
from smokegate.suite.interpolate import (
    NeedsSecret,
    Scope,
    SecretKey,
    UnresolvedVariable,
    references,
)
from smokegate.suite.loader import parse_suites
from smokegate.suite.secretscan import secret_keys
from tests.helpers import run_cli, write_suite

RELEASE = {"release.name": "shop-web", "release.namespace": "apps"}


def header(plan: object, check: str, name: str) -> str:
    (found,) = [c for c in plan.checks if c.name == check]  # type: ignore[attr-defined]
    return found.spec.headers[name]


# --- Scope: expansion at compile time ------------------------------------------------------------


def test_scope_expands_variables_in_both_reference_forms() -> None:
    key = SecretKey("apps", "shop-web-db", "dsn")
    scope = Scope(values={**RELEASE, "k": "dsn"}, secrets={key: "postgres://s3cr3t"})
    assert scope.expand("${secret:${release.namespace}/${release.name}-db/${k}}") == (
        "postgres://s3cr3t"
    )
    ref = {"secretRef": {"name": "${release.name}-db", "key": "${k}", "namespace": "apps"}}
    assert scope.expand({"h": ref}) == {"h": "postgres://s3cr3t"}
    assert scope.redactor.redact("dsn=postgres://s3cr3t") == "dsn=***"


def test_nesting_does_not_change_plain_strings() -> None:
    scope = Scope(values={"a": 1, "b": "B"}, env={"E": "e"})
    assert scope.expand("${a}") == 1  # a whole reference keeps its type
    assert scope.expand("x${a}-${b} $${lit} ${env:E} {json: ${b}}") == "x1-B ${lit} e {json: B}"
    assert scope.expand("${nope:-${a}}") == 1  # defaults may use variables now
    assert scope.expand("${a{b}} ${b}") == "${a{b}} B"  # a bare brace: literal, as before
    assert references("${secret:${ns}/a/b} ${x:-${y}}") == {
        "secret:${ns}/a/b",
        "ns",
        "x:-${y}",
        "y",
    }


def test_unresolvable_parts_are_located_at_the_part() -> None:
    scope = Scope(values=RELEASE)
    with pytest.raises(UnresolvedVariable) as exc:
        scope.expand({"secretRef": {"name": "${release.nmae}-db", "key": "dsn"}}, ("h",))
    assert exc.value.path == ("h", "secretRef", "name")
    assert "undefined variable ${release.nmae}" in exc.value.message
    with pytest.raises(UnresolvedVariable, match="secretRef key is empty"):
        scope.expand({"secretRef": {"name": "db", "key": "${empty:-}"}}, ("h",))
    with pytest.raises(UnresolvedVariable, match="must be NAME/KEY"):
        scope.expand("${secret:${release.name}}")
    # A Secret's value never names a Secret (it is not known when Secrets are fetched).
    secrets = {SecretKey(None, "a", "b"): "db"}
    with pytest.raises(NeedsSecret, match="cannot use a value read from a Secret"):
        Scope(secrets=secrets).expand("${secret:${secret:a/b}/k}")


# --- the pre-fetch scan --------------------------------------------------------------------------


def test_secret_keys_without_a_scope_skips_what_it_cannot_know() -> None:
    data = {
        "a": "${secret:db/pw}",
        "b": {"secretRef": {"name": "${x}-db", "key": "k"}},
        "c": "${secret:${ns}/db/pw}",
        "d": ["${nope:-${secret:other/pw}}"],
    }
    assert secret_keys(data) == {SecretKey(None, "db", "pw"), SecretKey(None, "other", "pw")}
    scope = Scope(values={"x": "api", "ns": "apps"})
    assert secret_keys(data, scope) == {
        SecretKey(None, "db", "pw"),
        SecretKey(None, "api-db", "k"),
        SecretKey("apps", "db", "pw"),
        SecretKey(None, "other", "pw"),
    }


SUITE = """
- name: by-ref
  http:
    url: http://x/
    headers:
      X-Ref: {secretRef: {name: "${release.name}-db", key: "${key}", namespace: "${env:SG_NS}"}}
      X-Path: "${secret:${app}/token}"
- name: per-env
  matrix: {stage: [dev, prod]}
  http:
    url: http://x/
    headers: {X-Stage: "${secret:${stage}-creds/pw}"}
"""
VARS = """vars:
  app: ${release.name}-api
  key: ${kind}
  kind: dsn
  token: ${secret:${app}/token}
"""


def test_scan_uses_release_facts_vars_cli_vars_env_and_matrix(tmp_path: Path) -> None:
    raws = parse_suites([str(write_suite(tmp_path, SUITE, extra_spec=VARS))])
    wanted = suite_secret_keys(
        raws, "apps", "ctx-ns", cli_vars={"kind": "url"}, release_vars=RELEASE,
        env={"SG_NS": "data"},
    )  # fmt: skip
    # -n (or the release's namespace) applies to references that name none.
    assert {lookup: fetch for lookup, (fetch, _) in wanted.items()} == {
        SecretKey("data", "shop-web-db", "url"): SecretKey("data", "shop-web-db", "url"),
        SecretKey("apps", "shop-web-api", "token"): SecretKey("apps", "shop-web-api", "token"),
        SecretKey("apps", "dev-creds", "pw"): SecretKey("apps", "dev-creds", "pw"),
        SecretKey("apps", "prod-creds", "pw"): SecretKey("apps", "prod-creds", "pw"),
    }
    # Without -n or spec.release.namespace, namespace-less keys are read from the context's.
    wanted = suite_secret_keys(raws, None, "ctx-ns", release_vars=RELEASE, env={"SG_NS": "data"})
    assert wanted[SecretKey(None, "shop-web-api", "token")][0] == SecretKey(
        "ctx-ns", "shop-web-api", "token"
    )
    assert SecretKey("data", "shop-web-db", "dsn") in wanted  # `key` from the suite's vars


def test_compiling_finds_what_the_scan_fetched(tmp_path: Path) -> None:
    """The keys the scan produced, filled with values, are exactly what compiling looks up."""
    suite = write_suite(tmp_path, SUITE, extra_spec=VARS)
    raws = parse_suites([str(suite)])
    env = {"SG_NS": "data"}
    wanted = suite_secret_keys(raws, "apps", "ctx", release_vars=RELEASE, env=env)
    values = {lookup: f"value-of-{fetch.name}/{fetch.key}" for lookup, (fetch, _) in wanted.items()}
    plan = plan_run(
        [str(suite)], release_vars=RELEASE, env=env, secrets=values, default_namespace="apps"
    )
    assert header(plan, "by-ref", "X-Ref") == "value-of-shop-web-db/dsn"
    assert header(plan, "by-ref", "X-Path") == "value-of-shop-web-api/token"
    assert header(plan, "per-env[stage=prod]", "X-Stage") == "value-of-prod-creds/pw"
    assert plan.redactor.redact("value-of-dev-creds/pw") == "***"


def test_a_var_that_needs_a_secret_cannot_name_one(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        """
- name: a
  http:
    url: http://x/
    headers: {X-A: {secretRef: {name: "${derived}", key: k}}}
""",
        extra_spec="vars:\n  tok: ${secret:api/token}\n  derived: ${tok}-db",
    )
    raws = parse_suites([str(suite)])
    with pytest.raises(SuiteError) as exc:
        suite_secret_keys(raws, "apps", "ctx")
    (problem,) = exc.value.problems
    assert str(problem).startswith(
        f"{suite}:12:43: ${{derived}} cannot name a Secret: var 'derived' needs a Secret's value"
    )
    # lint has no cluster, yet reports it (with placeholders the run itself would not fail).
    res = run_cli("lint", str(suite))
    assert res.code == 2 and f"{suite}:12:43: ${{derived}} cannot name a Secret" in res.err
    assert "Traceback" not in res.text


def test_unresolvable_parts_are_located_suite_errors_without_a_cluster(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        """
- name: a
  http:
    url: http://x/
    headers: {X-A: {secretRef: {name: "${app}-db", key: dsn}}}
- name: b
  http: {url: "http://x/${secret:${release.name}/k}"}
""",
    )
    res = run_cli("lint", str(suite), env={"KUBECONFIG": str(tmp_path / "none")})
    assert res.code == 2, res.text
    assert f"{suite}:9:43: undefined variable ${{app}}" in res.err
    # lint stands in for release facts (they come from `gate`); `run` has none, so there the
    # second reference is located too, before contacting any cluster (there is none here).
    assert "undefined variable ${release.name}" not in res.err
    res = run_cli("run", str(suite), env={"KUBECONFIG": str(tmp_path / "none")})
    assert res.code == 2 and f"{suite}:9:43: undefined variable ${{app}}" in res.err
    assert f"{suite}:11:19: undefined variable ${{release.name}}" in res.err
    # With the values given, lint passes: Secret references get placeholders.
    res = run_cli(
        "lint", str(suite), "--var", "app=shop", "--var", "release.name=web",
        env={"KUBECONFIG": str(tmp_path / "none")},
    )  # fmt: skip
    assert res.code == 0, res.text
