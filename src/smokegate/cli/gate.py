"""``smokegate gate``: flags -> ``app.release.ReleaseRequest`` -> ``run_gate`` -> exit code.

The gate's flow (wait for Flux, facts, Secrets, discovery, Helm tests, run, report back) is the
library's release flow (``app.release.run_release``, which ``serve`` runs too); this module
parses the suites once (and validates them before the wait), and its observer
(``GateObserver``) prints Flux's progress on stderr, the live console and the reports.
"""

from __future__ import annotations

import argparse
import sys
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
from smokegate.cli._incluster import add_in_cluster_args
from smokegate.cli.discover import add_discover_options
from smokegate.core.durations import duration_arg


def add_gate_parser(sub: Any) -> None:
    p = sub.add_parser(
        "gate",
        help="wait for a Flux HelmRelease, run suites against it, report back to Flux",
        formatter_class=Formatter,
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
        "      --notify-flux http://notification-controller.flux-system.svc.cluster.local./\n"
        "  smokegate gate hr/podinfo -n apps suites/ --in-cluster --service-account smokegate\n",
    )
    p.add_argument(
        "target",
        metavar="helmrelease/NAME",
        help="the HelmRelease: helmrelease/NAME, hr/NAME, NAMESPACE/NAME or NAME",
    )
    add_suite_args(p, suites_required=False)
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
    add_selection_args(p, with_list=False)
    add_run_args(p)
    add_kube_args(p, namespace_help="namespace of the HelmRelease (default: the context's)")
    add_in_cluster_args(p)
    p.set_defaults(cmd=cmd_gate)


def cmd_gate(args: argparse.Namespace) -> int:
    from smokegate.cli.discover import gate_discover_request
    from smokegate.core.errors import UsageError

    if args.notify_flux and not args.notify_flux.startswith(("http://", "https://")):
        raise UsageError(f"--notify-flux {args.notify_flux!r}: must be an http:// or https:// URL")
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    if args.in_cluster and "-" in args.suites:
        raise UsageError("gate --in-cluster: give suite files, not - (stdin)")
    discover = gate_discover_request(args)
    if not args.suites and discover is None:
        raise UsageError("give suite files or directories, or --discover")
    return run_gate(args, discover)


def run_gate(args: argparse.Namespace, discover: Any = None) -> int:
    """The gate: everything that can be checked without the cluster first (the target, the
    kubeconfig, the suites parsed once and every check validated, the report paths), then the
    release flow on one event loop."""
    from smokegate.api import parse_vars, read_stdin_once, validate_suites
    from smokegate.app.notify import FluxNotifier, KubeEventNotifier
    from smokegate.app.release import KubeCluster, ReleaseRequest, SuiteChoice, run_release
    from smokegate.cli._args import run_settings
    from smokegate.cli._output import ConsoleRun, err
    from smokegate.core.durations import format_duration
    from smokegate.core.loop import run_async
    from smokegate.flux.helmrelease import parse_target
    from smokegate.kube.client import effective_namespace, load_config
    from smokegate.suite.loader import parse_suites

    kube = kube_options(args)
    ns_hint, name = parse_target(args.target, kube.namespace)
    config = load_config(kube)
    namespace = ns_hint or effective_namespace(config, kube)
    cli_vars = parse_vars(args.var)
    stdin_text = read_stdin_once(args.suites)
    raws = parse_suites(args.suites, stdin_text=stdin_text) if args.suites else []
    if raws:
        validate_suites(raws, cli_vars=cli_vars)
    console_run = ConsoleRun(args)
    observer = GateObserver(args, console_run)
    runner = None
    if args.in_cluster:
        # The suites run in a Job in the release's namespace, with the release's facts.
        from smokegate.cli._incluster import GateInClusterRunner

        runner = GateInClusterRunner(args, console_run)
    notifiers: list[Any] = [] if args.no_event else [KubeEventNotifier()]
    if args.notify_flux:
        notifiers.append(FluxNotifier(args.notify_flux))
    request = ReleaseRequest(
        namespace=namespace,
        name=name,
        suites=SuiteChoice(raws, vars=cli_vars, discover=discover),
        cluster=KubeCluster(config),
        revision=args.revision,
        wait_timeout=args.timeout,
        selection=selection(args),
        helm_tests=args.helm_tests,
        ignore_helm_tests=args.ignore_helm_tests,
        settings=run_settings(args),
        notifiers=notifiers,
        runner=runner,
    )
    err(
        f"gate {args.target}"
        + (f" at revision {args.revision}" if args.revision else "")
        + f" (timeout {format_duration(args.timeout)})"
    )
    result = run_async(run_release(request, observer))
    if result.plan is None:  # nothing to run (no suite, nothing discovered, no Helm tests)
        observer.planned(None, [])
    return result.code if result.code is not None else observer.code


class GateObserver:
    """The gate's view of the release flow (an ``app.release.ReleaseObserver``): progress on
    stderr (``smokegate: …``), Flux's Helm tests before the run, the live console and the
    reports, then where it reported."""

    def __init__(self, args: argparse.Namespace, console: Any) -> None:
        self.args = args
        self.console = console
        self.code = 0
        """The exit code when nothing ran."""

    def phase(self, name: str) -> None:
        pass

    def progress(self, message: str) -> None:
        from smokegate.cli._output import err

        err(message)

    def discovered(self, discovery: Any) -> None:
        pass

    def helm_tests(self, results: list[Any]) -> None:
        from smokegate.cli._output import print_helm_tests

        print_helm_tests(results, self.args)

    def planned(self, plan: Any, helm_tests: list[Any]) -> bool:
        if helm_tests or (plan is not None and plan.checks):
            return True
        print("smokegate: no checks selected", file=sys.stderr)
        self.code = 2 if not selection(self.args).empty else 0
        return False

    def run_observer(self, plan: Any) -> Any:
        return self.console.observer(plan)

    def finished(self, run: Any, plan: Any) -> list[str]:
        errors: list[str] = self.console.finish(run, plan)
        return errors

    def reported(self, delivery: Any) -> None:
        from smokegate.cli._output import err

        err(delivery.text)
