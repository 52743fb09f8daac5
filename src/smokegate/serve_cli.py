"""``smokegate serve`` and ``smokegate trigger``: flags and entry points.

Kept apart from cli.py so the server's dependencies (the ``server`` extra) are imported only
when ``serve`` runs: this module imports nothing heavy at import time. cli.py wires it with
``add_serve_parser(sub)`` / ``add_trigger_parser(sub)`` and dispatches ``cmd_serve`` /
``cmd_trigger``; ``python -m smokegate.serve_cli serve|trigger …`` works on its own too.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from smokegate.durations import duration_arg

DEFAULT_SERVER = "http://127.0.0.1:8080"
TOKEN_ENV = "SMOKEGATE_API_TOKEN"
SERVER_ENV = "SMOKEGATE_SERVER"


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve",
        help="run the server: Flux webhooks, schedules, history, API, dashboard, gates",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run smoke suites by themselves after Flux deploys: receive Flux "
        "notification-controller events (POST /hooks/flux), manual and scheduled triggers, and "
        "Flagger / Argo Rollouts gate calls; keep every run in a store (SQLite file or "
        "PostgreSQL); serve the history as an API, Prometheus metrics and a dashboard.\n"
        "Configuration: serve.yaml (see docs/server.md).",
        epilog="examples:\n"
        "  smokegate serve --config serve.yaml\n"
        "  smokegate serve --config serve.yaml --check      # validate and exit\n",
    )
    p.add_argument("--config", "-f", required=True, metavar="FILE", help="serve.yaml")
    p.add_argument("--listen", metavar="HOST:PORT", help="override the config's listen address")
    p.add_argument("--check", action="store_true", help="validate the configuration and exit")
    p.add_argument(
        "--access-log", action="store_true", help="log every HTTP request (noisy under load)"
    )
    p.add_argument(
        "--log-level",
        default=os.environ.get("SMOKEGATE_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
        help="log level (default: info, or $SMOKEGATE_LOG_LEVEL)",
    )
    return p


def add_trigger_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "trigger",
        help="ask a running smokegate server to (re-)run a release's suites",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="POST /api/v1/runs to a running `smokegate serve`. The bearer token comes "
        f"from ${TOKEN_ENV} or --token-file.",
        epilog="exit codes (with --wait): 0 passed, 1 failed, 2 usage error, 3 no verdict "
        "within --timeout, 4 server unreachable or refused\n\n"
        "examples:\n"
        "  smokegate trigger hr/podinfo -n apps --server http://smokegate.smokegate.svc:8080\n"
        "  smokegate trigger apps/podinfo --suite podinfo-smoke --wait\n",
    )
    p.add_argument("target", metavar="hr/NAME", help="hr/NAME, helmrelease/NAME or NS/NAME")
    p.add_argument("-n", "--namespace", metavar="NS", help="the HelmRelease's namespace")
    p.add_argument("--revision", metavar="REV", help="record the run against this revision")
    p.add_argument(
        "--suite", action="append", default=[], metavar="NAME", help="run these suites only"
    )
    p.add_argument(
        "--server",
        default=os.environ.get(SERVER_ENV, DEFAULT_SERVER),
        metavar="URL",
        help=f"server URL (default: ${SERVER_ENV} or {DEFAULT_SERVER})",
    )
    p.add_argument("--token-file", metavar="FILE", help=f"bearer token file (else ${TOKEN_ENV})")
    p.add_argument("--wait", action="store_true", help="wait for the verdict; exit 0/1 on it")
    p.add_argument(
        "--timeout",
        type=duration_arg,
        default=900.0,
        metavar="DURATION",
        help="--wait limit, e.g. 90s, 15m (default: 15m)",
    )
    return p


# --- serve -----------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from smokegate.server.config import load_config, parse_listen

    config = load_config(args.config)
    if args.listen:
        from smokegate.errors import UsageError

        try:
            parse_listen(args.listen)
        except ValueError as exc:
            raise UsageError(f"--listen: {exc}") from None
        config.listen = args.listen
    # Resolve secrets now: a missing $VAR or file is a startup error, not a 401 later.
    for ref in config.webhooks.flux.secrets:
        ref.resolve()
    if config.api.token:
        config.api.token.resolve()
    from smokegate.store.sql import safe_url

    if args.check:
        print(
            f"ok: listen {config.listen}, store {safe_url(config.store_url())}, "
            f"{len(config.releases)} release rule(s), {len(config.schedules)} schedule(s)"
        )
        return 0
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    prepare_store(config.store_url())
    return serve(config, log_level=args.log_level, access_log=args.access_log)


def prepare_store(url: str) -> None:
    """Connect and migrate before serving: an unreachable or unwritable store is a one-line
    startup error (exit 4), not a traceback from inside the ASGI lifespan."""
    from smokegate.errors import SmokegateError
    from smokegate.session import run_async
    from smokegate.store.sql import SqlStore, safe_url

    async def check() -> None:
        store = SqlStore(url)
        try:
            await store.open()
        finally:
            await store.close()

    try:
        run_async(check())
    except Exception as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise SmokegateError(f"cannot open the store {safe_url(url)}: {reason}") from None


def serve(config: Any, *, log_level: str = "info", access_log: bool = False) -> int:
    import uvicorn

    from smokegate.server.app import create_app
    from smokegate.server.config import parse_listen

    host, port = parse_listen(config.listen)
    kube = None
    if config.kubernetes.enabled:
        from smokegate.server.execute import KubeAccess

        # Read the kubeconfig (or the pod's service account) now: a configuration problem is
        # a one-line startup error (UsageError, exit 2), not a failure inside the lifespan.
        kube = KubeAccess(config.kubernetes.kubeconfig, config.kubernetes.context)
    app = create_app(config, kube=kube)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=access_log,
            lifespan="on",
            # The worker's own grace period bounds shutdown; uvicorn must not cut it short.
            timeout_graceful_shutdown=int(config.worker.shutdown_grace) + 5,
            server_header=False,
            backlog=2048,
        )
    )
    server.run()
    return 0 if server.started else 4


# --- trigger ---------------------------------------------------------------------------------


def _token(args: argparse.Namespace) -> str:
    from smokegate.errors import UsageError

    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as fh:
                token = fh.read().strip()
        except OSError as exc:
            raise UsageError(f"--token-file {args.token_file}: {exc.strerror}") from None
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(f"no API token: set ${TOKEN_ENV} or pass --token-file")
    return token


def cmd_trigger(args: argparse.Namespace) -> int:
    from smokegate.errors import UsageError
    from smokegate.flux.helmrelease import parse_target

    namespace, name = parse_target(args.target, args.namespace)
    if not namespace:
        raise UsageError(f"{args.target}: give the namespace (-n NS, or NS/NAME)")
    if not args.server.startswith(("http://", "https://")):
        raise UsageError(f"--server {args.server!r}: must be an http:// or https:// URL")
    body = {"release": f"{namespace}/{name}", "revision": args.revision or "", "suites": args.suite}
    from smokegate.session import run_async

    return run_async(_trigger(args.server.rstrip("/"), _token(args), body, args))


async def _trigger(server: str, token: str, body: dict[str, Any], args: argparse.Namespace) -> int:
    import asyncio
    import json
    import time

    from smokegate.errors import ClusterError
    from smokegate.httpclient import HttpClient, HttpError

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def call(method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        data = json.dumps(payload).encode() if payload is not None else None
        try:
            resp = await http.request(method, server + path, headers=headers, body=data, timeout=30)
        except (HttpError, OSError) as exc:
            raise ClusterError(f"cannot reach the smokegate server at {server}: {exc}") from None
        try:
            return resp.status, json.loads(resp.text() or "null")
        except ValueError:
            return resp.status, {"error": resp.text()[:300]}

    async with HttpClient(max_connections_per_origin=1) as http:
        status, answer = await call("POST", "/api/v1/runs", body)
        if status != 202:
            message = (answer or {}).get("error") if isinstance(answer, dict) else answer
            raise ClusterError(f"server refused the run (HTTP {status}): {message}")
        job_id = answer["jobId"]
        print(f"queued job {job_id} for {body['release']}", flush=True)
        if not args.wait:
            return 0
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            status, job = await call("GET", f"/api/v1/jobs/{job_id}")
            if status == 200 and job.get("state") == "done":
                if not job.get("runId"):
                    print("no suites map to this release: nothing ran", file=sys.stderr)
                    return 1
                status, run = await call("GET", f"/api/v1/runs/{job['runId']}")
                verdict = run.get("verdict", "error")
                print(f"{verdict}: {run.get('message', '')} (run {run.get('id')})")
                return 0 if verdict == "passed" else 1
            await asyncio.sleep(1.0)
    print(
        f"no verdict within {args.timeout:.0f}s (job {job_id} still queued or running)",
        file=sys.stderr,
    )
    return 3


# --- stand-alone entry point -----------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smokegate")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_serve_parser(sub)
    add_trigger_parser(sub)
    args = parser.parse_args(argv)
    from smokegate.errors import SmokegateError

    try:
        return cmd_serve(args) if args.command == "serve" else cmd_trigger(args)
    except SmokegateError as exc:
        problems = getattr(exc, "problems", None)
        if problems:
            head = f"smokegate: {len(problems)} problem{'s' if len(problems) != 1 else ''}:"
            print("\n".join([head, *(f"  {p}" for p in problems)]), file=sys.stderr)
        else:
            print(f"smokegate: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
