"""A throwaway nginx for tests and benchmarks: the Debian binary, run in the foreground.

Everything nginx writes (pid file, error log, temp dirs) lives in one private directory so it
runs as any user, root included, and leaves nothing behind. Start it with ``with NginxServer()
as srv:`` and talk to ``srv.url`` (and ``srv.https_url`` when ``tls=`` is given).

Default locations (on both the plain and the TLS server):

``/json``          static JSON ``{"status":"ok","version":"1.2.3","items":[1,2,3]}``
``/status/503``    503 with a short text body (also 200 201 204 400 401 403 404 500 502 504)
``/redirect``      302 to ``/json`` (absolute ``Location``, built from the request's ``Host``)
``/chunked``       ~64 KiB text sent with ``Transfer-Encoding: chunked``
``/headers``       JSON echo of selected request headers, plus ``X-Test: yes`` and two
                   ``X-Multi`` response headers (``a`` and ``b``)
``/echo``          JSON echo of the request method and (small, <8 KiB) body, any method
``/client-cert``   (TLS server) ``client certificate: <subject DN>``, or 403 without one
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.servers.process import (
    ServerNotFoundError,
    ServerProcess,
    ServerStartError,
    accepting,
    find_binary,
    free_port,
)

JSON_BODY = b'{"status":"ok","version":"1.2.3","items":[1,2,3]}'

# nginx's sub_filter drops Content-Length (the body length can change), so nginx falls back to
# chunked encoding: the only stock way to get chunked responses from static content.
CHUNKED_LINE = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxy\n"
CHUNKED_BODY = CHUNKED_LINE * 900

_STATUS_CODES = (200, 201, 204, 400, 401, 403, 404, 500, 502, 503, 504)
_NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


class NginxNotFoundError(ServerNotFoundError):
    """nginx is not installed: tests that need it fail loudly instead of skipping."""


class NginxStartError(ServerStartError):
    """nginx exited or never accepted connections; the message carries its error log."""


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """PEM files for the TLS server block.

    ``client_ca`` enables client certificate checks against that CA; ``verify_client`` is
    nginx's ``ssl_verify_client`` value (``on`` rejects requests without a valid certificate
    with 400, ``optional`` lets ``/client-cert`` answer 403 instead).
    """

    cert: str | os.PathLike[str]
    key: str | os.PathLike[str]
    client_ca: str | os.PathLike[str] | None = None
    verify_client: str = "on"


def find_nginx() -> str:
    found = find_binary("nginx", _NGINX_CANDIDATES)
    if found is None:
        raise NginxNotFoundError(
            "nginx binary not found (looked in PATH and /usr/sbin): install it with "
            "`apt-get install -y nginx-light` (or nginx)"
        )
    return found


class NginxServer(ServerProcess):
    """nginx on free 127.0.0.1 ports, configured from Python.

    ``locations`` maps an nginx location spec (``"/x"``, ``"= /x"``, ``"~ ^/x$"``) to the
    directives inside its braces; a spec that matches a default location replaces it.
    ``files`` maps paths relative to the document root to their contents.
    ``{port}``/``{https_port}`` in location bodies are replaced with the chosen ports.
    """

    label = "nginx"
    tmp_prefix = "smokegate-nginx-"
    start_error = NginxStartError
    port_in_use = "Address already in use"
    log_files = ("error.log", "stderr.log")

    def __init__(
        self,
        locations: Mapping[str, str] | None = None,
        files: Mapping[str, bytes | str] | None = None,
        *,
        tls: TLSFiles | None = None,
        worker_processes: int = 1,
        http_directives: str = "",
        start_timeout: float = 10.0,
    ) -> None:
        super().__init__(start_timeout=start_timeout)
        self.binary = find_nginx()
        self._locations = dict(locations or {})
        self._files = dict(files or {})
        self._tls = tls
        self._workers = worker_processes
        self._http_directives = http_directives
        self.prefix: Path | None = None  # private dir; still set after stop() removed it
        self.https_port = 0

    # -- public -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        self._require_running()
        return f"http://127.0.0.1:{self.port}"

    @property
    def https_url(self) -> str:
        """``https://127.0.0.1:HTTPS_PORT``; only with ``tls=``."""
        self._require_running()
        if not self.https_port:
            raise RuntimeError("NginxServer was started without tls=")
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def error_log(self) -> str:
        return self._read_log()

    # -- internals ----------------------------------------------------------------------------

    def _prepare(self) -> None:
        self.prefix = self._tmp

    def _pick_ports(self) -> None:
        self.port = free_port()
        self.https_port = free_port() if self._tls else 0

    def _launch(self) -> None:
        self._write_tree()
        d = self.prefix
        self._spawn(
            [
                self.binary,
                "-p",
                f"{d}/",
                "-e",
                f"{d}/error.log",
                "-c",
                f"{d}/nginx.conf",
                "-g",
                "daemon off;",
            ]
        )
        self._wait_ready(accepting(self.host, self.port, self.https_port))

    def _require_running(self) -> None:
        if self._proc is None:
            raise RuntimeError("NginxServer is not running (use start() or `with`)")

    def _default_locations(self) -> dict[str, str]:
        locs = {
            f"= /status/{code}": f'default_type text/plain; return {code} "status {code}\\n";'
            for code in _STATUS_CODES
        }
        locs |= {
            "= /json": "default_type application/json; try_files /json.json =404;",
            "= /redirect": "return 302 /json;",
            "= /chunked": (
                "default_type text/plain; sub_filter_types *; sub_filter 'NEVER-MATCHES' 'x';"
                " sub_filter_once off; try_files /chunked.txt =404;"
            ),
            "= /headers": (
                "default_type application/json; add_header X-Test yes always;"
                " add_header X-Multi a always; add_header X-Multi b always;"
                ' return 200 \'{"method":"$request_method","host":"$http_host",'
                '"user_agent":"$http_user_agent","accept":"$http_accept",'
                '"accept_encoding":"$http_accept_encoding","connection":"$http_connection",'
                '"content_length":"$http_content_length","x_custom":"$http_x_custom",'
                '"sni":"$ssl_server_name","uri":"$request_uri"}\';'
            ),
            # $request_body is only filled once a module reads the body: proxy to ourselves.
            "= /echo": (
                "client_body_buffer_size 64k; client_max_body_size 1m;"
                " proxy_pass http://127.0.0.1:{port}/_echo_sink;"
                " proxy_set_header X-Echo-Method $request_method;"
                " proxy_set_header X-Echo-Body $request_body;"
                " proxy_set_header X-Echo-Length $content_length;"
            ),
            "= /_echo_sink": (
                "allow 127.0.0.1; deny all; default_type application/json;"
                ' return 200 \'{"method":"$http_x_echo_method","body":"$http_x_echo_body",'
                '"content_length":"$http_x_echo_length"}\';'
            ),
            "= /client-cert": (
                "default_type text/plain;"
                ' if ($ssl_client_verify != SUCCESS) { return 403 "no client certificate:'
                ' $ssl_client_verify\\n"; }'
                ' return 200 "client certificate: $ssl_client_s_dn";'
            ),
        }
        return locs

    def _server_block(self, listen: str, extra: str) -> str:
        locs = self._default_locations()
        locs.update(self._locations)
        body = "\n".join(
            f"        location {spec} {{\n            "
            + directives.replace("{port}", str(self.port)).replace(
                "{https_port}", str(self.https_port)
            )
            + "\n        }"
            for spec, directives in locs.items()
        )
        return (
            f"    server {{\n        listen {listen};\n        server_name localhost;\n"
            f"        root {self.prefix}/html;\n{extra}{body}\n    }}\n"
        )

    def _write_tree(self) -> None:
        assert self.prefix is not None
        d = self.prefix
        for sub in ("html", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        files: dict[str, bytes | str] = {"json.json": JSON_BODY, "chunked.txt": CHUNKED_BODY}
        files.update(self._files)
        for rel, content in files.items():
            path = d / "html" / rel.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)

        # As root nginx would switch its workers to "nobody", who cannot read our 0700 temp
        # dir; staying root keeps the whole tree private.
        user = "user root;\n" if os.geteuid() == 0 else ""
        servers = self._server_block(f"127.0.0.1:{self.port}", "")
        if self._tls is not None:
            t = self._tls
            tls_extra = (
                f"        ssl_certificate {os.fspath(t.cert)};\n"
                f"        ssl_certificate_key {os.fspath(t.key)};\n"
                "        ssl_protocols TLSv1.2 TLSv1.3;\n"
            )
            if t.client_ca is not None:
                tls_extra += (
                    f"        ssl_client_certificate {os.fspath(t.client_ca)};\n"
                    f"        ssl_verify_client {t.verify_client};\n"
                )
            servers += self._server_block(f"127.0.0.1:{self.https_port} ssl", tls_extra)
        conf = f"""{user}worker_processes {self._workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    types {{ application/json json; text/plain txt; text/html html; }}
    default_type application/octet-stream;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    keepalive_requests 100000;
    server_tokens off;
{self._http_directives}
{servers}}}
"""
        (d / "nginx.conf").write_text(conf)
