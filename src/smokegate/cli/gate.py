"""``smokegate gate``: flags -> ``gate.GateRequest`` -> ``gate.run_gate`` -> exit code.

The gate's flow (wait for Flux, facts, Helm tests, run, report back) is the library's
(``smokegate.gate``); this module hands it the console runner (``_output.run_and_report``) and
prints its progress on stderr.
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
        "      --notify-flux http://notification-controller.flux-system.svc.cluster.local./\n",
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
    p.set_defaults(cmd=cmd_gate)


def cmd_gate(args: argparse.Namespace) -> int:
    from smokegate.api import parse_vars
    from smokegate.cli._output import err, print_helm_tests, run_and_report
    from smokegate.cli.discover import gate_discover_request
    from smokegate.core.durations import format_duration
    from smokegate.core.errors import UsageError
    from smokegate.gate import GateRequest, run_gate

    if args.notify_flux and not args.notify_flux.startswith(("http://", "https://")):
        raise UsageError(f"--notify-flux {args.notify_flux!r}: must be an http:// or https:// URL")
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    discover = gate_discover_request(args)
    if not args.suites and discover is None:
        raise UsageError("give suite files or directories, or --discover")
    request = GateRequest(
        target=args.target,
        suites=args.suites,
        discover=discover,
        helm_tests=args.helm_tests,
        kube=kube_options(args),
        revision=args.revision,
        timeout=args.timeout,
        ignore_helm_tests=args.ignore_helm_tests,
        notify_url=args.notify_flux,
        record_event=not args.no_event,
        cli_vars=parse_vars(args.var),
        selection=selection(args),
    )

    def execute(plan: Any, **kw: Any) -> tuple[int, Any]:
        if kw.get("extra_results"):
            print_helm_tests(kw["extra_results"], args)
        if not plan.checks and not kw.get("extra_results"):
            print("smokegate: no checks selected", file=sys.stderr)
            return (2 if not selection(args).empty else 0), None
        return run_and_report(plan, args, **kw)

    err(
        f"gate {args.target}"
        + (f" at revision {args.revision}" if args.revision else "")
        + f" (timeout {format_duration(args.timeout)})"
    )
    result = run_gate(request, execute=execute, progress=err)
    for note in result.notes:
        err(note)
    return result.code
