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
from smokegate.core.durations import duration_arg

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
    from smokegate.core.errors import UsageError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} {item!r}: use KEY=VALUE")
        out[key.strip()] = value
    return out


def _env(items: Sequence[str]) -> dict[str, str]:
    from smokegate.core.errors import UsageError

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


def in_cluster_request(
    args: argparse.Namespace,
    suites: Sequence[str],
    *,
    namespace: str | None,
    cli_vars: Mapping[str, str],
    context: Mapping[str, Any] | None = None,
    extra_results: Sequence[Any] = (),
    stdin_text: str | None = None,
) -> Any:
    """The ``incluster.api.InClusterRequest`` the flags describe."""
    from smokegate.cli._args import kube_options, selection
    from smokegate.incluster.api import InClusterRequest
    from smokegate.incluster.manifests import DEFAULT_IMAGE, PodOptions

    pod = PodOptions(
        image=args.image or DEFAULT_IMAGE,
        service_account=args.service_account,
        image_pull_secrets=tuple(args.image_pull_secret),
        env=_env(args.env),
        labels=_pairs(args.pod_label, "--pod-label"),
        annotations=_pairs(args.pod_annotation, "--pod-annotation"),
    )
    return InClusterRequest(
        suites=suites,
        namespace=namespace,
        kube=kube_options(args),
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
    from smokegate.cli._args import kube_options
    from smokegate.cli._output import err, report_targets
    from smokegate.incluster.api import prepare, run_in_cluster
    from smokegate.kube.client import effective_namespace, load_config
    from smokegate.report import check_targets, write_reports
    from smokegate.report.console import ConsoleReporter, make_console

    targets, summary = report_targets(args)
    check_targets(targets)
    kube = kube_options(args)
    config = load_config(kube)  # a UsageError before anything else
    request = in_cluster_request(
        args,
        suites,
        namespace=namespace,
        cli_vars=cli_vars,
        context=context,
        extra_results=extra_results,
        stdin_text=stdin_text,
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


class GateInClusterRunner:
    """The release flow's ``Runner`` for ``gate --in-cluster``: the plan's suites run in a Job
    in the release's namespace with the release's facts as ``--var``s; the pod's console streams
    here, and its report is the run. The first Ctrl-C/SIGTERM stops the pod and keeps its partial
    report (exit 130), as ``run --in-cluster`` does."""

    def __init__(self, args: argparse.Namespace, console_run: Any) -> None:
        self.args = args
        self.console_run = console_run

    async def __call__(self, plan: Any, run: Any) -> Any:
        import asyncio

        from smokegate.api import execute_plan
        from smokegate.cli._args import kube_options
        from smokegate.cli._output import err
        from smokegate.core.errors import ClusterError, UsageError
        from smokegate.incluster.api import execute, outcome_of, prepare
        from smokegate.kube.client import KubeClient, load_config

        if not plan.checks:  # Helm test results only: nothing for a pod to run
            return await execute_plan(
                plan, run.settings, context=run.context, extra_results=run.extra_results
            )
        if any(not suite.file or suite.file.startswith("<") for suite in plan.suites):
            raise UsageError(
                "gate --in-cluster --discover: discovered checks are not files the Job could "
                "mount; run them here (without --in-cluster), or write them to a suite with "
                "`smokegate discover` and pass that file"
            )
        request = in_cluster_request(
            self.args,
            [suite.file for suite in plan.suites],
            namespace=run.namespace,
            cli_vars={**run.vars, **release_vars(run.context)},
            context=run.context,
            extra_results=run.extra_results,
        )
        kube = kube_options(self.args)
        config = load_config(kube)
        prepared = await asyncio.to_thread(
            prepare, request, namespace=run.namespace or str(config.namespace or "default")
        )
        followers: list[Any] = []
        client = KubeClient(config, prepared.namespace)
        try:
            outcome = await execute(
                prepared, client, output=_write, progress=err, on_follower=followers.append
            )
        except asyncio.CancelledError:
            if not followers:
                raise
            # Stopped and cleaned up: what the pod finished is the (interrupted) run.
            outcome = outcome_of(prepared, followers[0].collected)
        finally:
            await client.close()
        for note in outcome.notes:
            err(note)
        if outcome.run is None:
            # The pod stopped before any check (its reason is in the streamed log).
            error = UsageError if outcome.code == 2 else ClusterError
            raise error(f"the in-cluster run stopped before any check ran (exit {outcome.code})")
        # The pod printed its own summary when its report streamed back.
        self.console_run.summarized = outcome.collected.report_json is not None
        return outcome.run


def _write(line: str) -> None:
    sys.stdout.write(line)
    sys.stdout.flush()
