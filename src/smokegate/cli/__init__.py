"""The command line: every front end of smokegate, one module per command.

* ``run`` (``run``, ``lint``, ``schema``), ``gate``, ``discover``, ``helm_test``, ``serve``
  (``serve``, ``trigger``), ``demo``: each adds its subparser(s) and has
  ``cmd_<name>(args) -> int``, which parses flags into a request, calls the library, and maps
  the outcome to output and an exit code. Nothing in a command module decides how checks run.
* ``_args``: flags several commands share (suites, selection, execution, reports, kubernetes);
  ``_output``: what several commands print (``--list``, the run with its live console).

Nothing outside this package imports it (tests/test_architecture.py and ``make lint`` check).
argparse (stdlib) rather than a CLI framework keeps ``smokegate --version`` fast: the command
modules import argparse only, every heavy import happens inside the command that runs. This
module imports nothing at its top but ``os``/``sys`` (loaded with the interpreter anyway): the
command modules and argparse are imported when the parser is built, and a lone
``smokegate --version`` answers before that (the interpreter's own start-up is most of it).
"""

from __future__ import annotations

import os
import sys

from smokegate import __version__

# (not typing's: importing typing costs more than the rest of `smokegate --version`; mypy
# treats any TYPE_CHECKING as true)
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence


# Every command: (name, module in smokegate.cli, function adding its subparser), in the order of
# `smokegate --help` (tests/core/test_hardening.py checks it against the full parser).
COMMANDS = (
    ("run", "run", "add_run_parser"),
    ("gate", "gate", "add_gate_parser"),
    ("lint", "run", "add_lint_parser"),
    ("discover", "discover", "add_discover_parser"),
    ("schema", "run", "add_schema_parser"),
    ("demo", "demo", "add_demo_parser"),
    ("helm-test", "helm_test", "add_helm_test_parser"),
    ("serve", "serve", "add_serve_parser"),
    ("trigger", "serve", "add_trigger_parser"),
    ("validate", "premerge", "add_validate_parser"),
    ("diff", "premerge", "add_diff_parser"),
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only`` (a command name), with that command's subparser alone: the
    other command modules are not even imported (``smokegate run`` starts sooner)."""
    import argparse
    import importlib

    from smokegate.cli._args import EXIT_CODES, Formatter

    parser = argparse.ArgumentParser(
        prog="smokegate",
        description="Verify Kubernetes deployments after they happen: declarative smoke suites, "
        "a CI gate for Flux, reports where people look.",
        epilog=EXIT_CODES + "\nRun 'smokegate COMMAND --help' for a command's options.",
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"smokegate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = [c for c in COMMANDS if c[0] == only] or COMMANDS
    for _name, module, add in wanted:
        getattr(importlib.import_module(f"smokegate.cli.{module}"), add)(sub)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse with options and positionals in any order (``gate hr/x -n apps suite.yaml``).

    argparse matches consecutive positionals greedily, so ``TARGET [SUITE...]`` split by options
    loses the suites; ``parse_intermixed_args`` fixes that but refuses parsers with subcommands,
    so the subcommand's own parser does the intermixed parse."""
    import argparse

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
    if list(sys.argv[1:] if argv is None else argv) == ["--version"]:
        # What argparse's version action prints, without importing argparse and every command.
        print(f"smokegate {__version__}")
        return 0
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=words[0] if words else None)
    args = parse_args(parser, argv)
    if args.command is None:
        parser.print_help()
        return 2
    from smokegate.cli._output import problems_text
    from smokegate.core.errors import SmokegateError

    try:
        return int(args.cmd(args))
    except SmokegateError as exc:
        print(
            f"smokegate: {exc}" if not hasattr(exc, "problems") else problems_text(exc),
            file=sys.stderr,
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
