"""``smokegate helm-test``: run a release's Helm test hooks properly.

Flags -> ``helmtest.api.plan_tests`` (which tests) -> ``helmtest.api.run_tests`` (run, logs,
cleanup) -> console, reports and the exit code; ``--cleanup`` is ``helmtest.api.clean_up``.

Exit codes: 0 all selected tests passed (or the release has none); 1 a test failed; 2 usage
error, release or deployed revision not found, or no test matched the selection; 4 API error
(forbidden, unreachable); 130 interrupted (Ctrl-C or SIGTERM; cleanup still ran).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from smokegate.cli._args import add_report_args, kube_options, selection
from smokegate.cli._output import err, report_targets
from smokegate.core.durations import duration_arg

EXAMPLES = """\
examples:
  smokegate helm-test myapp -n web
  smokegate helm-test myapp -n web --filter 'myapp-test-*' --filter '!*-slow' --parallel
  smokegate helm-test hr/podinfo -n apps --rerun-failed --report junit=out/helm-tests.xml
  smokegate helm-test apps/podinfo --list         # HelmRelease podinfo in namespace apps
  smokegate helm-test myapp -n web --list
  smokegate helm-test --cleanup -n web            # remove what crashed runs left behind
"""

EXIT_CODES = """\
exit codes:
  0  every selected test passed (or the release has no tests)
  1  at least one test failed, timed out or errored
  2  usage error; release, deployed revision or matching test not found
  4  Kubernetes API error (forbidden, unreachable) or internal error
  130 interrupted (Ctrl-C/SIGTERM): what ran is reported, what was created is deleted
"""


def add_helm_test_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``helm-test`` to ``subparsers`` (from ``parser.add_subparsers()``)."""
    p = subparsers.add_parser(
        "helm-test",
        help="run a release's Helm test hooks: all of them, with logs, cleaned up",
        formatter_class=lambda prog: argparse.RawDescriptionHelpFormatter(
            prog, max_help_position=32, width=100
        ),
        description="Run the chart's own `helm.sh/hook: test` Pods and Jobs of a Helm release\n"
        "(or of a Flux HelmRelease: hr/NAME or NS/NAME), the way `helm test` should:\n"
        "  - every test runs, even after a failure (Helm stops at the first);\n"
        "  - every container's log is kept, whatever the hook's delete policy says;\n"
        "  - what the run creates is deleted when it ends, also on timeout and Ctrl-C;\n"
        "  - results go to the same reports as suites (JUnit, JSON, HTML, Markdown).\n"
        "See docs/helm-test.md.",
        epilog=EXIT_CODES + "\n" + EXAMPLES,
    )
    p.add_argument(
        "target",
        nargs="?",
        metavar="RELEASE|hr/NAME",
        help="a Helm release, or a Flux HelmRelease as hr/NAME or NS/NAME (release name, "
        "storage and target namespace resolved as Flux does)",
    )
    g = p.add_argument_group("kubernetes (like kubectl)")
    g.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (default: as kubectl)")
    g.add_argument("--context", metavar="NAME", help="kubeconfig context to use")
    g.add_argument(
        "-n",
        "--namespace",
        metavar="NS",
        help="namespace of the release (or HelmRelease); default: the context's",
    )
    g = p.add_argument_group("selection")
    g.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="GLOB",
        help="run hooks whose name matches; !GLOB excludes; Helm's name=X / !name=X work "
        "too; repeatable or comma-separated",
    )
    g.add_argument(
        "-k",
        "--select",
        action="append",
        default=[],
        metavar="GLOB",
        help="like --filter, also matching helm-test/NAME; repeatable",
    )
    g.add_argument(
        "-t",
        "--tag",
        action="append",
        default=[],
        metavar="TAG",
        help="run hooks with this tag (annotation smokegate.io/tags); repeatable",
    )
    g.add_argument(
        "--exclude-tag", action="append", default=[], metavar="TAG", help="skip hooks with this tag"
    )
    g.add_argument(
        "--rerun-failed",
        action="store_true",
        help="run only the tests whose last run failed (Flux's status for hr/NAME, else "
        "Helm's record)",
    )
    g.add_argument(
        "--no-flux-filters",
        action="store_true",
        help="for hr/NAME: ignore the HelmRelease's spec.test.filters (applied by default)",
    )
    g.add_argument("--list", action="store_true", help="show the test hooks and what would run")
    g = p.add_argument_group("execution")
    g.add_argument(
        "--timeout",
        type=duration_arg,
        default=300.0,
        metavar="DURATION",
        help="per test, from creation until it ends (default: 5m, as helm test)",
    )
    g.add_argument(
        "--deadline",
        type=duration_arg,
        metavar="DURATION",
        help="for the whole run: no test starts after it, a running one is stopped",
    )
    g.add_argument(
        "--parallel",
        action="store_true",
        help="run the tests of one hook weight at the same time (weights still run in order)",
    )
    g.add_argument(
        "--max-parallel",
        type=int,
        default=8,
        metavar="N",
        help="with --parallel: tests in flight at once (default: 8)",
    )
    mode = g.add_mutually_exclusive_group()
    mode.add_argument(
        "--keep-going",
        dest="fail_fast",
        action="store_false",
        help="run every test even after one fails (the default)",
    )
    mode.add_argument(
        "-x",
        "--fail-fast",
        dest="fail_fast",
        action="store_true",
        help="stop after the first failed test, like helm test (the rest: skipped)",
    )
    g.add_argument(
        "--keep",
        action="store_true",
        help="leave the test pods and Jobs in place (remove them later with --cleanup)",
    )
    g.add_argument(
        "--record",
        action="store_true",
        help="also record the outcomes in Helm's release record (last_run, as helm test "
        "does), so `helm status` shows them; needs update on Secrets",
    )
    g = p.add_argument_group("cleanup of crashed runs")
    g.add_argument(
        "--cleanup",
        action="store_true",
        help="delete what earlier runs left in the namespace (of RELEASE only, if given), "
        "then exit; nothing is run",
    )
    g.add_argument(
        "--older-than",
        type=duration_arg,
        metavar="DURATION",
        help="with --cleanup: only objects at least this old (spares runs in progress)",
    )
    add_report_args(p, verbose_help="also show each object created and deleted")
    p.set_defaults(fail_fast=False, cmd=cmd_helm_test)
    return p


def cmd_helm_test(args: argparse.Namespace) -> int:
    """Run ``smokegate helm-test`` with parsed ``args``; returns the exit code. Raises
    ``SmokegateError`` for problems the caller prints (usage, not found, API errors)."""
    from smokegate.core.errors import UsageError
    from smokegate.core.loop import run_async
    from smokegate.kube.client import effective_namespace, load_config

    if not args.target and not args.cleanup:
        raise UsageError(
            "helm-test: name a release (RELEASE, hr/NAME or NS/NAME), or use --cleanup"
        )
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    if args.deadline is not None and args.deadline <= 0:
        raise UsageError("--deadline must be positive")
    if args.max_parallel < 1:
        raise UsageError("--max-parallel must be at least 1")
    if args.older_than is not None and not args.cleanup:
        raise UsageError("--older-than goes with --cleanup")
    options = kube_options(args)
    config = load_config(options)
    namespace = effective_namespace(config, options)
    if args.cleanup:
        return run_async(_cleanup(args, config, namespace))
    return run_async(_run(args, config, namespace))


async def _cleanup(args: argparse.Namespace, config: Any, namespace: str) -> int:
    from smokegate.core.errors import ClusterError
    from smokegate.helmtest.api import clean_up
    from smokegate.kube.client import KubeClient

    client = KubeClient(config, namespace)
    try:
        done = await clean_up(
            client,
            args.target,
            namespace,
            namespace_flag=args.namespace,
            older_than=args.older_than,
        )
    finally:
        await client.close()
    for item in done.deleted:
        print(f"deleted {item}")
    if done.problems:
        raise ClusterError(f"cleanup incomplete ({done.summary()}): " + "; ".join(done.problems))
    err(f"cleanup: {done.summary()}")
    return 0


async def _run(args: argparse.Namespace, config: Any, namespace: str) -> int:
    from smokegate.helmtest.api import plan_tests
    from smokegate.helmtest.hooks import parse_filters
    from smokegate.helmtest.target import HelmTestError
    from smokegate.kube.client import KubeClient

    filters = parse_filters(args.filter)  # usage errors before any API call
    client = KubeClient(config, namespace)
    try:
        plan = await plan_tests(
            client,
            args.target,
            namespace,
            namespace_flag=args.namespace,
            filters=filters,
            selection=selection(args),
            rerun_failed=args.rerun_failed,
            flux_filters=not args.no_flux_filters,
        )
        if args.list:
            _print_list(plan.loaded, plan.chosen)
            return 0
        if not plan.has_tests:
            err(f"{plan.loaded.describe} has no test hooks: nothing to run")
            return 0
        if not plan.chosen.tests:
            if plan.only is not None and not plan.only:
                err(f"nothing to rerun: no test failed last time ({plan.last_run_source})")
                return 0
            raise HelmTestError(
                f"{plan.loaded.describe}: no test hook matches the selection (see --list)"
            )
        return await _execute(args, client, plan.loaded, plan.chosen.selected)
    finally:
        await client.close()


async def _execute(args: argparse.Namespace, kube: Any, loaded: Any, hooks: list[Any]) -> int:
    from smokegate.core.secrets import Redactor
    from smokegate.helmtest.api import run_tests
    from smokegate.helmtest.objects import RUN_LABEL
    from smokegate.helmtest.runner import Options
    from smokegate.report import write_reports
    from smokegate.report.console import ConsoleReporter, make_console

    targets, summary = report_targets(args)
    console = make_console(no_color=args.no_color)
    reporter = ConsoleReporter(console, Redactor(), verbose=args.verbose, quiet=args.quiet)
    options = Options(
        timeout=args.timeout,
        deadline=args.deadline,
        parallel=args.parallel,
        max_parallel=args.max_parallel,
        keep_going=not args.fail_fast,
        keep=args.keep,
    )
    outcome = await run_tests(
        kube,
        loaded,
        hooks,
        options,
        observer=reporter,
        note=err,
        verbose_note=err if args.verbose else (lambda message: None),
        record=args.record,
    )
    run, test_run = outcome.run, outcome.test_run
    if outcome.record_note is not None:
        err(outcome.record_note)
    reporter.finish(run)
    for error in write_reports(run, targets, Redactor()):
        err(str(error))
    for t in targets:
        if t.path != summary:
            console.print(f"[dim]{t.format} report: {t.path}[/dim]")
    if test_run.leftovers:
        err(
            "warning: could not delete: " + "; ".join(test_run.leftovers) + " — remove them with "
            f"`smokegate helm-test --cleanup -n {loaded.target.namespace}`"
        )
    elif args.keep:
        err(
            f"kept the test objects (label {RUN_LABEL}={test_run.run_id}); "
            f"remove them with `smokegate helm-test --cleanup -n {loaded.target.namespace}`"
        )
    if run.interrupted:
        return 130
    return 0 if run.ok else 1


def _print_list(loaded: Any, chosen: Any) -> None:
    rows = [("WEIGHT", "HOOK", "KIND", "LAST RUN", "")]
    for c in chosen.choices:
        h = c.hook
        kind = h.kind if h.runnable else f"{h.kind} (support)"
        note = "" if c.selected else c.reason
        rows.append((str(h.weight), h.name, kind, h.last_phase or "-", note or ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f"{loaded.describe} (chart {loaded.chart}), tests run in namespace "
          f"{loaded.target.namespace}:")  # fmt: skip
    for r in rows:
        print("  " + "  ".join(v.ljust(widths[i]) for i, v in enumerate(r[:4])) + "  " + r[4])
    n, total = len(chosen.tests), len([c for c in chosen.choices if c.hook.runnable])
    print(f"{n} of {total} test{'s' if total != 1 else ''} selected", file=sys.stderr)
