"""Console, JUnit, Markdown and JSON for ``validate`` and ``diff``.

Same house style as ``smokegate.report``: Markdown escapes text with ``report.markdown.esc``/
``fence`` and stays under GitHub's comment cap (65,536 characters) with a note saying what was
left out; JUnit is one ``<testsuite>`` whose test cases are the units a reader maps to files
(each Kustomization build, each HelmRelease render, each suite file).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

from smokegate.premerge.diff import DiffResult, OwnerChange
from smokegate.premerge.findings import Finding
from smokegate.premerge.validate import ValidationReport
from smokegate.report.junit import clean
from smokegate.report.markdown import esc, fence

COMMENT_LIMIT = 60_000  # under GitHub's 65,536-character comment cap, with room for a note
OBJECT_DIFF_LIMIT = 8_000  # one object's diff in a comment; the JSON report has it whole


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# --- validate -----------------------------------------------------------------------------------


def validate_summary(report: ValidationReport) -> str:
    parts = [
        _plural(len(report.errors), "error"),
        _plural(len(report.warnings), "warning"),
    ]
    stats = [
        _plural(report.kustomizations, "Kustomization"),
        f"{report.rendered}/{report.releases} HelmReleases rendered",
        f"{report.validated}/{report.objects} objects validated"
        + (f" (Kubernetes {report.kube_version})" if report.kube_version else ""),
    ]
    if report.suites:
        stats.append(_plural(report.suites, "suite"))
    return f"{', '.join(parts)} · {', '.join(stats)} · {report.duration:.1f}s"


def validate_console(report: ValidationReport, *, quiet: bool = False) -> str:
    lines = []
    for f in report.errors:
        lines.append(f"✗ {f.text()}")
    if not quiet:
        for f in report.warnings:
            lines.append(f"! {f.text()}")
        if report.unvalidated:
            kinds = ", ".join(f"{k} ({n})" for k, n in report.unvalidated.items())
            lines.append(f"  no schema for: {kinds}")
    verdict = "passed" if report.ok else "FAILED"
    lines.append(f"smokegate validate {verdict}: {validate_summary(report)}")
    return "\n".join(lines) + "\n"


def validate_json(report: ValidationReport) -> str:
    return json.dumps(report.to_json(), indent=2) + "\n"


def _case_of(f: Finding) -> tuple[str, str]:
    if f.release:
        return "HelmRelease", f.release
    if f.category == "suite":
        return "Suite", f.file or "suites"
    if f.kustomization:
        return "Kustomization", f.kustomization
    return "Repository", f.file or "repository"


def validate_junit(report: ValidationReport) -> str:
    groups: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for f in report.findings:
        groups[_case_of(f)].append(f)
    cases = sorted(groups)
    failures = sum(1 for c in cases if any(f.severity == "error" for f in groups[c]))
    root = ET.Element(
        "testsuites",
        name="smokegate validate",
        tests=str(max(len(cases), 1)),
        failures=str(failures),
        errors="0",
        time=f"{report.duration:.3f}",
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name="validate",
        tests=str(max(len(cases), 1)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{report.duration:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("directory", report.directory),
        ("kubernetesVersion", report.kube_version or ""),
        ("objects", str(report.objects)),
        ("objectsValidated", str(report.validated)),
    ):
        ET.SubElement(props, "property", name=name, value=clean(value))
    if not cases:
        ET.SubElement(suite, "testcase", classname="validate", name="repository", time="0")
    for kind, ident in cases:
        items = groups[(kind, ident)]
        attrs = {"classname": kind, "name": clean(f"{kind} {ident}"), "time": "0"}
        first = next((f for f in items if f.file), None)
        if first is not None and first.file:
            attrs["file"] = clean(first.file)
            if first.line:
                attrs["line"] = str(first.line)
        case = ET.SubElement(suite, "testcase", attrib=attrs)
        errors = [f for f in items if f.severity == "error"]
        if errors:
            el = ET.SubElement(
                case, "failure", message=clean(errors[0].text()[:2000]), type=errors[0].category
            )
            el.text = clean("\n".join(f.text() for f in errors))
        warnings = [f for f in items if f.severity == "warning"]
        if warnings:
            out = ET.SubElement(case, "system-out")
            out.text = clean("\n".join("warning: " + f.text() for f in warnings))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def validate_markdown(report: ValidationReport) -> str:
    icon = "✅" if report.ok else "❌"
    verdict = "passed" if report.ok else "failed"
    out = [f"## {icon} smokegate validate {verdict}", "", esc(validate_summary(report), None), ""]
    if report.errors:
        out += ["| | where | object | problem |", "|---|---|---|---|"]
        for f in report.errors[:200]:
            problem = f"{f.field}: {f.message}" if f.field else f.message
            out.append(f"| ❌ | {esc(f.location)} | {esc(f.object or '')} | {esc(problem)} |")
        if len(report.errors) > 200:
            out.append(f"\n…and {len(report.errors) - 200} more errors (see the JSON report).")
        out.append("")
    if report.warnings:
        out += [f"<details><summary>{_plural(len(report.warnings), 'warning')}</summary>", ""]
        out += [f"- {esc(f.text())}" for f in report.warnings[:100]]
        out += ["", "</details>", ""]
    if report.unvalidated:
        kinds = ", ".join(f"{k} ({n})" for k, n in report.unvalidated.items())
        out += [f"<sub>No schema for: {esc(kinds)}</sub>", ""]
    return "\n".join(out) + "\n"


# --- diff ---------------------------------------------------------------------------------------


def _owner_line(o: OwnerChange) -> str:
    c = o.counts()
    bits = [f"{n} {k}" for k, n in c.items() if n]
    if o.chart:
        bits.append(f"chart {o.chart[0] or '-'} → {o.chart[1] or '-'}")
    if o.values_diff:
        bits.append("values changed")
    if o.errors:
        bits.append(_plural(len(o.errors), "error"))
    head = {"added": "new ", "removed": "removed ", "changed": ""}[o.change]
    return f"{head}{o.title}: {', '.join(bits) or 'no object changes'}"


def diff_summary(result: DiffResult) -> str:
    data = result.to_json()["summary"]
    if not result.changed:
        return f"no changes between {result.base} and {result.head}"
    return (
        f"{_plural(data['helmReleasesChanged'], 'HelmRelease')} and "
        f"{_plural(data['kustomizationsChanged'], 'Kustomization')} changed: "
        f"{data['objectsAdded']} objects added, {data['objectsRemoved']} removed, "
        f"{data['objectsChanged']} changed ({result.base} → {result.head})"
    )


def diff_console(result: DiffResult, *, color: bool = False) -> str:
    def paint(line: str) -> str:
        if not color:
            return line
        if line.startswith("+") and not line.startswith("+++"):
            return f"\x1b[32m{line}\x1b[0m"
        if line.startswith("-") and not line.startswith("---"):
            return f"\x1b[31m{line}\x1b[0m"
        if line.startswith("@@"):
            return f"\x1b[36m{line}\x1b[0m"
        return line

    out: list[str] = []
    for o in result.owners:
        out.append(f"=== {_owner_line(o)}")
        for e in o.errors:
            out.append(f"  ! {e}")
        if o.chart:
            out.append(f"  chart: {o.chart[0] or '(none)'} → {o.chart[1] or '(none)'}")
        if o.suites:
            out.append(f"  covered by suites: {', '.join(o.suites)}")
        elif o.kind == "HelmRelease":
            out.append("  covered by suites: none")
        for label, items in (
            ("new discovered checks", o.checks_new),
            ("gone discovered checks", o.checks_gone),
            ("changed discovered checks", o.checks_changed),
        ):
            if items:
                out.append(f"  {label}: {', '.join(items)}")
        if o.values_diff:
            out.append("  values:")
            out += [paint("    " + ln) for ln in o.values_diff.splitlines()]
        for c in o.objects:
            sign = {"added": "+", "removed": "-", "changed": "~"}[c.change]
            where = f"  ({c.template})" if c.template else ""
            out.append(f"  {sign} {c.object} {c.change}{where}")
            out += [paint("    " + ln) for ln in c.diff.splitlines()]
    out.append(f"smokegate diff: {diff_summary(result)}")
    out += [f"note: {n}" for n in result.notes]
    return "\n".join(out) + "\n"


def diff_json(result: DiffResult) -> str:
    return json.dumps(result.to_json(), indent=2) + "\n"


def diff_markdown(result: DiffResult, limit: int = COMMENT_LIMIT) -> str:
    """Short enough for a pull-request comment: a table of owners, one collapsed
    ``<details>`` per owner; past ``limit`` characters the remaining diffs are left out and a
    note says how many."""
    head = [f"## smokegate diff: {esc(result.base, None)} → {esc(result.head, None)}", ""]
    if not result.changed:
        notes = [f"- {esc(n)}" for n in result.notes[:50]]
        return (
            "\n".join([*head, "No change to any HelmRelease or Kustomization.", "", *notes]) + "\n"
        )
    head += [
        esc(diff_summary(result), None),
        "",
        "| | what | change | suites |",
        "|---|---|---|---|",
    ]
    for o in result.owners:
        icon = {"added": "🆕", "removed": "🗑️", "changed": "✏️"}[o.change]
        suites = (
            esc(", ".join(o.suites)) if o.suites else ("none" if o.kind == "HelmRelease" else "")
        )
        line = _owner_line(o).split(": ", 1)[-1]
        head.append(f"| {icon} | {esc(o.title)} | {esc(line)} | {suites} |")
    head.append("")
    body: list[str] = []
    used = sum(len(x) + 1 for x in head)
    left_out = 0
    for o in result.owners:
        section = _owner_section(o)
        if used + len(section) > limit:
            left_out += 1
            continue
        body.append(section)
        used += len(section) + 1
    tail = []
    if result.notes:
        tail += ["<details><summary>notes</summary>", ""]
        tail += [f"- {esc(n)}" for n in result.notes[:50]]
        tail += ["", "</details>", ""]
    if left_out:
        tail = [
            f"> {left_out} of {len(result.owners)} sections left out to keep this comment under "
            f"{limit:,} characters: run `smokegate diff` locally or read the JSON report.",
            "",
        ]
    return "\n".join(head + body + tail) + "\n"


def _capped(diff: str, limit: int = OBJECT_DIFF_LIMIT) -> str:
    if len(diff) <= limit:
        return diff
    cut = diff.rfind("\n", 0, limit) + 1 or limit
    rest = diff[cut:].count("\n")
    return diff[:cut] + f"… {rest} more lines (the JSON report has the whole diff)\n"


def _owner_section(o: OwnerChange) -> str:
    lines = [f"<details><summary>{esc(_owner_line(o))}</summary>", ""]
    for e in o.errors:
        lines.append(f"- ⚠️ {esc(e)}")
    if o.chart:
        lines.append(f"- chart: {esc(o.chart[0] or '(none)')} → {esc(o.chart[1] or '(none)')}")
    if o.kind == "HelmRelease":
        lines.append(f"- suites: {esc(', '.join(o.suites)) if o.suites else 'none cover it'}")
        for label, items in (
            ("new checks (discovered)", o.checks_new),
            ("gone checks (discovered)", o.checks_gone),
            ("changed checks (discovered)", o.checks_changed),
        ):
            if items:
                lines.append(f"- {label}: {esc(', '.join(items))}")
    lines.append("")
    if o.values_diff:
        lines += ["values:", "", fence(o.values_diff, "diff"), ""]
    for c in o.objects:
        where = f" — `{esc(c.template)}`" if c.template else ""
        lines += [f"**{esc(c.object)}** {c.change}{where}", "", fence(_capped(c.diff), "diff"), ""]
    lines += ["</details>", ""]
    return "\n".join(lines)


VALIDATE_RENDERERS: dict[str, Any] = {
    "json": validate_json,
    "junit": validate_junit,
    "markdown": validate_markdown,
}
DIFF_RENDERERS: dict[str, Any] = {"json": diff_json, "markdown": diff_markdown}
