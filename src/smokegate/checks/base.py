"""What every check kind shares: the spec base model, the outcome it returns, the failure it raises
and the context it receives.

A check kind is one module in this package exposing::

    SPEC: type[Spec]                                   # pydantic model of its YAML block
    async def run(spec: SPEC, ctx: CheckContext) -> Outcome

``run`` returns an ``Outcome`` (passed or failed on expectations) or raises ``CheckFailed`` for a
failure it can name (connection refused, DNS, TLS, auth...). Anything else it raises is reported
as an *error* of the check itself. Checks never print, never read the environment or CLI flags:
everything they need arrives in ``spec`` and ``ctx``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, ConfigDict, ValidationInfo

from smokegate.core.outcome import (
    CheckFailed,
    ErrorKind,
    Mismatch,
    Outcome,
    failed,
    passed,
)
from smokegate.core.secrets import KeepSecrets, Redactor, Secret, Text, masked, reveal
from smokegate.suite.model import Model

if TYPE_CHECKING:
    from smokegate.httpclient import HttpClient

# The outcome vocabulary lives in ``smokegate.core.outcome`` (the engine, the Helm test runner
# and Flux's results share it); kind modules import it from here, their one contract module.
__all__ = [
    "CheckContext",
    "CheckFailed",
    "ErrorKind",
    "KeepSecrets",
    "LocalPath",
    "Mismatch",
    "Outcome",
    "Secret",
    "Spec",
    "Text",
    "failed",
    "masked",
    "passed",
    "reveal",
]


class Spec(Model):
    """Base for check specs: camelCase keys in YAML, unknown keys are errors, frozen.

    A field that may carry a secret (a password, a header, a DSN, a URL) is typed ``Text``: it
    holds a ``Secret`` when the suite built it from one, and the check calls ``reveal()`` at the
    driver call. ``repr()`` of a spec never shows a secret (``suite.model.Model``)."""

    model_config = ConfigDict(frozen=True)


def _resolve_path(value: str, info: ValidationInfo) -> str:
    # Relative file paths in a suite are relative to the suite file, like Kustomize and Helm do,
    # so a suite behaves the same whatever the working directory of the run.
    base = (info.context or {}).get("base_dir") if info.context else None
    if base and not os.path.isabs(value) and "\n" not in value:
        return str(Path(base) / value)
    return value


LocalPath = Annotated[str, AfterValidator(_resolve_path)]
"""A file path; relative paths are taken relative to the suite file."""


ATTEMPT_DEADLINE: ContextVar[float | None] = ContextVar("smokegate_attempt_deadline", default=None)
"""When the running attempt will be cut short (``time.perf_counter()`` seconds): its timeout, or
the ``within`` deadline if that comes first. Set by the engine around each attempt (per task,
so concurrent checks each see their own); read through ``CheckContext.time_left``."""


SELECTED_CASES: ContextVar[tuple[str, ...]] = ContextVar("smokegate_selected_cases", default=())
"""The ``-k check/CASE`` globs of the running check (empty: every case counts). Set by the
engine around each attempt; read through ``CheckContext.selected_cases``."""


class CheckContext:
    """Shared, run-scoped services for checks. Expensive clients are created on first use and
    shared by all checks of the run (one HTTP connection pool per origin, one API client).
    ``time_left()`` is the one per-attempt fact: how long the running attempt has left."""

    def __init__(
        self,
        *,
        redactor: Redactor | None = None,
        resolve: dict[tuple[str, int], str] | None = None,
        kube_factory: Callable[[], Any] | None = None,
        namespace: str | None = None,
        max_connections_per_origin: int = 100,
    ) -> None:
        self.redactor = redactor or Redactor()
        self.resolve = resolve or {}
        self.namespace = namespace
        self._kube_factory = kube_factory
        self._kube: Any = None
        self._http: HttpClient | None = None
        self._max_conn = max_connections_per_origin
        self.extras: dict[str, Any] = {}

    @property
    def http(self) -> HttpClient:
        if self._http is None:
            from smokegate.httpclient import HttpClient

            self._http = HttpClient(max_connections_per_origin=self._max_conn)
        return self._http

    @property
    def kube(self) -> Any:
        if self._kube is None:
            if self._kube_factory is None:
                raise CheckFailed(
                    "no Kubernetes client configured for this run", kind=ErrorKind.CONFIG
                )
            self._kube = self._kube_factory()
        return self._kube

    def time_left(self) -> float | None:
        """Seconds the running attempt has left before the engine cuts it short (its timeout,
        or the ``within`` deadline), None outside an attempt. For a driver that takes its own
        timeout (an RPC deadline, a socket timeout): give it this instead of leaving it unset,
        so the driver, and the server it talks to, stop when the attempt does."""
        deadline = ATTEMPT_DEADLINE.get()
        return None if deadline is None else max(0.0, deadline - time.perf_counter())

    def selected_cases(self) -> tuple[str, ...]:
        """The test-case globs ``-k check/CASE`` selected for the running check (empty: all).
        A kind that runs a test suite keeps only the matching cases (``checks._suites``)."""
        return SELECTED_CASES.get()

    def connect_address(self, host: str, port: int) -> tuple[str, int] | None:
        """Where to connect for host:port when a --resolve style override exists."""
        addr = self.resolve.get((host.lower(), port))
        return (addr, port) if addr else None

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        closer = getattr(self._kube, "close", None)
        if closer is not None:
            result = closer()
            if hasattr(result, "__await__"):
                await result
