"""``smokegate discover``, and the discovery flags of ``run --discover`` / ``gate --discover``.

    smokegate discover helmrelease/podinfo -n apps > podinfo.smoke.yaml
    smokegate discover -l app.kubernetes.io/instance=web -n shop
    helm template web ./chart | smokegate discover -f - -n shop
    smokegate run --discover hr/podinfo -n apps my-checks.yaml

Flags -> ``discover.request.DiscoverRequest`` -> ``discover.request.discover_suite``; the suite on
stdout, the summary on stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from smokegate.core.errors import UsageError


def print_summary(discovery: Any, *, show_not_checked: bool = True) -> None:
    """One line on stderr (plus notes and what was not checked): stdout may be the suite."""
    print(f"smokegate: {discovery.summary()}", file=sys.stderr)
    for note in discovery.notes:
        print(f"smokegate: note: {note}", file=sys.stderr)
    if show_not_checked:
        for item in discovery.not_checked:
            print(f"smokegate:   not checked: {item}", file=sys.stderr)


def _add_discovery_tuning(p: argparse.ArgumentParser | Any) -> None:
    p.add_argument(
        "--via",
        choices=("services", "pods"),
        default="services",
        help="services (default): reach probes through the Services exposing them; pods: also "
        "check probes no Service exposes on each running pod's IP, as the kubelet does",
    )
    p.add_argument(
        "--cluster-domain",
        default="cluster.local",
        metavar="DOMAIN",
        help="cluster DNS domain of Service addresses (default: cluster.local)",
    )


def add_discover_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``smokegate discover`` to the CLI's subparsers."""
    p = subparsers.add_parser(
        "discover",
        help="derive a smoke suite from a release's probes, Services and Ingresses",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Derive a suite from what the release already tells Kubernetes:\n"
        "  - each container probe (httpGet, tcpSocket, grpc) becomes a check through each\n"
        "    Service port exposing it, with the probe's own timeout and retry budget;\n"
        "  - each Service port no probe covers, that a pod of the release can serve,\n"
        "    becomes a TCP connect check;\n"
        "  - each Ingress host/path becomes an HTTP(S) check.\n"
        "exec probes and probes that cannot be reached are listed with the reason.\n"
        "Objects come from the Helm release Secret of the HelmRelease (its manifest), else\n"
        "from the labels helm-controller puts on them; or from --selector; or from -f.",
        epilog="examples:\n"
        "  smokegate discover helmrelease/podinfo -n apps > podinfo.smoke.yaml\n"
        "  smokegate discover -l app.kubernetes.io/instance=web -n shop\n"
        "  helm template web ./chart | smokegate discover -f - -n shop\n"
        "  smokegate discover hr/podinfo -n apps \\\n"
        "      --resolve podinfo.apps.svc.cluster.local:9898:127.0.0.1\n",
    )
    p.add_argument(
        "target",
        nargs="?",
        metavar="helmrelease/NAME",
        help="the HelmRelease: helmrelease/NAME, hr/NAME, NAMESPACE/NAME or NAME",
    )
    p.add_argument(
        "-l",
        "--selector",
        metavar="LABELS",
        help="instead of a HelmRelease: objects with these labels (kubectl syntax)",
    )
    p.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        metavar="FILE",
        help="rendered manifests instead of the cluster (- for stdin); repeatable",
    )
    p.add_argument(
        "-o",
        "--output",
        choices=("yaml", "json"),
        default="yaml",
        help="yaml (default): the suite, with a comment on each check saying where it came "
        "from; json: {suite, notChecked, source, notes}",
    )
    p.add_argument(
        "--resolve",
        action="append",
        default=[],
        metavar="HOST:PORT:ADDR",
        help="for running outside the cluster: connect to ADDR for HOST:PORT (written into "
        "the checks); repeatable",
    )
    _add_discovery_tuning(p)
    g = p.add_argument_group("kubernetes (like kubectl)")
    g.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file")
    g.add_argument("--context", metavar="NAME", help="kubeconfig context to use")
    g.add_argument(
        "-n",
        "--namespace",
        metavar="NS",
        help="namespace of the HelmRelease / selected objects (default: the context's; "
        "with -f: of objects that name none, default 'default')",
    )
    p.set_defaults(cmd=cmd_discover)
    return p


def add_discover_options(p: argparse.ArgumentParser, *, gate: bool = False) -> None:
    """``--discover`` for ``run`` (takes helmrelease/NAME) and ``gate`` (a flag: the gated
    HelmRelease), plus ``--via`` and ``--cluster-domain``."""
    g = p.add_argument_group("discovery")
    if gate:
        g.add_argument(
            "--discover",
            action="store_true",
            help="also run checks derived from the release's probes, Services and Ingresses "
            "(after the wait: the new revision's); your suites' checks win on name clashes",
        )
    else:
        g.add_argument(
            "--discover",
            metavar="helmrelease/NAME",
            help="also run checks derived from this release's probes, Services and Ingresses; "
            "your suites' checks win on name clashes",
        )
    _add_discovery_tuning(g)


def request_from_args(args: argparse.Namespace, *, run_target: str | None = None) -> Any:
    """The ``DiscoverRequest`` ``discover``'s flags make; ``run_target``: the ``--discover``
    target of ``run``/``gate`` (whose own ``--resolve`` applies at run time, so none is written
    in)."""
    from smokegate.discover.request import DiscoverRequest
    from smokegate.kube.client import KubeOptions

    return DiscoverRequest(
        target=run_target if run_target is not None else args.target,
        selector=None if run_target is not None else args.selector,
        files=() if run_target is not None else tuple(args.filename),
        kube=KubeOptions(args.kubeconfig, args.context, args.namespace),
        via=args.via,
        cluster_domain=args.cluster_domain,
        resolve=() if run_target is not None else tuple(args.resolve),
        command=_command_line() if run_target is None else None,
    )


def gate_discover_request(args: argparse.Namespace) -> Any:
    """For ``GateRequest(discover=...)``: what ``gate --discover`` asks for, or None."""
    if not getattr(args, "discover", False):
        return None
    return request_from_args(args, run_target=args.target)


def _command_line() -> str:
    import shlex

    return shlex.join(["smokegate", *sys.argv[1:]]) if sys.argv[1:] else "smokegate discover"


def cmd_discover(args: argparse.Namespace) -> int:
    import json

    from smokegate.checks.http import parse_resolve
    from smokegate.discover.request import discover_suite, discovered_suite_text

    for item in args.resolve:
        try:
            parse_resolve(item)
        except ValueError as exc:
            raise UsageError(f"--resolve: {exc}") from None
    discovery = discover_suite(request_from_args(args))
    if args.output == "json":
        data = {
            "source": discovery.source,
            "notes": discovery.notes,
            "suite": discovery.suite(),
            "notChecked": [{"origin": n.origin, "reason": n.reason} for n in discovery.not_checked],
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        sys.stdout.write(discovered_suite_text(discovery))
    print_summary(discovery, show_not_checked=False)
    return 0


def suites_with_discovery(args: argparse.Namespace) -> list[Any]:
    """For ``run``: the suites to plan, parsed (each file once), with the discovered suite
    merged in (in memory) when ``--discover`` is given (the run's own ``--resolve`` applies to
    its checks at run time)."""
    from smokegate.suite.loader import parse_suites

    if not getattr(args, "discover", None):
        if not args.suites:
            raise UsageError("give suite files or directories, or --discover helmrelease/NAME")
        return parse_suites(args.suites)
    from smokegate.discover.request import discover_suite, merge_discovered

    discovery = discover_suite(request_from_args(args, run_target=args.discover))
    print_summary(discovery)
    return merge_discovered(parse_suites(args.suites) if args.suites else [], discovery)
