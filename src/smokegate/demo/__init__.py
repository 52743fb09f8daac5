"""The demo: a small service on 127.0.0.1 (JSON API, TCP banner, TLS, DNS) and the bundled suite
that checks it (``demo.yaml``, the same file as ``examples/demo.yaml``). ``smokegate demo`` runs
it like ``smokegate run``; the tests use the service as a real target."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any

from smokegate.demo.service import DemoService

SUITE = Path(__file__).with_name("demo.yaml")


class ServiceThread:
    """Runs the demo service on its own event loop so the engine runs exactly as in `run`."""

    def __init__(self, broken: bool = False, ready_after: float = 1.5) -> None:
        self.service = DemoService(broken=broken, ready_after=ready_after)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="smokegate-demo", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.service.start())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.service.stop())
        self._loop.close()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError(f"demo service failed to start: {self._error}")

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def demo_vars(service: DemoService) -> dict[str, str]:
    """The ``--var`` values that point ``demo.yaml`` at a running demo service."""
    ports = service.ports
    return {
        "httpPort": str(ports["http"]),
        "tcpPort": str(ports["tcp"]),
        "httpsPort": str(ports["https"]),
        "dnsPort": str(ports["dns"]),
        "caFile": service.ca_file,
        "python": sys.executable,
    }


def plan_demo(service: DemoService, selection: Any = None) -> Any:
    """The bundled suite planned against ``service`` (``api.plan_run``)."""
    from smokegate.api import plan_run

    return plan_run([str(SUITE)], cli_vars=demo_vars(service), selection=selection)
