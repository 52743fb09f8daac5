"""``--in-cluster`` for ``run`` and ``gate``: the flags, and the run as a Job followed from
here (``incluster.api``), reported with the same reports and exit codes as a local run."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from smokegate import __version__
from smokegate.durations import duration_arg

# The help text names the default; smokegate.incluster.manifests.DEFAULT_IMAGE is the constant
# (tests/incluster checks that the two agree).
DEFAULT_IMAGE_HELP = f"ghcr.io/smokegate/smokegate:{__version__}"


def add_in_cluster_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "in-cluster (run the checks in a Job in the namespace; docs/in-cluster.md)"
    )
    g.add_argument(
        "--in-cluster",
        action="store_true",
        help="run the suites inside the cluster: a Job in the namespace (-n) runs them from "
        "the smokegate image, its log streams here, its report is written here as if the run "
        "were local. Checks see the namespace's DNS, NetworkPolicies and mesh sidecar; "
        "Secret references are read by the pod's ServiceAccount, never copied",
    )
    g.add_argument(
        "--image",
        metavar="IMAGE",
        help=f"the runner image (default: {DEFAULT_IMAGE_HELP}, this smokegate's version)",
    )
    g.add_argument(
        "--service-account",
        metavar="NAME",
        help="the pod's ServiceAccount (default: the namespace's `default`); it needs get on "
        "the Secrets the suites reference and on what `kube` checks read (deploy/rbac/role.yaml)",
    )
    g.add_argument(
        "--job-timeout",
        type=duration_arg,
        default=1800.0,
        metavar="DURATION",
        help="stop the in-cluster run after this long, image pull included; checks that had "
        "not finished are reported as skipped and the run fails (default: 30m)",
    )
    g.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="set NAME in the pod's environment for ${env:NAME} (VALUE, else this process's "
        "value); visible in the Job's spec, so not for secrets; repeatable",
    )
    g.add_argument(
        "--image-pull-secret",
        action="append",
        default=[],
        metavar="NAME",
        help="a Secret in the namespace to pull the image with; repeatable",
    )
    g.add_argument(
        "--pod-label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra label on the pod (e.g. sidecar.istio.io/inject=true); repeatable",
    )
    g.add_argument(
        "--pod-annotation",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra annotation on the pod (e.g. proxy.istio.io/config="
        "'{\"holdApplicationUntilProxyStarts\": true}'); repeatable",
    )
    g.add_argument(
        "--keep-job",
        action="store_true",
        help="leave the Job, its pod and ConfigMap for inspection (their TTL, 10m after the "
        "Job finishes, deletes them)",
    )


def add_log_report_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-report",
        action="store_true",
        help="end the output with the JSON report as a block of lines (gzip+base64 between "
        "marker lines): how the pod of `run --in-cluster` hands its report back through its log",
    )


def _pairs(items: Sequence[str], flag: str) -> dict[str, str]:
    from smokegate.errors import UsageError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} {item!r}: use KEY=VALUE")
        out[key.strip()] = value
    return out


def _env(items: Sequence[str]) -> dict[str, str]:
    from smokegate.errors import UsageError

    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not name or not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise UsageError(f"--env {item!r}: use NAME or NAME=VALUE (NAME: letters, _, digits)")
        if not sep:
            if name not in os.environ:
                raise UsageError(f"--env {name}: not set here; give a value: --env {name}=VALUE")
            value = os.environ[name]
        out[name] = value
    return out


def _columns() -> int:
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    value = os.environ.get("COLUMNS", "")
    return int(value) if value.isdigit() and int(value) > 20 else 120


def release_vars(context: Mapping[str, Any]) -> dict[str, str]:
    """``${release.*}`` for the pod, from the gate's report context (``ReleaseFacts.context``):
    the pod's ``run`` takes them as ``--var release.name=…``."""
    release = context.get("release") or {}
    hr_ns, _, hr_name = str(context.get("helmRelease") or "/").partition("/")
    out = {f"release.{k}": "" if v is None else str(v) for k, v in release.items()}
    out["release.helmRelease"] = hr_name
    out["release.helmReleaseNamespace"] = hr_ns
    return out


def run_in_cluster_and_report(
    args: argparse.Namespace,
    suites: Sequence[str],
    *,
    namespace: str | None,
    cli_vars: Mapping[str, str],
    context: Mapping[str, Any] | None = None,
    extra_results: Sequence[Any] = (),
    stdin_text: str | None = None,
) -> tuple[int, Any]:
    """Validate here, run as a Job, stream its console, write the reports; (exit code, run)."""
    from rich.markup import escape

    from smokegate.api import exit_code
    from smokegate.cli._args import kube_options, selection
    from smokegate.cli._output import err, report_targets
    from smokegate.incluster.api import InClusterRequest, prepare, run_in_cluster
    from smokegate.incluster.manifests import DEFAULT_IMAGE, PodOptions
    from smokegate.kube.client import effective_namespace, load_config
    from smokegate.report import check_targets, write_reports
    from smokegate.report.console import ConsoleReporter, make_console

    targets, summary = report_targets(args)
    check_targets(targets)
    kube = kube_options(args)
    config = load_config(kube)  # a UsageError before anything else
    pod = PodOptions(
        image=args.image or DEFAULT_IMAGE,
        service_account=args.service_account,
        image_pull_secrets=tuple(args.image_pull_secret),
        env=_env(args.env),
        labels=_pairs(args.pod_label, "--pod-label"),
        annotations=_pairs(args.pod_annotation, "--pod-annotation"),
    )
    request = InClusterRequest(
        suites=suites,
        namespace=namespace,
        kube=kube,
        pod=pod,
        timeout=args.job_timeout,
        cli_vars=cli_vars,
        selection=selection(args),
        concurrency=args.concurrency,
        fail_fast=args.fail_fast,
        resolve=tuple(args.resolve),
        quiet=args.quiet,
        verbose=args.verbose,
        keep=args.keep_job,
        context=dict(context or {}),
        extra_results=tuple(extra_results),
        stdin_text=stdin_text,
        columns=_columns(),
    )
    prepared = prepare(request, namespace=namespace or effective_namespace(config, kube))
    if not prepared.plan.checks:
        print("smokegate: no checks selected", file=sys.stderr)
        return (2 if not request.selection.empty else 0), None

    def output(line: str) -> None:
        sys.stdout.write(line)
        sys.stdout.flush()

    outcome = run_in_cluster(prepared, output=output, progress=err)
    for note in outcome.notes:
        err(note)
    run = outcome.run
    if run is None:
        return outcome.code, None
    console = make_console(no_color=args.no_color)
    if outcome.collected.report_json is None:
        # Nothing streamed a summary: render this one here.
        reporter = ConsoleReporter(
            console, prepared.plan.redactor, verbose=args.verbose, quiet=args.quiet
        )
        reporter.finish(run)
    errors = write_reports(run, targets, prepared.plan.redactor)
    for error in errors:
        err(error)
    for t in targets:
        if t.path != summary and not any(t.path in error for error in errors):
            console.print(f"[dim]{escape(t.format)} report: {escape(t.path)}[/dim]")
    code = outcome.code
    if errors and code == 0:
        code = exit_code(run, errors)
    return code, run
