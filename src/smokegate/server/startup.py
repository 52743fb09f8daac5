"""Starting ``smokegate serve``: read and check the configuration, open the store, run the ASGI
app under uvicorn. Every start-up problem is a one-line error with its exit code (a missing
secret or a bad kubeconfig: 2; an unreachable store: 4), never a traceback from inside the
lifespan."""

from __future__ import annotations

from typing import Any

from smokegate.core.errors import SmokegateError, UsageError


def load_checked_config(path: str, *, listen: str | None = None) -> Any:
    """``serve.yaml`` as a ``ServeConfig``, with ``listen`` overriding its address, and every
    secret it names resolved now: a missing ``$VAR`` or file is a start-up error, not a 401
    later."""
    from smokegate.server.config import load_config, parse_listen

    config = load_config(path)
    if listen:
        try:
            parse_listen(listen)
        except ValueError as exc:
            raise UsageError(f"--listen: {exc}") from None
        config.listen = listen
    for ref in config.webhooks.flux.secrets:
        ref.resolve()
    if config.api.token:
        config.api.token.resolve()
    return config


def describe(config: Any) -> str:
    """One line for ``serve --check``."""
    from smokegate.store.sql import safe_url

    return (
        f"listen {config.listen}, store {safe_url(config.store_url())}, "
        f"{len(config.releases)} release rule(s), {len(config.schedules)} schedule(s)"
    )


def prepare_store(url: str) -> None:
    """Connect and migrate before serving: an unreachable or unwritable store is a one-line
    startup error (exit 4), not a traceback from inside the ASGI lifespan."""
    from smokegate.core.loop import run_async
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
    """Open the store, then serve until SIGTERM/SIGINT; 0 after a clean shutdown, 4 when the
    server could not start (the port taken, say)."""
    import uvicorn

    from smokegate.server.app import create_app
    from smokegate.server.config import parse_listen

    prepare_store(config.store_url())
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
