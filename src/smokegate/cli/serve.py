"""``smokegate serve`` and ``smokegate trigger``.

``serve``: ``server.startup.load_checked_config`` then ``server.startup.serve``; ``trigger``:
``server.trigger.trigger_run`` against a running server. The server's dependencies (the
``server`` extra) are imported only when ``serve`` runs: this module imports argparse only.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from smokegate.core.durations import duration_arg

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
    p.set_defaults(cmd=cmd_serve)
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
    p.set_defaults(cmd=cmd_trigger)
    return p


# --- serve ---------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from smokegate.server.startup import describe, load_checked_config, serve

    config = load_checked_config(args.config, listen=args.listen)
    if args.check:
        print(f"ok: {describe(config)}")
        return 0
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The Kubernetes client's HTTP library logs every request line at INFO, URL included, and a
    # URL names objects: a `kube` check on `${secret_var}` put the secret in serve's log
    # (tests/reliability/test_secrets_everywhere.py). Its warnings and errors still show.
    for name in ("httpx2", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    return serve(config, log_level=args.log_level, access_log=args.access_log)


# --- trigger ---------------------------------------------------------------------------------


def _token(args: argparse.Namespace) -> str:
    from smokegate.core.errors import UsageError

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
    from smokegate.core.errors import UsageError
    from smokegate.flux.helmrelease import parse_target

    namespace, name = parse_target(args.target, args.namespace)
    if not namespace:
        raise UsageError(f"{args.target}: give the namespace (-n NS, or NS/NAME)")
    if not args.server.startswith(("http://", "https://")):
        raise UsageError(f"--server {args.server!r}: must be an http:// or https:// URL")
    release = f"{namespace}/{name}"
    body = {"release": release, "revision": args.revision or "", "suites": args.suite}
    from smokegate.core.loop import run_async
    from smokegate.server.trigger import trigger_run

    result = run_async(
        trigger_run(
            args.server.rstrip("/"),
            _token(args),
            body,
            wait=args.wait,
            timeout=args.timeout,
            on_queued=lambda job_id: print(
                f"queued job {job_id} for {body['release']}", flush=True
            ),
        )
    )
    if not args.wait:
        return 0
    if not result.done:
        print(
            f"no verdict within {args.timeout:.0f}s (job {result.job_id} still queued or running)",
            file=sys.stderr,
        )
        return 3
    if result.run is None:
        print("no suites map to this release: nothing ran", file=sys.stderr)
        return 1
    verdict = result.run.get("verdict", "error")
    print(f"{verdict}: {result.run.get('message', '')} (run {result.run.get('id')})")
    return 0 if verdict == "passed" else 1
