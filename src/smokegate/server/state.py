"""What every request handler shares: the configuration, the store, metrics, the worker to
wake, and the secrets (resolved once at start, held as ``Secret`` so they never print)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from smokegate.core.secrets import Secret
from smokegate.server.config import ServeConfig
from smokegate.server.metrics import Metrics
from smokegate.store.base import Store


@dataclass(slots=True)
class ServerState:
    config: ServeConfig
    store: Store
    metrics: Metrics
    webhook_secrets: list[Secret] = field(default_factory=list)
    api_token: Secret | None = None
    worker: Any = None
    """The local ``Worker`` (None when this replica runs no worker)."""
    ready: bool = False
    """Set once the store is open and migrated (``/readyz``)."""
    elector: Any = None
    """The ``LeaderElector`` when leader election is on."""
    watcher: Any = None
    """The ``ReleaseWatcher`` while this replica watches HelmReleases."""

    def wake_worker(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    def token_ok(self, authorization: str | None) -> bool:
        """``Authorization: Bearer <token>``, compared in constant time."""
        if self.api_token is None or not authorization:
            return False
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), self.api_token.reveal().encode())


def state_of(request: Any) -> ServerState:
    state: ServerState = request.app.state.smokegate
    return state
