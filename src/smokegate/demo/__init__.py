"""``smokegate demo``: the embedded service plus the bundled suite, run like ``smokegate run``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from pathlib import Path

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


def run_demo(args: argparse.Namespace) -> int:
    from smokegate.commands import _print_list, _selection, execute_and_report
    from smokegate.report.console import make_console
    from smokegate.session import plan_run

    svc = ServiceThread(broken=args.fail)
    svc.start()
    try:
        ports = svc.service.ports
        cli_vars = {
            "httpPort": str(ports["http"]),
            "tcpPort": str(ports["tcp"]),
            "httpsPort": str(ports["https"]),
            "dnsPort": str(ports["dns"]),
            "caFile": svc.service.ca_file,
            "python": sys.executable,
        }
        plan = plan_run([str(SUITE)], cli_vars=cli_vars, selection=_selection(args))
        if args.list:
            return _print_list(plan)
        report_dir = Path(args.report_dir)
        defaults = [
            f"html={report_dir / 'report.html'}",
            f"junit={report_dir / 'junit.xml'}",
            f"json={report_dir / 'report.json'}",
        ]
        args.report = [*defaults, *args.report]
        console = make_console(no_color=args.no_color)
        console.print(
            f"[bold]smokegate demo[/bold]: service on 127.0.0.1 "
            f"(http :{ports['http']}, tcp :{ports['tcp']}, https :{ports['https']}, "
            f"dns :{ports['dns']}{', misbehaving' if args.fail else ''})\n"
        )
        code, _ = execute_and_report(plan, args)
    finally:
        svc.stop()
    console.print(f"\nSuite: {SUITE}")
    if not args.fail:
        console.print("See a failure: [bold]smokegate demo --fail[/bold]")
    return code
