"""Suites reading Kubernetes Secrets (``${secret:…}``, ``secretRef``): the values reach the checks
and appear in no output — terminal, JSON, JUnit, Markdown — even when a server echoes them back.

Secrets live in the real test apiserver; the HTTP service the checks call is a real server on
loopback that only answers 200 to the right token.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_flux import (  # noqa: F401  (kubeconfig_fixture: a fixture)
    apply,
    helmrelease,
    kubeconfig_fixture,
    patch_status,
    status_ready,
)
from kubeenv import KubeEnv
from tests.helpers import run_cli, write_suite

TOKEN = "tok-7f3a9c2e-Secret-Value"
OTHER = "other-ns-Secret-8812"


@pytest.fixture
def token_server() -> Iterator[str]:
    """/ok: 200 with the right X-Token, else 401. /echo: 500 echoing the token in the body (a
    server that leaks what it got). /path...: 404 echoing the request path."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            got = self.headers.get("X-Token", "")
            if self.path == "/ok":
                code = 200 if got in (TOKEN, OTHER) else 401
                body = b"ok" if code == 200 else b"bad token"
            elif self.path == "/echo":
                code, body = (
                    500,
                    f"you sent {got!r}; Authorization={self.headers.get('Authorization')}".encode(),
                )
            else:
                code, body = 404, f"no route {self.path}".encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _secret(env: KubeEnv, ns: str, name: str, **data: str) -> None:
    env.kubectl(
        "create",
        "secret",
        "generic",
        name,
        "-n",
        ns,
        *(f"--from-literal={k}={v}" for k, v in data.items()),
    )


def test_secret_values_are_used_and_never_shown(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path, token_server: str
) -> None:
    ns = kube_namespace
    _secret(kube_env, ns, "api", token=TOKEN)
    suite = write_suite(
        tmp_path,
        f"""
- name: header-interpolated
  http: {{url: "{token_server}/ok", headers: {{X-Token: "${{secret:api/token}}"}}}}
- name: header-secretref
  http: {{url: "{token_server}/ok", headers: {{X-Token: {{secretRef: {{name: api, key: token}}}}}}}}
- name: via-var
  http: {{url: "{token_server}/ok", headers: {{X-Token: "${{tok}}"}}}}
- name: echoed-back
  http:
    url: "{token_server}/echo"
    headers: {{X-Token: "${{secret:api/token}}", Authorization: "Bearer ${{secret:api/token}}"}}
- name: in-the-url
  http:
    url: "{token_server}/path?t=${{secret:api/token}}"
    expect: {{body: {{contains: "${{secret:api/token}}-x"}}}}
- name: kube-secret
  kube: {{secret: {{name: api, values: {{token: "^nope$"}}}}}}
""",
        extra_spec="vars:\n  tok: ${secret:api/token}",
    )
    out = tmp_path / "out"
    r = run_cli(
        "run", str(suite), "--kubeconfig", kubeconfig, "-n", ns, "-v",
        "--report", f"json={out}.json", "--report", f"junit={out}.xml",
        "--report", f"markdown={out}.md",
    )  # fmt: skip
    assert r.code == 1, r.text
    # The value reached the service: these only pass with the right token.
    for name in ("header-interpolated", "header-secretref", "via-var"):
        assert f"✓ t/{name}" in r.out, r.out
    assert "✗ t/echoed-back" in r.out and "✗ t/in-the-url" in r.out
    assert "***" in r.out  # the echoed body is shown, masked
    texts = {"stdout": r.out, "stderr": r.err}
    for suffix in ("json", "xml", "md"):
        texts[suffix] = Path(f"{out}.{suffix}").read_text()
    for where, text in texts.items():
        assert TOKEN not in text, f"secret value leaked to {where}"
        assert TOKEN[4:20] not in text, f"part of the secret leaked to {where}"


def test_secret_references_across_namespaces(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path, token_server: str
) -> None:
    ns = kube_namespace
    other = f"{ns}-o"[:63]
    kube_env.kubectl("create", "namespace", other)
    try:
        _secret(kube_env, other, "shared", token=OTHER)
        suite = write_suite(
            tmp_path,
            f"""
- name: path-form
  http: {{url: "{token_server}/ok", headers: {{X-Token: "${{secret:{other}/shared/token}}"}}}}
- name: ref-form
  http:
    url: "{token_server}/ok"
    headers: {{X-Token: {{secretRef: {{name: shared, key: token, namespace: {other}}}}}}}
""",
        )
        r = run_cli("run", str(suite), "--kubeconfig", kubeconfig, "-n", ns)
        assert r.code == 0, r.text
        assert OTHER not in r.text
    finally:
        kube_env.kubectl("delete", "namespace", other, "--wait=false")


def test_suite_release_namespace_is_the_default_for_secrets(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path, token_server: str
) -> None:
    ns = kube_namespace
    _secret(kube_env, ns, "api", token=TOKEN)
    suite = write_suite(
        tmp_path,
        f'- name: a\n  http: {{url: "{token_server}/ok", '
        'headers: {X-Token: "${secret:api/token}"}}\n',
        extra_spec=f"release: {{helmRelease: podinfo, namespace: {ns}}}",
    )
    r = run_cli("run", str(suite), "--kubeconfig", kubeconfig)  # no -n: the context says "default"
    assert r.code == 0, r.text


def test_missing_secrets_are_suite_errors_listing_every_problem(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path, token_server: str
) -> None:
    ns = kube_namespace
    _secret(kube_env, ns, "api", token=TOKEN, user="svc")
    suite = write_suite(
        tmp_path,
        f"""
- name: a
  http: {{url: "{token_server}/ok", headers: {{X-Token: "${{secret:api/password}}"}}}}
- name: b
  http:
    url: "{token_server}/ok"
    headers: {{X-Token: {{secretRef: {{name: gone, key: token}}}}}}
""",
    )
    r = run_cli("run", str(suite), "--kubeconfig", kubeconfig, "-n", ns)
    assert r.code == 2, r.text
    assert f"secret {ns}/api key 'password': no such key (the Secret has: token, user)" in r.err
    assert f"secret {ns}/gone key 'token': the Secret does not exist" in r.err
    assert str(suite) in r.err
    assert TOKEN not in r.text and "Traceback" not in r.text
    # lint never talks to the cluster: Secret references get a placeholder.
    r = run_cli("lint", str(suite), env={"KUBECONFIG": str(tmp_path / "none")})
    assert r.code == 0, r.text


def test_gate_reads_secrets_from_the_release_namespace(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path, token_server: str
) -> None:
    ns = kube_namespace
    _secret(kube_env, ns, "api", token=TOKEN)
    apply(kube_env, helmrelease("podinfo", ns))
    patch_status(kube_env, "hr", "podinfo", ns, status_ready("podinfo", ns, 1, "6.6.1", version=1))
    suite = write_suite(
        tmp_path,
        f"""
- name: token-works
  http: {{url: "{token_server}/ok", headers: {{X-Token: "${{secret:api/token}}"}}}}
- name: token-echoed
  http: {{url: "{token_server}/echo", headers: {{X-Token: "${{secret:api/token}}"}}}}
- name: named-after-${{secret:api/token}}
  kube: {{exists: {{kind: ConfigMap, name: nope}}}}
""",
    )
    r = run_cli("gate", f"{ns}/podinfo", "--kubeconfig", kubeconfig, str(suite))
    assert r.code == 1, r.text
    assert "✓ t/token-works" in r.out
    assert TOKEN not in r.text
    events = kube_env.kubectl("get", "events", "-n", ns, "-o", "json").stdout
    assert TOKEN not in events
    messages = [e["message"] for e in json.loads(events)["items"]]
    assert messages == ["1 passed, 2 failed: t/token-echoed, t/named-after-***"], messages


def test_secret_names_may_use_release_facts_and_vars(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path, token_server: str
) -> None:
    """``secretRef: {name: "${release.name}-db"}`` under ``gate`` (the facts of the release
    just reconciled), ``${secret:${app}-db/…}`` with a ``--var`` under ``run``."""
    ns = kube_namespace
    _secret(kube_env, ns, "shop-web-db", token=TOKEN)
    apply(kube_env, helmrelease("web", ns, releaseName="shop-web"))
    patch_status(kube_env, "hr", "web", ns, status_ready("shop-web", ns, 1, "6.6.1", version=1))
    suite = write_suite(
        tmp_path,
        f"""
- name: by-release-name
  http:
    url: "{token_server}/ok"
    headers: {{X-Token: {{secretRef: {{name: "${{release.name}}-db", key: "${{key}}"}}}}}}
- name: path-form
  http:
    url: "{token_server}/ok"
    headers: {{X-Token: "${{secret:${{release.namespace}}/${{release.name}}-db/token}}"}}
""",
        extra_spec="vars:\n  key: token",
    )
    r = run_cli("gate", f"{ns}/web", "--kubeconfig", kubeconfig, str(suite))
    assert r.code == 0, r.text
    assert "✓ t/by-release-name" in r.out and "✓ t/path-form" in r.out
    assert TOKEN not in r.text

    suite = write_suite(
        tmp_path,
        f"""
- name: by-var
  http: {{url: "{token_server}/ok", headers: {{X-Token: "${{secret:${{app}}-db/token}}"}}}}
""",
        filename="run.yaml",
    )
    r = run_cli("run", str(suite), "--kubeconfig", kubeconfig, "-n", ns, "--var", "app=shop-web")
    assert r.code == 0, r.text
    assert "✓ t/by-var" in r.out and TOKEN not in r.text
    # Without the --var: a located suite error, nothing read from the cluster, nothing run.
    r = run_cli("run", str(suite), "--kubeconfig", kubeconfig, "-n", ns)
    assert r.code == 2, r.text
    assert f"{suite}:7:" in r.err and "undefined variable ${app}" in r.err
    assert "✓" not in r.out and "Traceback" not in r.text
    # Another value names another Secret, which does not exist: said so, by name.
    r = run_cli("run", str(suite), "--kubeconfig", kubeconfig, "-n", ns, "--var", "app=other")
    assert r.code == 2, r.text
    assert f"secret {ns}/other-db key 'token': the Secret does not exist" in r.err
