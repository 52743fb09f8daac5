"""The ``newman`` kind: the real newman (npm registry, installed by
scripts/install-test-tools.sh) running a real Postman collection against a real nginx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from junitparser import JUnitXml
from tests.helpers import load_json, run_cli, write_suite
from tests.servers.nginx import NginxServer
from tests.tools import NEWMAN, tool


@pytest.fixture(scope="module")
def nginx() -> Iterator[NginxServer]:
    with NginxServer() as srv:
        yield srv


def request(name: str, path: str, test: str) -> dict:
    return {
        "name": name,
        "request": {"method": "GET", "url": "{{base_url}}" + path},
        "event": [{"listen": "test", "script": {"exec": [test]}}],
    }


COLLECTION = {
    "info": {
        "name": "shop",
        "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
    },
    "item": [
        request(
            "json ok",
            "/json",
            "pm.test('status is 200', function () { pm.response.to.have.status(200); });",
        ),
        request(
            "version",
            "/json",
            "pm.test('version is 2.0.0', function () "
            "{ pm.expect(pm.response.json().version).to.eql('2.0.0'); });",
        ),
        request(
            "missing page",
            "/status/404",
            "pm.test('answers 404', function () { pm.response.to.have.status(404); });",
        ),
    ],
}


def write(tmp_path: Path, collection: dict, check: str, port: int) -> Path:
    (tmp_path / "shop.postman_collection.json").write_text(json.dumps(collection))
    extra = (
        f"vars:\n  base_url: http://127.0.0.1:{port}\n"
        "  token: {value: nm-5ecret-tok, secret: true}"
    )
    return write_suite(tmp_path, check, extra_spec=extra)


CHECK = f"""- name: contract
  newman:
    collection: shop.postman_collection.json
    bin: {NEWMAN}
"""


def test_three_requests_one_failing_assertion(tmp_path: Path, nginx: NginxServer) -> None:
    tool(NEWMAN)
    suite = write(tmp_path, COLLECTION, CHECK, nginx.port)
    out = tmp_path / "out"
    cli = run_cli("run", str(suite), f"--report=json={out}.json", f"--report=junit={out}.xml")
    assert cli.code == 1, cli.text
    (r,) = load_json(Path(f"{out}.json"))["results"]
    assert r["kind"] == "newman" and r["status"] == "failed"
    assert [(c["classname"], c["name"], c["status"]) for c in r["cases"]] == [
        ("json ok", "status is 200", "passed"),
        ("version", "version is 2.0.0", "failed"),
        ("missing page", "answers 404", "passed"),
    ]
    failed = r["cases"][1]
    assert failed["message"] == "expected '1.2.3' to deeply equal '2.0.0'"
    assert failed["failureType"] == "AssertionFailure"
    assert r["message"] == (
        "1 of 3 cases failed: version.version is 2.0.0: expected '1.2.3' to deeply equal '2.0.0'"
    )
    assert "GET http://127.0.0.1:" in r["log"]  # newman's cli reporter output is the log
    (junit_suite,) = list(JUnitXml.fromfile(f"{out}.xml"))
    assert (junit_suite.tests, junit_suite.failures) == (4, 2)
    bad = [c for c in junit_suite if c.result and "/" in c.name]
    assert [(c.name, c.result[0].message) for c in bad] == [
        ("contract/version.version is 2.0.0", failed["message"])
    ]
    # Selecting the passing requests' assertions only: the check passes.
    cli = run_cli("run", str(suite), "-k", "contract/json ok.*", "-k", "contract/missing*")
    assert cli.code == 0, cli.text


def test_variables_and_secrets(tmp_path: Path, nginx: NginxServer) -> None:
    """`variables` override the environment file, which overrides suite vars; a secret reaches
    the collection and is masked in what newman printed and in every report."""
    collection = {
        "info": COLLECTION["info"],
        "item": [
            request(
                "token",
                "/json",
                "pm.test('token is other', function () "
                "{ console.log('tok=' + pm.environment.get('token'));"
                " pm.expect(pm.environment.get('token')).to.eql('other'); });",
            ),
            request(
                "layers",
                "/json",
                "pm.test('layers', function () { pm.expect([pm.environment.get('a'),"
                " pm.environment.get('b'), pm.environment.get('release.revision')])"
                ".to.eql(['file', 'spec', '9']); });",
            ),
        ],
    }
    env = {"values": [{"key": "a", "value": "file", "enabled": True}, {"key": "b", "value": "x"}]}
    (tmp_path / "env.json").write_text(json.dumps(env))
    check = CHECK + "    environment: env.json\n    variables: {b: spec, token: '${token}'}\n"
    suite = write(tmp_path, collection, check, nginx.port)
    out = tmp_path / "out"
    cli = run_cli(
        "run",
        str(suite),
        "--var",
        "release.revision=9",
        f"--report=json={out}.json",
        f"--report=html={out}.html",
    )
    (r,) = load_json(Path(f"{out}.json"))["results"]
    cases = {c["classname"]: c for c in r["cases"]}
    assert cases["layers"]["status"] == "passed", cases["layers"]
    assert cases["token"]["message"] == "expected '***' to deeply equal 'other'"
    assert "tok=***" in r["log"]
    for text in (cli.text, Path(f"{out}.json").read_text(), Path(f"{out}.html").read_text()):
        assert "nm-5ecret-tok" not in text


def test_unreachable_target_and_missing_newman(tmp_path: Path) -> None:
    tool(NEWMAN)
    suite = write(tmp_path, COLLECTION, CHECK, 1)
    report = tmp_path / "r.json"
    cli = run_cli("run", str(suite), f"--report=json={report}")
    (r,) = load_json(report)["results"]
    assert cli.code == 1 and len(r["cases"]) == 3
    assert all(c["status"] == "failed" for c in r["cases"])
    assert "ECONNREFUSED 127.0.0.1:1" in r["cases"][0]["output"]
    suite = write(tmp_path, COLLECTION, CHECK.replace(str(NEWMAN), "/nonexistent/bin/newman"), 1)
    cli = run_cli("lint", str(suite))
    assert cli.code == 2
    assert (
        "/nonexistent/bin/newman is not installed (not on PATH); install it with:  "
        "npm install -g newman@6"
    ) in cli.text
