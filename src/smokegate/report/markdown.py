"""GitHub-flavoured markdown for pull-request comments and ``$GITHUB_STEP_SUMMARY``.

Layout: a heading with the verdict and counts, a table per suite, one ``<details>`` block per
failure (evidence table, attempts, response, log tail), the recovered (flaky) checks, skipped
reasons, and, for small runs only, every check.

Stays compact at any size: GitHub caps a comment at 65,536 characters and a step summary at
1 MiB, so passing checks are listed only when a run has at most ``LIST_LIMIT`` checks, and
failures get a full section for the first ``DETAIL_LIMIT`` only (one line each after that).

Escaping: text from checks is written with HTML character references for every character that
means something to markdown (``|``, backticks, ``*``, ``_``, ``[``, ``<``, ``$``...), which GFM
decodes to the literal character without ever treating it as syntax, in table cells and inline
HTML alike. Multi-line text goes in fenced code blocks whose fence is longer than any backtick
run inside.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

from smokegate.core.cases import summary as cases_summary
from smokegate.core.durations import format_duration
from smokegate.core.results import CheckResult, RunResult, Status
from smokegate.report.jsonreport import cap_log

LIST_LIMIT = 50  # list every check only up to this many
DETAIL_LIMIT = 30  # failures with a full <details> section
FAILURE_LINE_LIMIT = 200  # further failures, one line each
RECOVERED_LIMIT = 50
SKIP_REASON_LIMIT = 20
SUITE_ROW_LIMIT = 100
TEXT_LIMIT = 500  # one-line messages
SNIPPET_LIMIT = 2000
LOG_LIMIT = 4096
LOG_LINES = 40

# C0 controls (but tab and newline) and DEL: invisible at best, U+FFFD boxes on GitHub.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

_ICON = {Status.PASSED: "✅", Status.FAILED: "❌", Status.ERROR: "⚠️", Status.SKIPPED: "⏭️"}

_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\\": "&#92;",
        "`": "&#96;",
        "*": "&#42;",
        "_": "&#95;",
        "[": "&#91;",
        "]": "&#93;",
        "|": "&#124;",
        "~": "&#126;",
        "$": "&#36;",
        "\r": "",
        "\n": "<br>",
    }
)


def esc(text: str, limit: int | None = TEXT_LIMIT) -> str:
    """Inline text, safe in paragraphs, table cells, list items and inline HTML."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return text.translate(_ESCAPES)


def code(text: str, limit: int | None = TEXT_LIMIT) -> str:
    """Inline code that survives table cells (pipes, backticks, newlines)."""
    if text == "":
        return "<em>(empty)</em>"
    return f"<code>{esc(text, limit)}</code>"


def fence(text: str, lang: str = "text") -> str:
    """A fenced code block that cannot be closed early by the text inside."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    bar = "`" * max(3, longest + 1)
    return f"{bar}{lang}\n{text.rstrip()}\n{bar}"


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S.%f")[:-3]


def _span(results: list[CheckResult]) -> float:
    timed = [r for r in results if r.started_at]
    if not timed:
        return 0.0
    return max(r.started_at + r.duration for r in timed) - min(r.started_at for r in timed)


def _count_phrase(counts: dict[str, int]) -> str:
    parts = [f"{counts['passed']:,} passed"]
    if counts["failed"]:
        parts.append(f"{counts['failed']:,} failed")
    if counts["error"]:
        parts.append(f"{counts['error']:,} error{'s' if counts['error'] != 1 else ''}")
    if counts["skipped"]:
        parts.append(f"{counts['skipped']:,} skipped")
    if counts["recovered"]:
        parts.append(f"{counts['recovered']:,} recovered after retries")
    return ", ".join(parts)


def _context_line(run: RunResult) -> str:
    bits = [f"run {code(run.run_id)}"]
    ctx = run.context or {}
    release = ctx.get("release")
    if isinstance(release, dict):
        name = release.get("name") or release.get("helmRelease")
        ns = release.get("namespace")
        if name:
            bits.append(f"release {code(f'{ns}/{name}' if ns else str(name))}")
        if release.get("revision") is not None:
            bits.append(f"revision {code(str(release['revision']))}")
    elif release:
        bits.append(f"release {code(str(release))}")
    if ctx.get("revision") is not None:
        bits.append(f"revision {code(str(ctx['revision']))}")
    for key, value in ctx.items():
        if key in ("release", "revision") or isinstance(value, dict | list) or value is None:
            continue
        bits.append(f"{esc(str(key))} {code(str(value), 120)}")
    started = datetime.fromtimestamp(run.started_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    bits.append(f"started {started}")
    return " · ".join(bits)


def _suite_table(run: RunResult) -> list[str]:
    groups = [(name, rs) for name, rs in run.by_suite().items() if rs]
    if not groups:
        return []
    files = {s.name: s.file for s in run.suites}
    out = [
        "| Suite | ✅ Passed | ❌ Failed | ⚠️ Errors | ⏭️ Skipped | 🔁 Recovered | Time |",
        "|:--|--:|--:|--:|--:|--:|--:|",
    ]

    def row(label: str, results: list[CheckResult], elapsed: float) -> str:
        c = Counter(r.status for r in results)
        rec = sum(1 for r in results if r.recovered)
        failed = c[Status.FAILED] + c[Status.ERROR]
        icon = "❌" if failed else "✅"
        return (
            f"| {icon} {label} | {c[Status.PASSED]:,} | {c[Status.FAILED]:,} | "
            f"{c[Status.ERROR]:,} | {c[Status.SKIPPED]:,} | {rec:,} | {format_duration(elapsed)} |"
        )

    # Failing suites first when the table has to be cut.
    if len(groups) > SUITE_ROW_LIMIT:
        groups.sort(key=lambda g: -sum(r.status in (Status.FAILED, Status.ERROR) for r in g[1]))
    for name, results in groups[:SUITE_ROW_LIMIT]:
        file = files.get(name)
        label = code(name) + (f" <sub>{esc(file)}</sub>" if file else "")
        out.append(row(label, results, _span(results)))
    rest = groups[SUITE_ROW_LIMIT:]
    if rest:
        merged = [r for _, rs in rest for r in rs]
        out.append(row(f"… {len(rest):,} more suites", merged, _span(merged)))
    return out


def _attempts(r: CheckResult) -> list[str]:
    out = []
    t0 = r.attempts[0].started_at if r.attempts else 0.0
    for a in r.attempts:
        mark = "✅" if a.ok else "❌"
        kind = f" {code(a.error_kind)}" if a.error_kind and not a.ok else ""
        msg = f" — {esc(a.message, 300)}" if a.message and not a.ok else ""
        out.append(
            f"{a.number}. {mark} {_clock(a.started_at)} UTC (+{format_duration(a.started_at - t0)})"
            f", took {format_duration(a.duration)}{kind}{msg}"
        )
    return out


def _failure_section(r: CheckResult) -> list[str]:
    kind = f" · {code(r.error_kind)}" if r.error_kind else ""
    summary = f"{_ICON[r.status]} {code(r.id)}{kind} — {esc(r.message or r.status.value, 200)}"
    lines = ["<details>", f"<summary>{summary}</summary>", ""]
    meta = [f"{esc(r.kind)} check"]
    if r.source:
        meta.append(f"at {code(r.source)}")
    if r.tags:
        meta.append("tags " + ", ".join(code(t) for t in r.tags))
    if len(r.attempts) > 1:
        meta.append(f"{len(r.attempts)} attempts over {format_duration(r.duration)}")
    else:
        meta.append(format_duration(r.duration))
    lines += [" · ".join(meta), ""]
    if r.description:
        lines += [f"> {esc(r.description)}", ""]
    # A failing case is listed under **Test cases** with its message: not twice.
    evidence = [m for m in r.evidence if not (r.cases and m.subject.startswith("case "))]
    if evidence:
        lines += ["| Subject | Expected | Actual |", "|:--|:--|:--|"]
        for m in evidence:
            lines.append(f"| {code(m.subject)} | {code(m.expected)} | {code(m.actual)} |")
        lines.append("")
    elif len(r.message) > 200 and not r.cases:  # shorter ones are whole in the summary line
        lines += [esc(r.message, 2000), ""]
    if len(r.attempts) > 1:
        lines += ["**Attempts**", "", *_attempts(r), ""]
    if r.cases:
        lines += _cases(r)
    if r.snippet:
        snippet = r.snippet if len(r.snippet) <= SNIPPET_LIMIT else r.snippet[:SNIPPET_LIMIT] + "…"
        lines += ["**Response**", "", fence(snippet), ""]
    if r.log:
        tail = "\n".join(cap_log(r.log, LOG_LIMIT).rstrip().splitlines()[-LOG_LINES:])
        lines += [f"**Log** (last {LOG_LINES} lines at most)", "", fence(tail), ""]
    lines += ["</details>", ""]
    return lines


CASES_LISTED = 50
CASE_BODIES = 5


def _cases(r: CheckResult) -> list[str]:
    """The check's test cases: failing ones first (all of them up to CASES_LISTED, then a
    count), passing ones only when the whole list is short; the first failure bodies fenced."""
    failing = [c for c in r.cases if c.failed]
    shown = failing[:CASES_LISTED]
    if len(r.cases) <= CASES_LISTED:
        shown = failing + [c for c in r.cases if not c.failed]
    lines = [
        f"**Test cases** ({esc(cases_summary(r.cases))})",
        "",
        "| | Case | Time | Message |",
        "|:-:|:--|--:|:--|",
    ]
    for c in shown:
        icon = _ICON[Status(c.status)]
        lines.append(
            f"| {icon} | {code(c.full_name, 200)} | {format_duration(c.time)} | "
            f"{esc(c.headline, 300)} |"
        )
    if len(failing) > len([c for c in shown if c.failed]):
        lines.append(f"| | … {len(failing) - CASES_LISTED} more failing cases | | |")
    lines.append("")
    for c in failing[:CASE_BODIES]:
        body = c.text or c.message
        if body:
            lines += [f"{code(c.full_name, 200)}:", "", fence(body[-SNIPPET_LIMIT:]), ""]
    return lines


def _all_checks(run: RunResult) -> list[str]:
    lines = [
        "<details>",
        f"<summary>All checks ({len(run.results)})</summary>",
        "",
        "| | Check | Kind | Attempts | Time | Message |",
        "|:-:|:--|:--|--:|--:|:--|",
    ]
    for r in run.results:
        rec = " 🔁" if r.recovered else ""
        msg = esc(r.message, 200) if r.status is not Status.PASSED else ""
        if r.cases and r.status is Status.PASSED:
            msg = esc(cases_summary(r.cases))
        lines.append(
            f"| {_ICON[r.status]}{rec} | {code(r.id)} | {esc(r.kind)} | {len(r.attempts)} | "
            f"{format_duration(r.duration)} | {msg} |"
        )
    lines += ["", "</details>", ""]
    return lines


def render(run: RunResult) -> str:
    counts = run.counts()
    if run.interrupted:
        icon, verdict = "⚠️", "interrupted"
    elif run.ok:
        icon, verdict = "✅", "passed"
    else:
        icon, verdict = "❌", "failed"
    total = counts["total"]
    lines = [
        f"### {icon} smokegate {verdict}: {_count_phrase(counts)} "
        f"({total:,} check{'s' if total != 1 else ''} in {format_duration(run.duration)})",
        "",
        f"<sub>{_context_line(run)}</sub>",
        "",
    ]
    table = _suite_table(run)
    if table:
        lines += [*table, ""]
    elif not total:
        lines += ["_No checks ran._", ""]

    failures = [r for r in run.results if r.status in (Status.FAILED, Status.ERROR)]
    if failures:
        lines += [f"#### ❌ Failures ({len(failures):,})", ""]
        for r in failures[:DETAIL_LIMIT]:
            lines += _failure_section(r)
        more = failures[DETAIL_LIMIT:]
        for r in more[:FAILURE_LINE_LIMIT]:
            kind = f" {code(r.error_kind)}" if r.error_kind else ""
            lines.append(f"- {_ICON[r.status]} {code(r.id)}{kind} — {esc(r.message, 200)}")
        if len(more) > FAILURE_LINE_LIMIT:
            rest = len(more) - FAILURE_LINE_LIMIT
            lines.append(f"- … and {rest:,} more failures (see the JSON or HTML report)")
        if more:
            lines.append("")

    recovered = [r for r in run.results if r.recovered]
    if recovered:
        lines += [f"#### 🔁 Recovered after retries ({len(recovered):,})", ""]
        lines += ["These passed, but not on the first attempt: likely flaky.", ""]
        for r in recovered[:RECOVERED_LIMIT]:
            first_fail = next((a for a in r.attempts if not a.ok), None)
            why = f" — first failure: {esc(first_fail.message, 200)}" if first_fail else ""
            lines.append(
                f"- {code(r.id)} passed on attempt {len(r.attempts)} "
                f"after {format_duration(r.duration)}{why}"
            )
        if len(recovered) > RECOVERED_LIMIT:
            lines.append(f"- … and {len(recovered) - RECOVERED_LIMIT:,} more")
        lines.append("")

    if total <= LIST_LIMIT:
        if total:
            lines += _all_checks(run)
    else:
        skipped = Counter(r.message or "skipped" for r in run.results if r.status is Status.SKIPPED)
        if skipped:
            lines += [f"#### ⏭️ Skipped ({counts['skipped']:,})", ""]
            for reason, n in skipped.most_common(SKIP_REASON_LIMIT):
                lines.append(f"- {n:,} × {esc(reason, 200)}")
            if len(skipped) > SKIP_REASON_LIMIT:
                lines.append(f"- … and {len(skipped) - SKIP_REASON_LIMIT:,} other reasons")
            lines.append("")
        lines += [
            f"<sub>{counts['passed']:,} passing checks are not listed one by one; "
            "the JSON and HTML reports have every check.</sub>",
            "",
        ]
    return _CONTROL.sub("", "\n".join(lines).rstrip("\n")) + "\n\n"
