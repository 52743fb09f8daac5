"""Flags more than one command shares, and turning them into library values.

Imports argparse and nothing heavy: every command module builds its parser from these at
start-up, also for ``smokegate --version``.
"""

from __future__ import annotations

import argparse
from typing import Any

EXIT_CODES = """\
exit codes:
  0  all selected checks passed
  1  at least one check failed (or errored)
  2  usage or suite error: nothing ran
  3  the target never became ready (gate timeout or terminal Flux failure)
  4  internal error (a --workers process died, too), or the Kubernetes API refused or could
     not be reached
  130 interrupted (Ctrl-C); reports still hold what finished
"""


class Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def add_suite_args(p: argparse.ArgumentParser, *, suites_required: bool = True) -> None:
    p.add_argument(
        "suites",
        nargs="+" if suites_required else "*",
        metavar="SUITE",
        help="suite files or directories (all *.yaml/*.yml inside); - for stdin",
    )
    p.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a variable (overrides the suite's vars:); repeatable",
    )


def add_kube_args(p: argparse.ArgumentParser, *, namespace_help: str) -> None:
    g = p.add_argument_group("kubernetes (like kubectl)")
    g.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else the pod's "
        "service account when running in a pod)",
    )
    g.add_argument("--context", metavar="NAME", help="kubeconfig context to use")
    g.add_argument("-n", "--namespace", metavar="NS", help=namespace_help)


def add_selection_args(p: argparse.ArgumentParser, *, with_list: bool = True) -> None:
    g = p.add_argument_group("selection")
    g.add_argument(
        "-k",
        "--select",
        action="append",
        default=[],
        metavar="GLOB",
        help="run checks whose name (or suite/name) matches; !GLOB excludes; repeatable",
    )
    g.add_argument(
        "-t",
        "--tag",
        action="append",
        default=[],
        metavar="TAG",
        help="run checks with this tag; repeatable (any tag matches)",
    )
    g.add_argument(
        "--exclude-tag",
        action="append",
        default=[],
        metavar="TAG",
        help="skip checks with this tag; repeatable",
    )
    if with_list:
        g.add_argument(
            "--list", action="store_true", help="print the checks that would run, then exit"
        )


def add_run_args(p: argparse.ArgumentParser, *, workers: bool = False) -> None:
    g = p.add_argument_group("execution")
    g.add_argument(
        "-c",
        "--concurrency",
        type=int,
        default=32,
        metavar="N",
        help="checks in flight at once (default: 32)",
    )
    if workers:
        g.add_argument(
            "-j",
            "--workers",
            type=_workers,
            default=1,
            metavar="N|auto",
            help="split the run across N processes, one event loop each (auto: one per usable "
            "CPU); -c is shared out between them, checks linked by needs stay together, one "
            "merged report in the same order (default: 1, this process)",
        )
    g.add_argument(
        "-x",
        "--fail-fast",
        action="store_true",
        help="stop at the first failed check (the rest are reported as skipped)",
    )
    g.add_argument(
        "--resolve",
        action="append",
        default=[],
        metavar="HOST:PORT:ADDR",
        help="connect to ADDR for HOST:PORT (like curl --resolve); repeatable",
    )
    add_report_args(p)


def add_report_args(
    p: argparse.ArgumentParser,
    *,
    verbose_help: str = "show every check, even in large runs, with attempt details",
) -> None:
    """The reporting flags every command that runs checks shares."""
    r = p.add_argument_group("reports")
    r.add_argument(
        "--report",
        action="append",
        default=[],
        metavar="FORMAT=PATH",
        help="also write a report: junit=, json=, markdown=, html=; repeatable. "
        "Markdown goes to $GITHUB_STEP_SUMMARY automatically when set",
    )
    r.add_argument("-q", "--quiet", action="store_true", help="only failures and the summary")
    r.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    r.add_argument("--no-color", action="store_true", help="no colour (NO_COLOR also works)")


def _workers(value: str) -> int:
    """``-j N`` or ``-j auto`` (0 here: resolved to the usable CPUs when the run starts)."""
    if value == "auto":
        return 0
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: use a number or 'auto'") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: at least 1 (or 'auto')")
    return n


# --- flags -> library values (imported only by the command that runs) -------------------------


def workers(args: argparse.Namespace) -> int:
    """``-j``: the number of worker processes (``auto``: the CPUs this process may use)."""
    n: int = getattr(args, "workers", 1)
    if n == 0:
        from smokegate.engine.shard import usable_cpus

        return usable_cpus()
    return n


def selection(args: argparse.Namespace) -> Any:
    """``-k/-t/--exclude-tag`` as an ``engine.select.Selection``."""
    from smokegate.core.selection import Selection

    return Selection(tuple(args.select), tuple(args.tag), tuple(args.exclude_tag))


def kube_options(args: argparse.Namespace) -> Any:
    """``--kubeconfig/--context/-n`` as ``kube.client.KubeOptions``."""
    from smokegate.kube.client import KubeOptions

    return KubeOptions(args.kubeconfig, args.context, args.namespace)


def run_settings(args: argparse.Namespace) -> Any:
    """``-c/-x/--resolve`` as ``api.RunSettings`` (usage errors for bad values)."""
    from smokegate.api import RunSettings, parse_resolve_flags
    from smokegate.core.errors import UsageError

    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    return RunSettings(
        concurrency=args.concurrency,
        fail_fast=args.fail_fast,
        resolve=parse_resolve_flags(args.resolve),
    )
