"""``smokegate run``, ``lint`` and ``schema``: suites from files, no Flux.

``run`` parses the suites once and plans them with ``api.plan_suites_with_cluster``
(``api.plan_suites`` for ``--list``), discovered checks merged in memory, and runs with
``api.run_plan`` through ``_output.run_and_report``; ``lint`` is ``api.plan_run(lint=True)``;
``schema`` prints ``suite.model.json_schema()``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from smokegate.cli._args import (
    EXIT_CODES,
    Formatter,
    add_kube_args,
    add_run_args,
    add_selection_args,
    add_suite_args,
    kube_options,
    selection,
)
from smokegate.cli._incluster import add_in_cluster_args, add_log_report_arg
from smokegate.cli.discover import add_discover_options


def add_run_parser(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run suites once and report",
        formatter_class=Formatter,
        description="Run the checks of one or more suites and report the result.",
        epilog=EXIT_CODES + "\nexamples:\n"
        "  smokegate run suites/\n"
        "  smokegate run suite.yaml -t smoke --report junit=out/junit.xml\n"
        "  smokegate run suite.yaml -k 'api-*' --var base=http://localhost:8080\n"
        "  smokegate run big-matrix.yaml -j auto -c 200\n"
        "  smokegate run --in-cluster -n apps suites/ --service-account smokegate\n",
    )
    add_suite_args(p, suites_required=False)
    add_discover_options(p)
    add_selection_args(p)
    add_run_args(p, workers=True)
    add_kube_args(
        p,
        namespace_help="default namespace for `kube` checks and Secret references "
        "(default: the context's). The cluster is contacted only if a suite needs it",
    )
    add_in_cluster_args(p)
    add_log_report_arg(p)
    p.set_defaults(cmd=cmd_run)


def add_lint_parser(sub: Any) -> None:
    p = sub.add_parser(
        "lint",
        help="validate suites without running them",
        formatter_class=Formatter,
        description="Parse and validate suites: schema, variables, needs. "
        "Exit 0 when valid, 2 with file:line:col problems otherwise.",
    )
    add_suite_args(p)
    p.set_defaults(cmd=cmd_lint)


def add_schema_parser(sub: Any) -> None:
    p = sub.add_parser(
        "schema",
        help="print the suite JSON Schema (for editors)",
        formatter_class=Formatter,
        description="Print the JSON Schema of suite files. For completion in "
        "editors with the YAML language server, put this first in a "
        "suite:\n  # yaml-language-server: $schema=./suite.schema.json"
        "\nafter 'smokegate schema > suite.schema.json'.",
    )
    p.add_argument("-o", "--output", metavar="PATH", help="write to PATH instead of stdout")
    p.set_defaults(cmd=cmd_schema)


def cmd_run(args: argparse.Namespace) -> int:
    from smokegate.api import kube_factory_for, parse_vars, plan_suites, plan_suites_with_cluster
    from smokegate.cli._args import workers
    from smokegate.cli._output import print_list, run_and_report
    from smokegate.cli.discover import suites_with_discovery
    from smokegate.core.errors import UsageError

    raws = suites_with_discovery(args)  # each suite file parsed once, here
    kube = kube_options(args)
    if args.list:
        # Listing needs no cluster: Secret references get placeholders, as under `lint`.
        return print_list(
            plan_suites(raws, cli_vars=parse_vars(args.var), selection=selection(args), lint=True)
        )
    n_workers = workers(args)
    if args.in_cluster:
        if args.workers != 1:
            raise UsageError("--workers: not with --in-cluster (the run is one pod's)")
        from smokegate.api import read_stdin_once
        from smokegate.cli._incluster import run_in_cluster_and_report

        code, _ = run_in_cluster_and_report(
            args,
            args.suites,
            namespace=args.namespace,
            cli_vars=parse_vars(args.var),
            stdin_text=read_stdin_once(args.suites),
        )
        return code
    # The cluster is contacted only if a suite references a Secret (now) or runs a `kube` or
    # `helmTest` check (its configuration read before the run, the connection at first use).
    plan = plan_suites_with_cluster(
        raws,
        kube_options=kube,
        cli_vars=parse_vars(args.var),
        selection=selection(args),
        default_namespace=args.namespace,
    )
    if not plan.checks:
        print("smokegate: no checks selected", file=sys.stderr)
        return 2 if not selection(args).empty else 0
    if n_workers > 1:
        code, run = run_sharded_and_report(
            plan, args, n_workers, kube_factory=kube_factory_for(plan, kube)
        )
    else:
        code, run = run_and_report(
            plan, args, kube_factory=kube_factory_for(plan, kube), namespace=args.namespace
        )
    if args.log_report:
        # After everything else this run prints: the block is the log's last lines.
        from smokegate.report import redacted
        from smokegate.report.jsonreport import render
        from smokegate.report.logblock import encode

        sys.stdout.flush()
        sys.stdout.write(encode(render(redacted(run, plan.redactor))))
        sys.stdout.flush()
    return code


def run_sharded_and_report(
    plan: Any, args: argparse.Namespace, n_workers: int, *, kube_factory: Any
) -> tuple[int, Any]:
    """``run_and_report`` across ``n_workers`` processes (``app.shard``): the same console and
    reports from the merged run; a worker that died makes the exit code 4."""
    from smokegate.api import exit_code
    from smokegate.app.shard import execute_sharded
    from smokegate.cli._args import run_settings
    from smokegate.cli._output import ConsoleRun, err
    from smokegate.core.loop import run_async

    settings = run_settings(args)
    console_run = ConsoleRun(args)
    sharded = run_async(
        execute_sharded(
            plan,
            settings,
            n_workers,
            observer=console_run.observer(plan),
            kube_factory=kube_factory,
            namespace=args.namespace,
            on_note=err,
        )
    )
    errors = console_run.finish(sharded.run, plan)
    for crash in sharded.crashes:
        err(crash)
    code = exit_code(sharded.run, errors)
    if sharded.crashes and code != 130:
        code = 4
    return code, sharded.run


def cmd_lint(args: argparse.Namespace) -> int:
    from smokegate.api import parse_vars, plan_run

    plan = plan_run(args.suites, cli_vars=parse_vars(args.var), lint=True)
    n = len(plan.checks)
    print(
        f"ok: {len(plan.suites)} suite{'s' if len(plan.suites) != 1 else ''}, "
        f"{n} check{'s' if n != 1 else ''}"
    )
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from smokegate.suite.model import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
