"""The ASGI application: routes, and a lifespan that opens the store (creating or migrating
the schema), starts the worker, the schedules and the retention sweep, and stops them in the
reverse order on shutdown (running jobs finish or go back to the queue).

Starlette rather than FastAPI: the API is eight small handlers, validation of the two JSON
inputs is a few lines, and the OpenAPI document is written by hand (openapi.py) — FastAPI's
generated one would cost a dependency tree (and its pydantic request models) to save that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from smokegate.server import api, dashboard, gates, webhook
from smokegate.server.config import ServeConfig
from smokegate.server.metrics import Metrics
from smokegate.server.state import ServerState

log = logging.getLogger("smokegate.server")


def routes() -> list[Route]:
    return [
        Route("/hooks/flux", webhook.flux_hook, methods=["POST"]),
        Route("/api/v1/runs", api.list_runs, methods=["GET"]),
        Route("/api/v1/runs", api.create_run, methods=["POST"]),
        Route("/api/v1/runs/{run_id}", api.get_run, methods=["GET"]),
        Route("/api/v1/jobs/{job_id}", api.get_job, methods=["GET"]),
        Route("/api/v1/releases", api.list_releases, methods=["GET"]),
        Route("/api/v1/status", api.status, methods=["GET"]),
        Route("/gates/flagger", gates.flagger, methods=["POST"]),
        Route("/gates/argo", gates.argo, methods=["GET"]),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/readyz", api.readyz, methods=["GET"]),
        Route("/metrics", api.metrics, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
        Route("/", dashboard.board, methods=["GET"]),
        Route("/releases/{namespace}/{name}", dashboard.release_page, methods=["GET"]),
        Route("/runs/{run_id}", dashboard.run_page, methods=["GET"]),
    ]


def create_app(config: ServeConfig, *, store: Any = None, kube: Any = None) -> Starlette:
    """The app for ``config``. ``store``/``kube`` are for tests (default: from the config)."""
    from smokegate.store.sql import SqlStore

    state = ServerState(
        config=config,
        store=store if store is not None else SqlStore(config.store_url()),
        metrics=Metrics(),
        webhook_secrets=[ref.resolve() for ref in config.webhooks.flux.secrets],
        api_token=config.api.token.resolve() if config.api.token else None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = Services(state, kube)
        await services.start()
        try:
            yield
        finally:
            await services.stop()

    state.metrics.describe_schedules(config.schedules)
    app = Starlette(routes=routes(), lifespan=lifespan)
    app.state.smokegate = state
    return app


class Services:
    """Everything that runs beside the HTTP handlers, started and stopped together.

    The worker runs on every replica. The watch and the schedules run on the leader only when
    leader election is on (otherwise on every replica: the store dedups their jobs anyway)."""

    def __init__(self, state: ServerState, kube: Any) -> None:
        self.state = state
        self.kube = kube
        self._tasks: list[asyncio.Task[None]] = []
        self.scheduler: Any = None
        self.watcher: Any = None
        self.elector: Any = None

    async def start(self) -> None:
        from smokegate.server.execute import JobRunner, KubeAccess
        from smokegate.server.worker import Worker

        state, config = self.state, self.state.config
        await state.store.open()
        if not state.webhook_secrets:
            log.warning(
                "no webhook secret configured: /hooks/flux accepts unsigned events "
                "(use a generic-hmac Provider and webhooks.flux.secrets)"
            )
        if self.kube is None and config.kubernetes.enabled:
            self.kube = KubeAccess(config.kubernetes.kubeconfig, config.kubernetes.context)
        worker = Worker(config, state.store, JobRunner(config, self.kube), state.metrics)
        state.worker = worker
        worker.start()
        election = config.kubernetes.leader_election
        if self.kube is not None and election.enabled:
            from smokegate.server.leader import LeaderElector

            self.elector = LeaderElector(
                self.kube,
                namespace=election.namespace or self.kube.config.namespace or "default",
                name=election.lease_name,
                identity=worker.name,
                lease_duration=election.lease_duration,
                renew_every=election.renew_every,
                on_start=self._lead,
                on_stop=self._follow,
            )
            state.elector = self.elector
            self.elector.start()
        else:
            await self._lead()
        self._tasks.append(asyncio.create_task(self._retention(), name="smokegate-retention"))
        state.ready = True
        log.info("store ready; worker %s with %s slot(s)", worker.name, config.worker.concurrency)

    async def _lead(self) -> None:
        """Start what only the leader runs."""
        from smokegate.server.worker import Scheduler

        state, config = self.state, self.state.config
        self.scheduler = Scheduler(config, state.store, state.wake_worker)
        self.scheduler.start()
        if self.kube is not None and config.kubernetes.watch:
            from smokegate.server.watch import ReleaseWatcher

            self.watcher = ReleaseWatcher(config, state.store, self.kube, state.wake_worker)
            state.watcher = self.watcher
            self.watcher.start()

    async def _follow(self) -> None:
        """Stop what only the leader runs."""
        if self.watcher is not None:
            await self.watcher.stop()
            self.watcher = self.state.watcher = None
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None

    async def stop(self) -> None:
        self.state.ready = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.elector is not None:
            await self.elector.stop()  # steps down (stopping the watch) and releases the Lease
        await self._follow()
        if self.state.worker is not None:
            await self.state.worker.stop()
        await self.state.store.close()

    async def _retention(self) -> None:
        r = self.state.config.store.retention
        while True:
            try:
                removed = await self.state.store.prune(
                    max_age=r.max_age, max_runs_per_release=r.max_runs_per_release
                )
                if removed:
                    log.info("retention: removed %s old run(s)", removed)
            except Exception as exc:
                log.warning("retention sweep failed: %s", exc)
            await asyncio.sleep(r.interval)
