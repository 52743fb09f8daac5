"""``smokegate helm-test``: run a release's Helm test hooks properly.

``add_helm_test_parser(subparsers)`` adds the subcommand to smokegate's parser (importing only
argparse, so ``smokegate --version`` stays fast); ``cmd_helm_test(args)`` runs it and returns the
exit code. ``python -m smokegate.helmtest.cli …`` runs it standalone, with the same error
handling as ``smokegate`` itself.

Exit codes: 0 all selected tests passed (or the release has none); 1 a test failed; 2 usage
error, release or deployed revision not found, or no test matched the selection; 4 API error
(forbidden, unreachable); 130 interrupted (Ctrl-C or SIGTERM; cleanup still ran).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from smokegate.durations import duration_arg

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
    from smokegate.cli import add_report_args

    add_report_args(p, verbose_help="also show each object created and deleted")
    p.set_defaults(fail_fast=False)
    return p


def _err(message: str) -> None:
    print(f"smokegate: {message}", file=sys.stderr, flush=True)


def cmd_helm_test(args: argparse.Namespace) -> int:
    """Run ``smokegate helm-test`` with parsed ``args``; returns the exit code. Raises
    ``SmokegateError`` for problems the caller prints (usage, not found, API errors)."""
    from smokegate.errors import UsageError
    from smokegate.kube.client import KubeOptions, effective_namespace, load_config
    from smokegate.session import run_async

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
    options = KubeOptions(args.kubeconfig, args.context, args.namespace)
    config = load_config(options)
    namespace = effective_namespace(config, options)
    if args.cleanup:
        return run_async(_cleanup(args, config, namespace))
    return run_async(_run(args, config, namespace))


async def _cleanup(args: argparse.Namespace, config: Any, namespace: str) -> int:
    from smokegate.errors import ClusterError
    from smokegate.helmtest.runner import cleanup_leftovers
    from smokegate.helmtest.target import resolve_target
    from smokegate.kube.client import KubeClient

    client = KubeClient(config, namespace)
    try:
        release, where = None, namespace
        if args.target:
            target = await resolve_target(
                client, args.target, namespace, namespace_flag=args.namespace
            )
            release, where = target.release, target.namespace
        deleted, problems = await cleanup_leftovers(
            client, where, release=release, older_than=args.older_than
        )
    finally:
        await client.close()
    for item in deleted:
        print(f"deleted {item}")
    scope = f"of release {release} " if release else ""
    summary = f"{len(deleted)} object(s) {scope}removed from namespace {where}"
    if problems:
        raise ClusterError(f"cleanup incomplete ({summary}): " + "; ".join(problems))
    _err(f"cleanup: {summary}")
    return 0


async def _run(args: argparse.Namespace, config: Any, namespace: str) -> int:
    from smokegate.engine.select import Selection
    from smokegate.helmtest.hooks import choose, failed_last_time, parse_filters, release_tests
    from smokegate.helmtest.target import HelmTestError, load_release, resolve_target
    from smokegate.kube.client import KubeClient

    filters = parse_filters(args.filter)  # usage errors before any API call
    client = KubeClient(config, namespace)
    try:
        target = await resolve_target(client, args.target, namespace, namespace_flag=args.namespace)
        loaded = await load_release(client, target)
        hooks = release_tests(loaded.record, loaded.describe)
        only = None
        if args.rerun_failed:
            only = failed_last_time(hooks, target.flux_test_hooks)
        chosen = choose(
            hooks,
            filters=filters,
            selection=Selection(tuple(args.select), tuple(args.tag), tuple(args.exclude_tag)),
            only=only,
            flux_filters=() if args.no_flux_filters else target.flux_filters,
        )
        if args.list:
            _print_list(loaded, chosen)
            return 0
        if not [h for h in hooks if h.runnable]:
            _err(f"{loaded.describe} has no test hooks: nothing to run")
            return 0
        if not chosen.tests:
            if only is not None and not only:
                source = "Flux's status" if target.flux_test_hooks else "Helm's record"
                _err(f"nothing to rerun: no test failed last time ({source})")
                return 0
            raise HelmTestError(
                f"{loaded.describe}: no test hook matches the selection (see --list)"
            )
        return await _execute(args, client, loaded, chosen.selected)
    finally:
        await client.close()


async def _execute(args: argparse.Namespace, kube: Any, loaded: Any, hooks: list[Any]) -> int:
    import asyncio
    import signal
    import time
    import uuid

    from smokegate.engine.results import RunResult, SuiteInfo
    from smokegate.helmtest.record import record_last_runs
    from smokegate.helmtest.runner import RUN_LABEL, HelmTestRun, Options
    from smokegate.report import ReportTarget, parse_report_flag, write_reports
    from smokegate.report.console import ConsoleReporter, make_console
    from smokegate.secrets import Redactor

    targets = [parse_report_flag(r) for r in args.report]
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        targets.append(ReportTarget("markdown", summary, append=True))
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
    note = _err if args.verbose else (lambda message: None)
    test_run = HelmTestRun(kube, loaded, hooks, options, observer=reporter, note=note)
    n = len(test_run.tests)
    _err(
        f"{loaded.describe} (chart {loaded.chart}): running {n} test{'s' if n != 1 else ''}"
        f"{' in parallel per weight' if args.parallel else ''} in namespace "
        f"{loaded.target.namespace} (run {test_run.run_id})"
    )
    run = RunResult(
        run_id=uuid.uuid4().hex[:12],
        started_at=time.time(),
        suites=[SuiteInfo(test_run.suite, loaded.describe, _release_info(loaded))],
        # The release facts are on the suite entry; the context says which run created what.
        context={"helmTest": {"run": test_run.run_id, "label": f"{RUN_LABEL}={test_run.run_id}"}},
    )
    task = asyncio.ensure_future(test_run.run())
    loop = asyncio.get_running_loop()
    signals = [signal.SIGINT, signal.SIGTERM]

    def interrupt() -> None:
        if not task.done() and not task.cancelling():
            _err("interrupted: collecting logs and deleting what this run created…")
            task.cancel()
        else:
            _err("still cleaning up (at most 30s)…")

    for sig in signals:
        loop.add_signal_handler(sig, interrupt)
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled() or (me := asyncio.current_task()) is None or me.cancelling():
            raise  # this coroutine itself is being cancelled: not ours to swallow
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    run.results = test_run.ordered_results()
    run.interrupted = test_run.interrupted
    run.finished_at = time.time()
    if args.record:
        _err(await record_last_runs(kube, loaded, test_run.last_runs))
    reporter.finish(run)
    for err in write_reports(run, targets, Redactor()):
        _err(str(err))
    for t in targets:
        if t.path != summary:
            console.print(f"[dim]{t.format} report: {t.path}[/dim]")
    if test_run.leftovers:
        _err(
            "warning: could not delete: " + "; ".join(test_run.leftovers) + " — remove them with "
            f"`smokegate helm-test --cleanup -n {loaded.target.namespace}`"
        )
    elif args.keep:
        _err(
            f"kept the test objects (label {RUN_LABEL}={test_run.run_id}); "
            f"remove them with `smokegate helm-test --cleanup -n {loaded.target.namespace}`"
        )
    if run.interrupted:
        return 130
    return 0 if run.ok else 1


def _release_info(loaded: Any) -> dict[str, Any]:
    t = loaded.target
    info: dict[str, Any] = {
        "name": t.release,
        "namespace": t.namespace,
        "storageNamespace": t.storage_namespace,
        "revision": loaded.record.version,
        "chart": loaded.chart,
    }
    if t.helmrelease is not None:
        meta = t.helmrelease.get("metadata") or {}
        info["helmRelease"] = f"{meta.get('namespace')}/{meta.get('name')}"
    return info


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


# --- standalone --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m smokegate.helmtest.cli``: the subcommand on its own, with smokegate's error
    handling (messages, never tracebacks; exit codes as documented)."""
    parser = argparse.ArgumentParser(prog="smokegate")
    add_helm_test_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["helm-test", *(sys.argv[1:] if argv is None else argv)])
    from smokegate.errors import SmokegateError

    try:
        return cmd_helm_test(args)
    except SmokegateError as exc:
        _err(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # a bug: short message; traceback only on request
        if os.environ.get("SMOKEGATE_DEBUG"):
            raise
        _err(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "  (set SMOKEGATE_DEBUG=1 for a traceback, and please report it)"
        )
        return 4


if __name__ == "__main__":
    raise SystemExit(main())
