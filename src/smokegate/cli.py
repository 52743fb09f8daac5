"""Command line: parse flags, call the library, map the outcome to an exit code. Nothing else.

argparse (stdlib) rather than a CLI framework keeps ``smokegate --version`` fast: every heavy
import happens inside the command that needs it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from smokegate import __version__
from smokegate.durations import duration_arg

EXIT_CODES = """\
exit codes:
  0  all selected checks passed
  1  at least one check failed (or errored)
  2  usage or suite error: nothing ran
  3  the target never became ready (gate timeout or terminal Flux failure)
  4  internal error, or the Kubernetes API refused or could not be reached
  130 interrupted (Ctrl-C); reports still hold what finished
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def _add_suite_args(p: argparse.ArgumentParser, *, suites_required: bool = True) -> None:
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


def _add_kube_args(p: argparse.ArgumentParser, *, namespace_help: str) -> None:
    g = p.add_argument_group("kubernetes (like kubectl)")
    g.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else the pod's "
        "service account when running in a pod)",
    )
    g.add_argument("--context", metavar="NAME", help="kubeconfig context to use")
    g.add_argument("-n", "--namespace", metavar="NS", help=namespace_help)


def _add_selection_args(p: argparse.ArgumentParser, *, with_list: bool = True) -> None:
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


def _add_run_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("execution")
    g.add_argument(
        "-c",
        "--concurrency",
        type=int,
        default=32,
        metavar="N",
        help="checks in flight at once (default: 32)",
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


def build_parser() -> argparse.ArgumentParser:
    from smokegate.discover_cli import add_discover_options, add_discover_parser

    parser = argparse.ArgumentParser(
        prog="smokegate",
        description="Verify Kubernetes deployments after they happen: declarative smoke suites, "
        "a CI gate for Flux, reports where people look.",
        epilog=EXIT_CODES + "\nRun 'smokegate COMMAND --help' for a command's options.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"smokegate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "run",
        help="run suites once and report",
        formatter_class=_Formatter,
        description="Run the checks of one or more suites and report the result.",
        epilog=EXIT_CODES + "\nexamples:\n"
        "  smokegate run suites/\n"
        "  smokegate run suite.yaml -t smoke --report junit=out/junit.xml\n"
        "  smokegate run suite.yaml -k 'api-*' --var base=http://localhost:8080\n",
    )
    _add_suite_args(p, suites_required=False)
    add_discover_options(p)
    _add_selection_args(p)
    _add_run_args(p)
    _add_kube_args(
        p,
        namespace_help="default namespace for `kube` checks and Secret references "
        "(default: the context's). The cluster is contacted only if a suite needs it",
    )

    p = sub.add_parser(
        "gate",
        help="wait for a Flux HelmRelease, run suites against it, report back to Flux",
        formatter_class=_Formatter,
        description="The CI promotion gate for a Flux HelmRelease:\n"
        "  1. wait until Flux has reconciled it (generation observed, Ready=True, at\n"
        "     --revision if given, Flux's Helm tests finished), showing Flux's progress;\n"
        "     fail at once (exit 3) on Stalled or a terminal Ready=False reason\n"
        "     (InstallFailed, UpgradeFailed, RollbackSucceeded, …), or at --timeout;\n"
        "  2. run the suites with ${release.name}, ${release.namespace}, ${release.revision},\n"
        "     ${release.appVersion}, ${release.digest} set; Flux's Helm test results\n"
        "     (spec.test.enable) are reported as helm-test/<hook> checks;\n"
        "  3. record a Kubernetes Event on the HelmRelease (SmokeTestSucceeded/Failed) and,\n"
        "     with --notify-flux, POST the result to Flux's notification-controller.\n"
        "The default namespace of `kube` checks and Secret references is the release's\n"
        "(spec.targetNamespace, else the HelmRelease's). Permissions needed: docs/rbac.md.",
        epilog=EXIT_CODES + "\nexamples:\n"
        "  smokegate gate helmrelease/podinfo -n apps suites/\n"
        "  smokegate gate hr/podinfo -n apps --revision 6.6.2 --timeout 15m suites/podinfo.yaml\n"
        "  smokegate gate apps/podinfo suites/ --report junit=out/junit.xml \\\n"
        "      --notify-flux http://notification-controller.flux-system.svc.cluster.local./\n",
    )
    p.add_argument(
        "target",
        metavar="helmrelease/NAME",
        help="the HelmRelease: helmrelease/NAME, hr/NAME, NAMESPACE/NAME or NAME",
    )
    _add_suite_args(p, suites_required=False)
    add_discover_options(p, gate=True)
    g = p.add_argument_group("gate")
    g.add_argument(
        "--revision",
        metavar="REV",
        help="wait for this chart version (status.history[0].chartVersion, as `flux get hr` "
        "shows it); 6.6.1 also matches 6.6.1+<digest>",
    )
    g.add_argument(
        "--timeout",
        type=duration_arg,
        default=600.0,
        metavar="DURATION",
        help="how long to wait for Flux (default: 10m)",
    )
    g.add_argument(
        "--ignore-helm-tests",
        action="store_true",
        help="report failed Flux Helm tests (TestSuccess=False) without failing the gate",
    )
    g.add_argument(
        "--helm-tests",
        choices=("flux", "run"),
        default="flux",
        help="flux: report the Helm tests Flux ran (spec.test.enable); run: also run the "
        "chart's test hooks when Flux did not (see docs/helm-test.md)",
    )
    g.add_argument(
        "--notify-flux",
        metavar="URL",
        help="POST the result to Flux's notification-controller event endpoint, e.g. "
        "http://notification-controller.flux-system.svc.cluster.local./ , so Flux "
        "Alerts/Providers forward it",
    )
    g.add_argument(
        "--no-event",
        action="store_true",
        help="do not record a Kubernetes Event on the HelmRelease",
    )
    _add_selection_args(p, with_list=False)
    _add_run_args(p)
    _add_kube_args(p, namespace_help="namespace of the HelmRelease (default: the context's)")

    p = sub.add_parser(
        "lint",
        help="validate suites without running them",
        formatter_class=_Formatter,
        description="Parse and validate suites: schema, variables, needs. "
        "Exit 0 when valid, 2 with file:line:col problems otherwise.",
    )
    _add_suite_args(p)

    add_discover_parser(sub)

    p = sub.add_parser(
        "schema",
        help="print the suite JSON Schema (for editors)",
        formatter_class=_Formatter,
        description="Print the JSON Schema of suite files. For completion in "
        "editors with the YAML language server, put this first in a "
        "suite:\n  # yaml-language-server: $schema=./suite.schema.json"
        "\nafter 'smokegate schema > suite.schema.json'.",
    )
    p.add_argument("-o", "--output", metavar="PATH", help="write to PATH instead of stdout")

    p = sub.add_parser(
        "demo",
        help="run the bundled demo suite against an embedded service",
        formatter_class=_Formatter,
        description="Start a small demo service on 127.0.0.1 (JSON API, TCP, "
        "TLS) and run examples/demo.yaml against it. No cluster "
        "needed.",
    )
    _add_selection_args(p)
    _add_run_args(p)
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
    from smokegate.helmtest.cli import add_helm_test_parser
    from smokegate.serve_cli import add_serve_parser, add_trigger_parser

    add_helm_test_parser(sub)
    add_serve_parser(sub)
    add_trigger_parser(sub)
    from smokegate.cli_premerge import add_diff_parser, add_validate_parser

    add_validate_parser(sub)
    add_diff_parser(sub)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse with options and positionals in any order (``gate hr/x -n apps suite.yaml``).

    argparse matches consecutive positionals greedily, so ``TARGET [SUITE...]`` split by options
    loses the suites; ``parse_intermixed_args`` fixes that but refuses parsers with subcommands,
    so the subcommand's own parser does the intermixed parse."""
    argv = list(sys.argv[1:] if argv is None else argv)
    subparsers = next(
        (a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None
    )
    if subparsers is not None and argv and argv[0] in subparsers.choices:
        args = subparsers.choices[argv[0]].parse_intermixed_args(argv[1:])
        args.command = argv[0]
        return args
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)
    if args.command is None:
        parser.print_help()
        return 2
    from smokegate import commands
    from smokegate.errors import SmokegateError

    try:
        return int(getattr(commands, f"cmd_{args.command.replace('-', '_')}")(args))
    except SmokegateError as exc:
        print(
            f"smokegate: {exc}" if not hasattr(exc, "problems") else _problems(exc), file=sys.stderr
        )
        return exc.exit_code
    except KeyboardInterrupt:
        print("smokegate: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # last resort: a bug. Short message; traceback only on request.
        if os.environ.get("SMOKEGATE_DEBUG"):
            raise
        print(
            f"smokegate: internal error: {type(exc).__name__}: {exc}\n"
            "  (set SMOKEGATE_DEBUG=1 for a traceback, and please report it)",
            file=sys.stderr,
        )
        return 4
    except BaseException as exc:
        # SIGTERM cancels the run's task; outside the engine (e.g. while `gate` waits) that
        # surfaces as CancelledError: an interruption, not a crash.
        if type(exc).__name__ == "CancelledError":
            print("smokegate: interrupted", file=sys.stderr)
            return 130
        raise


def _problems(exc: BaseException) -> str:
    problems = getattr(exc, "problems", [])
    head = f"smokegate: {len(problems)} problem{'s' if len(problems) != 1 else ''}:"
    return "\n".join([head, *(f"  {p}" for p in problems)])


def entry() -> None:
    """Console-script entry: run, flush, and leave without tearing down every object.

    Interpreter teardown of a large run (every result, spec and model freed one by one) takes
    longer than some whole runs; the OS reclaims the memory at once. atexit handlers (temporary
    files) and buffered output are handled first, so nothing is lost."""
    import atexit

    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":
    entry()
