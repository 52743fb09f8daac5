"""``smokegate demo``: start the demo service (``demo.ServiceThread``), plan the bundled suite
against it (``demo.plan_demo``), run and report like ``smokegate run``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from smokegate.cli._args import Formatter, add_run_args, add_selection_args, selection


def add_demo_parser(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the bundled demo suite against an embedded service",
        formatter_class=Formatter,
        description="Start a small demo service on 127.0.0.1 (JSON API, TCP, "
        "TLS) and run the bundled demo suite (a copy is examples/demo.yaml) against it. "
        "No cluster needed.",
    )
    add_selection_args(p)
    add_run_args(p)
    p.add_argument(
        "--fail",
        action="store_true",
        help="make the demo service misbehave, to see what a failure looks like",
    )
    p.add_argument(
        "--report-dir",
        default="smokegate-demo-reports",
        metavar="DIR",
        help="where the demo writes its HTML, JUnit and JSON reports "
        "(default: ./smokegate-demo-reports)",
    )
    p.set_defaults(cmd=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from smokegate.cli._output import print_list, run_and_report
    from smokegate.demo import SUITE, ServiceThread, plan_demo
    from smokegate.report.console import make_console

    svc = ServiceThread(broken=args.fail)
    svc.start()
    try:
        ports = svc.service.ports
        plan = plan_demo(svc.service, selection(args))
        if args.list:
            return print_list(plan)
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
        code, _ = run_and_report(plan, args)
    finally:
        svc.stop()
    console.print(f"\nSuite: {SUITE}")
    if not args.fail:
        console.print("See a failure: [bold]smokegate demo --fail[/bold]")
    return code
