"""Secrets as a type (issue 16): a value from a Secret or a ``secret: true`` var is a ``Secret``
from interpolation to the driver call, and no spec of any kind prints it.

The registry is iterated, so a new kind is covered the day it is registered: it needs a sample
here (the test says so), and then every string of that sample is tried with a secret in it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smokegate.api import plan_run
from smokegate.checks import KINDS
from smokegate.core.errors import SuiteError
from smokegate.core.secrets import MASK, Redactor, Secret, masked, reveal
from smokegate.suite.interpolate import Scope, SecretKey
from tests.tools import K6, NEWMAN

PW = "hunter22"

# One valid check per kind, with as many string fields as it has.
SAMPLES: dict[str, dict[str, Any]] = {
    "http": {
        "url": "http://127.0.0.1:1/path",
        "headers": {"X-Token": "t"},
        "query": {"q": "v", "more": ["a"]},
        "body": "b",
        "basicAuth": {"username": "u", "password": "p"},
        "tls": {"ca": "/etc/ca.pem"},
        "resolve": ["h:80:127.0.0.1"],
        "expect": {
            "status": 200,
            "headers": {"X-A": "a", "X-B": {"regex": "^b"}},
            "body": {"contains": "c", "notContains": ["n"]},
            "json": {"$.a": "b"},
        },
    },
    "tcp": {
        "host": "h",
        "port": 1,
        "send": "s",
        "tls": {"serverName": "n", "ca": "/etc/ca.pem"},
        "expect": {"banner": "^x", "contains": "c", "notContains": ["n"]},
    },
    "dns": {
        "name": "example.com",
        "nameserver": "127.0.0.1",
        "expect": {"contains": ["1.2.3.4"], "equals": ["1.2.3.4"]},
    },
    "tls": {
        "host": "h",
        "serverName": "n",
        "ca": "/etc/ca.pem",
        "expect": {"subject": "s", "issuer": "i", "sans": ["a"]},
    },
    "exec": {
        "command": ["echo", "hi"],
        "env": {"A": "b"},
        "cwd": "/tmp",
        "stdin": "x",
        "expect": {"stdout": {"contains": "c", "regex": "^x", "equals": "e"}},
    },
    "postgres": {
        "dsn": "postgresql://u:p@h/db",
        "host": "h",
        "user": "u",
        "password": "p",
        "database": "d",
        "query": "SELECT 1",
        "expect": {"columns": {"a": "b"}, "firstRow": ["x"]},
    },
    "mysql": {
        "dsn": "mysql://u:p@h:3306/db",
        "user": "u",
        "password": "p",
        "query": "SELECT 1",
        "expect": {"columns": {"a": "b"}},
    },
    "redis": {
        "url": "redis://u:p@h",
        "username": "u",
        "password": "p",
        "command": ["GET", "k"],
        "expect": {"reply": "v"},
    },
    "grpc": {
        "target": "h:50051",
        "service": "s",
        "metadata": {"authorization": "Bearer t", "x-id": "i"},
        "tls": {"serverName": "n", "ca": "/etc/ca.pem"},
    },
    "kube": {"exists": {"kind": "ConfigMap", "name": "n", "namespace": "ns"}},
    "helmTest": {"release": "r", "namespace": "ns", "filter": ["a"]},
    "junit": {"command": ["echo", "hi"], "args": ["-x"], "env": {"A": "b"}, "results": "r.xml"},
    "pytest": {"tests": ["t"], "markers": "smoke", "args": ["-x"], "env": {"A": "b"}},
    "newman": {"collection": "c.json", "variables": {"t": "v"}, "bin": str(NEWMAN)},
    "k6": {"script": "s.js", "env": {"T": "v"}, "args": ["--tag", "a=b"], "bin": str(K6)},
}

# Fields that carry credentials to the driver keep the Secret itself (typed ``Text``).
KEPT = {
    "http": {"url", "headers.X-Token", "query.q", "query.more.0", "body", "basicAuth.username",
             "basicAuth.password"},
    "tcp": {"send"},
    "exec": {"command.0", "command.1", "env.A", "stdin"},
    "postgres": {"dsn", "password"},
    "mysql": {"dsn", "password"},
    "redis": {"url", "password"},
    "grpc": {"metadata.authorization", "metadata.x-id"},
    "junit": {"command.1", "args.0", "env.A"},
    "pytest": {"args.0", "env.A"},
    "newman": {"variables.t"},
    "k6": {"env.T", "args.0", "args.1"},
}  # fmt: skip


def _leaves(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _leaves(v, (*path, i))
    elif isinstance(data, str):
        yield path, data


def _with(data: dict[str, Any], path: tuple[Any, ...], value: str) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node: Any = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return out


def _spec(tmp_path: Path, kind: str, body: dict[str, Any]) -> Any:
    """The planned spec of one check whose kind block is ``body``, with a secret var ``pw``."""
    suite = {
        "apiVersion": "smokegate.io/v1",
        "kind": "Suite",
        "metadata": {"name": "s"},
        "spec": {
            "vars": {"pw": {"value": PW, "secret": True}},
            "checks": [{"name": "c", kind: body}],
        },
    }
    path = tmp_path / "suite.yaml"
    path.write_text(json.dumps(suite))  # JSON is YAML
    (check,) = plan_run([str(path)], lint=True).checks
    return check.spec


def test_every_registered_kind_has_a_sample() -> None:
    missing = sorted(set(KINDS) - set(SAMPLES))
    assert not missing, f"add a sample for {missing} to SAMPLES: its specs must not show secrets"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_no_spec_of_any_kind_shows_a_secret(kind: str, tmp_path: Path) -> None:
    """Every string of the kind's sample, with the secret var inside it: ``repr()``, ``str()``
    and the JSON dump show ``***``, never the value; fields typed ``Text`` keep a ``Secret``
    that reveals the text the driver must get."""
    sample = SAMPLES[kind]
    plain = _spec(tmp_path, kind, sample)
    assert PW not in repr(plain)
    tried: list[str] = []
    for path, value in _leaves(sample):
        where = ".".join(map(str, path))
        try:
            spec = _spec(tmp_path, kind, _with(sample, path, value + "${pw}"))
        except SuiteError as exc:  # not valid with the secret appended (an IP address): skip
            assert PW not in str(exc), str(exc)
            continue
        for shown in (repr(spec), str(spec), spec.model_dump_json()):
            assert PW not in shown, f"{kind}.{where}: {shown}"
            assert MASK in shown, f"{kind}.{where}: {shown}"
        held = _field(spec, path)
        if where in KEPT.get(kind, set()):
            assert isinstance(held, Secret), f"{kind}.{where} must keep the Secret: {held!r}"
            assert held.reveal() == value + PW and str(held).endswith(MASK)
        tried.append(where)
    assert len(tried) >= len(list(_leaves(sample))) / 2, tried
    assert KEPT.get(kind, set()) <= set(tried), "KEPT names a field the sample lacks"


def _field(spec: Any, path: tuple[Any, ...]) -> Any:
    """The value at a YAML path (camelCase keys) in a validated spec."""
    from pydantic import BaseModel

    node: Any = spec
    for step in path:
        if isinstance(node, BaseModel):
            name = next(
                (n for n, f in type(node).model_fields.items() if (f.alias or n) == step), step
            )
            node = getattr(node, name)
        else:
            node = node[step]
    return node


def test_interpolation_makes_secret_values_of_secrets_and_strings_that_embed_them() -> None:
    key = SecretKey("apps", "api", "token")
    redactor = Redactor()
    scope = Scope(
        values={"user": "smoke", "pin": 1234},
        secret_names={"pin"},
        secrets={key: Secret("tok-123")},
        default_namespace="apps",
        redactor=redactor,
    )
    bearer = scope.expand("Bearer ${secret:api/token}")
    assert isinstance(bearer, Secret)
    assert str(bearer) == "Bearer ***" and repr(bearer) == "Secret('Bearer ***')"
    assert f"{bearer}" == "Bearer ***" and bearer.reveal() == "Bearer tok-123"
    url = scope.expand("https://${user}:${secret:api/token}@db/x")
    assert str(url) == "https://smoke:***@db/x" and reveal(url) == "https://smoke:tok-123@db/x"
    assert scope.expand("plain ${user}") == "plain smoke"
    assert type(scope.expand("plain ${user}")) is str
    # A var marked `secret: true` is all secret, whatever its type was.
    pin = scope.expand("${pin}")
    assert isinstance(pin, Secret) and pin.reveal() == "1234" and str(pin) == MASK
    headers = scope.expand({"Authorization": "Bearer ${secret:api/token}", "X-Pin": "${pin}"})
    assert json.dumps(masked(headers)) == '{"Authorization": "Bearer ***", "X-Pin": "***"}'
    assert redactor.redact("tok-123 and 1234") == "*** and ***"


def test_a_secret_is_str_like_but_never_prints() -> None:
    s = Secret.concat(["Bearer ", Secret("tok")])
    assert isinstance(s, Secret)
    assert s == "Bearer tok" and s == Secret("Bearer tok") and hash(s) == hash("Bearer tok")
    assert "%s" % s == "Bearer ***" and "{:>11}".format(s) == " Bearer ***"  # noqa: UP031, UP032
    assert s.secret_values() == ["tok"]
    assert copy.deepcopy(s) is s
    assert Secret.concat(["a", "b"]) == "ab" and type(Secret.concat(["a", "b"])) is str
    with pytest.raises(TypeError):
        json.dumps(s)  # no silent JSON of the value: render it with masked() first


@pytest.mark.parametrize(
    ("kind", "body", "field", "shown"),
    [
        ("http", {"url": "https://smoke:pw-123@h/x"}, "url", "https://smoke:***@h/x"),
        ("postgres", {"dsn": "postgresql://u:pw-123@h/db"}, "dsn", "postgresql://u:***@h/db"),
        ("postgres", {"dsn": "host=h password=pw-123"}, "dsn", "host=h password=***"),
        ("mysql", {"dsn": "mysql://u:pw-123@h:3306/db"}, "dsn", "mysql://u:***@h:3306/db"),
        ("redis", {"url": "redis://:pw-123@h:6379/0"}, "url", "redis://:***@h:6379/0"),
    ],
)  # fmt: skip
def test_a_password_written_in_a_url_or_dsn_is_a_secret_too(
    kind: str, body: dict[str, Any], field: str, shown: str, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, kind, body)
    value = getattr(spec, field)
    assert isinstance(value, Secret) and str(value) == shown
    assert value.reveal() == body[field]
    assert "pw-123" not in repr(spec)
