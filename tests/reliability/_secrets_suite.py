"""The suite and the servers of test_secrets_everywhere.py: unique secret values (hypothesis),
the real servers the checks talk to, and a suite with a passing and a failing check of every
kind that carries them."""

from __future__ import annotations

import base64
import shutil
import string
import sys
import tempfile
import uuid
from typing import Any
from urllib.parse import quote, quote_plus

import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.support import Target
from tests.servers.dnsmasq import DnsmasqServer
from tests.servers.grpc_health import GrpcHealthServer
from tests.servers.mariadb import MariaDBServer
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer

# Names of the secret values, where each goes in.
KINDS_OF_SECRET = (
    "ref_token",  # Kubernetes Secret, ${secret:creds/token}: HTTP header, failing body check
    "ref_pg",  # Kubernetes Secret, secretRef: the PostgreSQL password (passing check)
    "var",  # `secret: true` var from the environment: headers, exec, tcp, tls, dns
    "userinfo",  # inline URL userinfo (nobody marked it secret)
    "basic",  # basicAuth password
    "dsn_pg",  # wrong password in an inline postgres DSN
    "redis",  # redis password (passing, from a secret var) ...
    "redis_bad",  # ... and a wrong one in an inline redis:// URL
    "mysql",  # mysql password, secret var
    "grpc",  # gRPC metadata token (passing) ...
    "grpc_bad",  # ... and a rejected one the server quotes back
    "kube",  # in a kube check's object name (lowercase: a valid name)
)


# Printable, with what URL encoding and shells change: '@', ':', '/', '+', '%', ' ' and '&'.
_ALPHABET = string.ascii_letters + string.digits + "@:/+%&-_."


@st.composite
def secret_values(draw: st.DrawFn) -> dict[str, str]:
    out = {}
    for name in KINDS_OF_SECRET:
        body = draw(st.text(_ALPHABET, min_size=6, max_size=14))
        # Unique per run (a uuid) so that no output can contain it by chance.
        out[name] = f"s{uuid.uuid4().hex[:10]}{body}"
    out["kube"] = f"k{uuid.uuid4().hex}"  # a DNS label
    # A DSN password is parsed from the URL: a raw '%', '/' or '@' there would be a different
    # URL, so these are URL-safe (their encoded forms are still searched for).
    for name in ("userinfo", "dsn_pg", "redis_bad"):
        out[name] = f"u{uuid.uuid4().hex}"
    return out


def draw_values() -> dict[str, str]:
    drawn: list[dict[str, str]] = []

    @settings(
        max_examples=1,
        database=None,
        derandomize=False,  # fresh values each run, also under Hypothesis' CI profile
        suppress_health_check=list(HealthCheck),
    )
    @given(secret_values())
    def pick(values: dict[str, str]) -> None:
        drawn.append(values)

    pick()
    return drawn[-1]


def forms(value: str) -> set[str]:
    """The value, URL-encoded (both ways), base64 alone and as basic auth ``user:value``."""
    out = {value, quote(value, safe=""), quote_plus(value), quote(value)}
    for raw in (value, f"u:{value}", f"smoke:{value}"):
        out.add(base64.b64encode(raw.encode()).decode())
    return out


class Servers:
    def __init__(self, values: dict[str, str]) -> None:
        self.pg = PostgresServer(password=values["ref_pg"])
        self.redis = RedisServer(password=values["redis"])
        self.mysql = MariaDBServer(password=values["mysql"])
        self.grpc = GrpcHealthServer(token=values["grpc"], echo_token=True)
        self.certs = tempfile.mkdtemp(prefix="sg-rel-certs-")
        ca = trustme.CA()
        issued = ca.issue_cert("localhost", "127.0.0.1")
        issued.cert_chain_pems[0].write_to_path(f"{self.certs}/server.crt")
        issued.private_key_pem.write_to_path(f"{self.certs}/server.key")
        ca.cert_pem.write_to_path(f"{self.certs}/ca.pem")
        self.tls = GrpcHealthServer(  # any TLS server does for the tls check: this one is quick
            tls_cert=f"{self.certs}/server.crt", tls_key=f"{self.certs}/server.key"
        )
        self.dns = DnsmasqServer(hosts={f"{values['kube']}.test": ["127.0.0.1"]})
        self.target = Target()
        # One after the other, from this thread: the servers die with the thread that started
        # them (PR_SET_PDEATHSIG), so a thread pool would kill them as its threads end.
        for server in self.all():
            server.__enter__()

    def all(self) -> tuple[Any, ...]:
        return (self.pg, self.redis, self.mysql, self.grpc, self.tls, self.dns)

    def close(self) -> None:
        self.target.close()
        for server in reversed(self.all()):
            server.__exit__(None, None, None)
        shutil.rmtree(self.certs, ignore_errors=True)


def suite_text(v: dict[str, str], s: Servers, dead_port: int) -> str:
    t = s.target
    pg, rd, my = s.pg, s.redis, s.mysql
    return f"""\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {{name: s}}
spec:
  defaults: {{timeout: 3s}}
  vars:
    token: ${{secret:creds/token}}
    var: {{value: "${{env:SG_REL_VAR}}", secret: true}}
    redis_pw: {{value: "${{env:SG_REL_REDIS}}", secret: true}}
    mysql_pw: {{value: "${{env:SG_REL_MYSQL}}", secret: true}}
    grpc_tok: {{value: "${{env:SG_REL_GRPC}}", secret: true}}
    kube_name: {{value: "${{env:SG_REL_KUBE}}", secret: true}}
  checks:
    - name: http-ok
      http:
        url: "{t.url}/health"
        headers: {{Authorization: "Bearer ${{token}}", X-Api-Key: "${{var}}"}}
    - name: http-body-has-token
      http:
        url: "{t.url}/health"
        headers: {{Authorization: "Bearer ${{token}}"}}
        expect: {{body: {{contains: "${{token}}"}}, headers: {{X-Echo: "${{var}}"}}}}
    - name: http-userinfo
      http: {{url: "http://smoke:{v["userinfo"]}@127.0.0.1:{t.port}/health"}}
    - name: http-userinfo-fails
      http:
        url: "http://smoke:{v["userinfo"]}@127.0.0.1:{t.port}/health"
        expect: {{status: 418}}
    - name: http-basic-auth-fails
      http:
        url: "{t.url}/health"
        basicAuth: {{username: u, password: "{v["basic"]}"}}
        expect: {{status: 401}}
    - name: tcp-send-fails
      tcp: {{host: 127.0.0.1, port: {dead_port}, send: "AUTH ${{var}}\\r\\n"}}
    - name: tcp-ok
      tcp: {{host: 127.0.0.1, port: {t.port}, send: "GET /${{var}} HTTP/1.0\\r\\n\\r\\n"}}
    - name: dns-ok
      dns:
        name: "${{kube_name}}.test"
        type: A
        nameserver: 127.0.0.1
        port: {s.dns.port}
        expect: {{contains: [127.0.0.1]}}
    - name: dns-fails
      dns: {{name: "${{var}}.invalid", type: A, nameserver: 127.0.0.1, port: {dead_port}}}
    - name: tls-ok-${{kube_name}}
      tls: {{host: 127.0.0.1, port: {s.tls.port}, ca: "{s.certs}/ca.pem"}}
    - name: tls-fails
      tls: {{host: 127.0.0.1, port: {t.port}, serverName: "x${{kube_name}}.invalid"}}
    - name: exec-ok
      exec:
        command: [{sys.executable}, -c, "import sys; print(sys.argv[1])", "${{var}}"]
        expect: {{exitCode: 0}}
    - name: exec-prints-secret-fails
      exec:
        command: [{sys.executable}, -c, "import sys; print(sys.argv[1])", "${{token}}"]
        expect: {{stdout: {{contains: "nothing like it"}}}}
    - name: postgres-ok
      postgres:
        host: 127.0.0.1
        port: {pg.port}
        user: {pg.user}
        database: postgres
        password: {{secretRef: {{name: creds, key: pg}}}}
        query: "SELECT 1 AS one"
    - name: postgres-echo-fails
      postgres:
        host: 127.0.0.1
        port: {pg.port}
        user: {pg.user}
        database: postgres
        password: {{secretRef: {{name: creds, key: pg}}}}
        query: "SELECT '${{token}}' AS leaked"
        expect: {{columns: {{leaked: nope}}}}
    - name: postgres-dsn-fails
      postgres: {{dsn: "postgresql://smoke:{v["dsn_pg"]}@127.0.0.1:{pg.port}/postgres"}}
    - name: redis-ok
      redis: {{host: 127.0.0.1, port: {rd.port}, password: "${{redis_pw}}"}}
    - name: redis-url-fails
      redis: {{url: "redis://smoke:{v["redis_bad"]}@127.0.0.1:{rd.port}/0"}}
    - name: mysql-ok
      mysql:
        host: 127.0.0.1
        port: {my.port}
        user: {my.user}
        database: {my.database}
        password: "${{mysql_pw}}"
    - name: mysql-echo-fails
      mysql:
        host: 127.0.0.1
        port: {my.port}
        user: {my.user}
        database: {my.database}
        password: "${{mysql_pw}}"
        query: "SELECT '${{var}}' AS leaked"
        expect: {{columns: {{leaked: nope}}}}
    - name: grpc-ok
      grpc:
        target: "{s.grpc.target}"
        metadata: {{authorization: "Bearer ${{grpc_tok}}"}}
    - name: grpc-rejected-fails
      grpc:
        target: "{s.grpc.target}"
        metadata: {{authorization: "Bearer {v["grpc_bad"]}"}}
    - name: kube-ok
      kube: {{absent: {{kind: ConfigMap, name: "${{kube_name}}"}}}}
    - name: kube-fails
      kube: {{ready: {{kind: Deployment, name: "${{kube_name}}"}}}}
      timeout: 2s
"""


EXPECTED = {  # check -> status (each failing one would carry a value in its message/evidence)
    "http-ok": "passed",
    "http-body-has-token": "failed",
    "http-userinfo": "passed",
    "http-userinfo-fails": "failed",
    "http-basic-auth-fails": "failed",
    "tcp-send-fails": "failed",
    "tcp-ok": "passed",
    "dns-ok": "passed",
    "dns-fails": "failed",
    "tls-ok-***": "passed",
    "tls-fails": "failed",
    "exec-ok": "passed",
    "exec-prints-secret-fails": "failed",
    "postgres-ok": "passed",
    "postgres-echo-fails": "failed",
    "postgres-dsn-fails": "failed",
    "redis-ok": "passed",
    "redis-url-fails": "failed",
    "mysql-ok": "passed",
    "mysql-echo-fails": "failed",
    "grpc-ok": "passed",
    "grpc-rejected-fails": "failed",
    "kube-ok": "passed",
    "kube-fails": "failed",
}


def env_for(v: dict[str, str]) -> dict[str, str]:
    return {
        "SG_REL_VAR": v["var"],
        "SG_REL_REDIS": v["redis"],
        "SG_REL_MYSQL": v["mysql"],
        "SG_REL_GRPC": v["grpc"],
        "SG_REL_KUBE": v["kube"],
    }
