"""``smokegate validate`` and ``smokegate diff``: flags in, library calls, exit code out.

The pre-merge library is ``smokegate.premerge``; this module only parses flags, prints and
writes reports. Heavy imports happen inside the command functions.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from smokegate.cli._args import Formatter

VALIDATE_EXIT = """\
exit codes:
  0  no errors (warnings do not fail)
  1  errors found: a manifest or rendered object fails its schema, a Kustomization does not
     build, a HelmRelease does not render (chart, values), a suite does not lint
  2  usage error, or the repository cannot be read (no such directory, kubectl/helm missing)
  4  internal error
"""

DIFF_EXIT = """\
exit codes:
  0  the diff was made (changes or not)
  1  with --exit-code: there are changes
  2  usage error: a side is neither a directory nor a git revision, tools missing
  4  internal error
"""


def _render_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("rendering")
    g.add_argument(
        "--chart-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="directory of packaged charts (NAME-VERSION.tgz) for HelmRepository/OCI charts; "
        "looked up before pulling; repeatable",
    )
    g.add_argument(
        "--no-pull",
        action="store_true",
        help="never run `helm pull`: charts not in the repository or a --chart-dir are errors",
    )
    g.add_argument(
        "--kubernetes-version",
        metavar="X.Y",
        help="Kubernetes version for the schemas and helm's .Capabilities (default: the newest "
        "kubernetes-validate has)",
    )
    g.add_argument(
        "--api-versions",
        action="append",
        default=[],
        metavar="GROUP/VERSION",
        help="extra API versions for helm's .Capabilities.APIVersions; repeatable",
    )
    g.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=0,
        metavar="N",
        help="parallel `helm template` processes (default: one per CPU core)",
    )
    g.add_argument("--kubectl", metavar="PATH", help="kubectl to run `kubectl kustomize` with")
    g.add_argument("--helm", metavar="PATH", help="helm binary (v3.8+ or v4)")


def _report_args(p: argparse.ArgumentParser, formats: str) -> None:
    r = p.add_argument_group("reports")
    r.add_argument(
        "--report",
        action="append",
        default=[],
        metavar="FORMAT=PATH",
        help=f"also write a report ({formats}); repeatable. Markdown goes to "
        "$GITHUB_STEP_SUMMARY automatically when set",
    )
    r.add_argument("-q", "--quiet", action="store_true", help="only errors and the summary")
    r.add_argument("--no-color", action="store_true", help="no colour (NO_COLOR also works)")


def add_validate_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "validate",
        help="render and validate a Flux GitOps repository offline, before the merge",
        formatter_class=Formatter,
        description="Check a Flux GitOps repository before the merge:\n"
        "  1. build every Flux Kustomization with `kubectl kustomize` (targetNamespace, patches,\n"
        "     images, components, postBuild substitution, as kustomize-controller does);\n"
        "  2. render every HelmRelease with `helm template`: chart from the repository, a\n"
        "     --chart-dir or `helm pull`; values merged as helm-controller merges them;\n"
        "  3. validate every built and rendered object offline against the Kubernetes JSON\n"
        "     schemas, the Flux CRDs and the CRDs found in the repository and its charts;\n"
        "  4. lint the repository's smokegate suites; their spec.release must name a\n"
        "     HelmRelease the repository defines.\n"
        "Problems are located: file:line for objects of the repository, HelmRelease and chart\n"
        "template for rendered ones. See docs/premerge.md.",
        epilog=VALIDATE_EXIT + "\nexamples:\n"
        "  smokegate validate\n"
        "  smokegate validate ./gitops --chart-dir ./charts-cache --kubernetes-version 1.31\n"
        "  smokegate validate --report junit=out/validate.xml --no-pull\n",
    )
    p.add_argument(
        "directory", nargs="?", default=".", metavar="DIR", help="the repository (default: .)"
    )
    _render_args(p)
    g = p.add_argument_group("validation")
    g.add_argument(
        "--skip-kube-schemas",
        action="store_true",
        help="do not validate against Kubernetes schemas (no kubernetes-validate needed); Flux "
        "and repository CRDs still apply",
    )
    g.add_argument("--no-suites", action="store_true", help="do not lint smokegate suites")
    g.add_argument(
        "-o",
        "--output",
        choices=("console", "json", "markdown", "junit"),
        default="console",
        help="what to print on stdout (default: console)",
    )
    _report_args(p, "junit=, json=, markdown=")
    p.set_defaults(cmd=cmd_validate)
    return p


def add_diff_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "diff",
        help="show what a merge changes: rendered objects per HelmRelease and Kustomization",
        formatter_class=Formatter,
        description="Render two versions of a Flux GitOps repository and show what changes, per\n"
        "HelmRelease and Kustomization: objects added, removed and changed (unified YAML diff,\n"
        "Secret values replaced by marks), chart version and values changes, the suites that\n"
        "cover each changed release, and the discovered checks that are new or gone.\n"
        "BASE and HEAD are git revisions of the repository (--repo) or directories; without\n"
        "HEAD the working tree (uncommitted changes included) is compared with BASE.",
        epilog=DIFF_EXIT + "\nexamples:\n"
        "  smokegate diff origin/main\n"
        "  smokegate diff main feature --output markdown > comment.md\n"
        "  smokegate diff ../gitops-main ./ --chart-dir charts/ --output json\n",
    )
    p.add_argument("base", metavar="BASE", help="git revision or directory")
    p.add_argument(
        "head", nargs="?", metavar="HEAD", help="git revision or directory (default: working tree)"
    )
    p.add_argument(
        "--repo",
        default=".",
        metavar="DIR",
        help="the repository (for revisions; the head side without HEAD) (default: .)",
    )
    _render_args(p)
    g = p.add_argument_group("output")
    g.add_argument(
        "-o",
        "--output",
        choices=("console", "markdown", "json"),
        default="console",
        help="console (default); markdown: short, for a pull-request comment; json",
    )
    g.add_argument(
        "-U",
        "--unified",
        type=int,
        default=3,
        metavar="N",
        help="lines of context in object diffs (default: 3)",
    )
    g.add_argument(
        "--max-chars",
        type=int,
        default=60_000,
        metavar="N",
        help="markdown size cap; sections past it are left out with a note (default: 60000, "
        "under GitHub's comment limit)",
    )
    g.add_argument("--no-discovery", action="store_true", help="do not compare discovered checks")
    g.add_argument("--exit-code", action="store_true", help="exit 1 when there are changes")
    _report_args(p, "json=, markdown=")
    p.set_defaults(cmd=cmd_diff)
    return p


def _targets(args: argparse.Namespace, allowed: tuple[str, ...]) -> list[tuple[str, str, bool]]:
    """``--report`` flags (and ``$GITHUB_STEP_SUMMARY``), refused before any work when a path
    cannot be written."""
    from smokegate.core.errors import UsageError
    from smokegate.report import ReportTarget, check_targets

    out = []
    for item in args.report:
        fmt, sep, path = item.partition("=")
        fmt = "markdown" if fmt.strip().lower() == "md" else fmt.strip().lower()
        if not sep or not path or fmt not in allowed:
            raise UsageError(
                f"--report {item!r}: use FORMAT=PATH with FORMAT one of {', '.join(allowed)}"
            )
        out.append((fmt, path, False))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        out.append(("markdown", summary, True))
    check_targets([ReportTarget(fmt, path, append) for fmt, path, append in out])
    return out


def _write(targets: list[tuple[str, str, bool]], renderers: dict[str, Any], result: Any) -> int:
    failed = 0
    for fmt, path, append in targets:
        try:
            p = Path(path)
            p.parent.mkdir(parents=True, exist_ok=True)
            with p.open("a" if append else "w", encoding="utf-8") as fh:
                fh.write(renderers[fmt](result))
        except OSError as exc:
            print(f"smokegate: --report {fmt}={path}: {exc.strerror or exc}", file=sys.stderr)
            failed += 1
    return failed


def _color(args: argparse.Namespace) -> bool:
    return not args.no_color and not os.environ.get("NO_COLOR") and sys.stdout.isatty()


def cmd_validate(args: argparse.Namespace) -> int:
    from smokegate.premerge.reports import VALIDATE_RENDERERS, validate_console
    from smokegate.premerge.validate import ValidateOptions, validate_repository

    targets = _targets(args, ("junit", "json", "markdown"))
    report = validate_repository(
        ValidateOptions(
            directory=args.directory,
            kube_version=args.kubernetes_version,
            kube_schemas=not args.skip_kube_schemas,
            chart_dirs=tuple(args.chart_dir),
            pull=not args.no_pull,
            api_versions=tuple(args.api_versions),
            jobs=args.jobs,
            kubectl=args.kubectl,
            helm=args.helm,
            suites=not args.no_suites,
        )
    )
    if args.output == "console":
        sys.stdout.write(validate_console(report, quiet=args.quiet))
    else:
        sys.stdout.write(VALIDATE_RENDERERS[args.output](report))
    failed = _write(targets, VALIDATE_RENDERERS, report)
    if not report.ok:
        return 1
    return 4 if failed else 0


def cmd_diff(args: argparse.Namespace) -> int:
    from functools import partial

    from smokegate.core.errors import UsageError
    from smokegate.premerge.diff import DiffOptions, diff_repositories
    from smokegate.premerge.reports import diff_console, diff_json, diff_markdown

    if args.unified < 0:
        raise UsageError("--unified must be 0 or more")
    targets = _targets(args, ("json", "markdown"))
    result = diff_repositories(
        DiffOptions(
            base=args.base,
            head=args.head,
            repo=args.repo,
            kube_version=args.kubernetes_version,
            chart_dirs=tuple(args.chart_dir),
            pull=not args.no_pull,
            api_versions=tuple(args.api_versions),
            jobs=args.jobs,
            kubectl=args.kubectl,
            helm=args.helm,
            context=args.unified,
            discovery=not args.no_discovery,
        )
    )
    markdown = partial(diff_markdown, limit=args.max_chars)
    if args.output == "console":
        sys.stdout.write(diff_console(result, color=_color(args)))
    elif args.output == "markdown":
        sys.stdout.write(markdown(result))
    else:
        sys.stdout.write(diff_json(result))
    failed = _write(targets, {"json": diff_json, "markdown": markdown}, result)
    if failed:
        return 4
    return 1 if args.exit_code and result.changed else 0
