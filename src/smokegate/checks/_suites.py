"""From a test tool's results to one check outcome with child cases. Not a check kind.

``parse_junit`` reads any JUnit XML (pytest, newman, Jest, Maven Surefire, go-junit-report...):
``<testsuites>``/``<testsuite>`` nested to any depth, one ``Case`` per ``<testcase>``.
``verdict`` turns cases plus the tool's own exit into the check's ``Outcome``:

* the check fails when a selected case failed or errored, when no case was reported at all
  (a suite that ran nothing proves nothing), or when the tool exited non-zero without any case
  failing (it crashed, could not collect, could not reach its target);
* with ``-k check/CASE`` only matching cases count, and a tool that exited non-zero *because of*
  a case that was not selected does not fail the check;
* every text that reaches a report (case messages, bodies, output, the tool's log) is redacted
  before it is shortened: a secret cut in half is no longer recognised.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from typing import Any

from smokegate.checks.base import CheckContext, CheckFailed, ErrorKind, Mismatch, Outcome
from smokegate.core.cases import Case, summary, tally

MESSAGE_CHARS = 1000
TEXT_CHARS = 8 * 1024
OUTPUT_CHARS = 8 * 1024
PASSED_OUTPUT_CHARS = 1024
LOG_CHARS = 256 * 1024
MAX_CASES = 10_000
"""More cases than this are counted but not kept one by one (the report stays readable)."""
NAMED_FAILURES = 5


def tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


def head(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, float((value or "0").replace(",", "")))
    except ValueError:
        return 0.0


def _case(el: ET.Element) -> Case:
    case = Case(
        name=el.get("name") or "(unnamed)",
        classname=el.get("classname") or "",
        time=_seconds(el.get("time")),
    )
    outputs = []
    for child in el:
        tag = _tag(child)
        if tag in ("failure", "error") and not case.failed:
            case.status = "failed" if tag == "failure" else "error"
            case.message = (child.get("message") or "").strip()
            case.failure_type = child.get("type") or ""
            case.text = (child.text or "").strip()
            if not case.message:
                case.message = case.text.splitlines()[0] if case.text else tag
        elif tag == "skipped" and case.status == "passed":
            case.status = "skipped"
            case.message = (child.get("message") or child.text or "").strip()
        elif tag in ("system-out", "system-err") and (child.text or "").strip():
            outputs.append(child.text or "")
    case.output = "\n".join(t for o in outputs if (t := _without_empty_sections(o)))
    return case


_SECTION = re.compile(r"^-+ Captured [\w ]+ -+$", re.MULTILINE)


def _without_empty_sections(text: str) -> str:
    """pytest's ``junit_logging=all`` writes a ``--- Captured Out ---`` header even over
    nothing: keep the sections that hold something."""
    heads = list(_SECTION.finditer(text))
    if not heads:
        return text.strip("\n")
    parts = [text[: heads[0].start()].strip("\n")]
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        body = text[m.end() : end].strip("\n")
        if body.strip():
            parts.append(f"{m.group(0)}\n{body}")
    return "\n".join(p for p in parts if p.strip())


def _tag(el: ET.Element) -> str:
    return el.tag.rpartition("}")[2]  # namespaced JUnit variants exist


def _walk(el: ET.Element, suite: str, suite_output: str, out: list[Case], by_suite: bool) -> None:
    """Cases under ``el``; a failing case also gets its suite's own output (newman writes a
    request's connection error there, not in the case)."""
    for child in el:
        tag = _tag(child)
        if tag == "testcase":
            case = _case(child)
            if by_suite and suite:
                case.classname = suite
            if case.failed and suite_output:
                case.output = "\n".join(o for o in (case.output, suite_output) if o)
            out.append(case)
        elif tag in ("testsuite", "testsuites"):
            own = "\n".join(
                (o.text or "").strip()
                for o in child
                if _tag(o) in ("system-out", "system-err") and (o.text or "").strip()
            )
            _walk(child, child.get("name") or suite, own, out, by_suite)


def parse_junit(
    text: str | bytes, source: str, *, classname_from_suite: bool = False
) -> list[Case]:
    """Every ``<testcase>`` of a JUnit XML document, in document order. A file that is not
    JUnit XML is a failure of the check naming the file, not an error of smokegate.
    ``classname_from_suite``: a case's classname is its ``<testsuite>``'s name (newman names
    a suite after the request, and its classname is a mangled copy of it)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise CheckFailed(
            f"{source} is not valid XML: {exc}",
            kind=ErrorKind.PROTOCOL,
            evidence=[Mismatch("results", "JUnit XML", f"invalid XML ({exc})")],
        ) from None
    tag = _tag(root)
    if tag not in ("testsuites", "testsuite", "testcase"):
        raise CheckFailed(
            f"{source} is not JUnit XML (root element <{tag}>)",
            kind=ErrorKind.PROTOCOL,
            evidence=[Mismatch("results", "<testsuites> or <testsuite>", f"<{tag}>")],
        )
    if tag == "testcase":
        return [_case(root)]
    cases: list[Case] = []
    wrapper = ET.Element("root")
    wrapper.append(root)
    _walk(wrapper, "", "", cases, classname_from_suite)
    return cases


def read_junit(path: str, *, classname_from_suite: bool = False) -> list[Case]:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise CheckFailed(
            f"no results file at {path}",
            kind=ErrorKind.EXPECTATION,
            evidence=[Mismatch("results", f"a JUnit file at {path}", "no file")],
        ) from None
    except OSError as exc:
        raise CheckFailed(f"cannot read {path}: {exc}", kind=ErrorKind.CONFIG) from None
    return parse_junit(data, path, classname_from_suite=classname_from_suite)


def _clean(case: Case, ctx: CheckContext) -> Case:
    red = ctx.redactor.redact
    case.name = red(case.name)
    case.classname = red(case.classname)
    case.message = head(red(case.message), MESSAGE_CHARS)
    case.text = tail(red(case.text), TEXT_CHARS)
    limit = OUTPUT_CHARS if case.failed else PASSED_OUTPUT_CHARS
    case.output = tail(red(case.output), limit)
    return case


def _describe(patterns: Sequence[str]) -> str:
    wanted = " or ".join(p for p in patterns if not p.startswith("!"))
    unwanted = " or ".join(p[1:] for p in patterns if p.startswith("!"))
    return " but not ".join(x for x in (wanted, unwanted) if x)


def _first_line(c: Case) -> str:
    return head(c.headline or c.status, 200)


def _failed_line(c: Case) -> str:
    return f"{c.full_name}: {_first_line(c)}"


def verdict(
    cases: Sequence[Case],
    ctx: CheckContext,
    *,
    tool: str,
    code: int | None,
    output: str = "",
    problems: Sequence[Mismatch] = (),
    details: dict[str, Any] | None = None,
    exit_words: dict[int, str] | None = None,
    decides: Callable[[Case], bool] | None = None,
    evidence_of: Callable[[Case], Mismatch] | None = None,
    require_cases: bool = True,
    wording: tuple[str, str] = ("cases", "failed"),
) -> Outcome:
    """The check's outcome from the tool's cases, its exit code and ``problems`` the kind found
    itself (a breached k6 threshold without a case of its own, say). ``exit_words`` names the
    tool's exit codes (pytest's 5 is "no tests collected"). ``decides``: which failing cases
    fail the check (default: all; k6's checks are reported but only its thresholds decide),
    ``evidence_of``: a failing case as evidence (default: ``case NAME: expected passed``).
    ``require_cases``: no case at all is a failure. ``wording``: what the deciding cases are
    and what failing is called, for the message (k6: ``1 of 3 thresholds crossed``)."""
    red = ctx.redactor.redact
    everything = list(cases)
    selected = ctx.selected_cases()
    wanted = [p for p in selected if not p.startswith("!")]
    unwanted = [p[1:] for p in selected if p.startswith("!")]
    kept = [
        c
        for c in everything
        if (not wanted or any(c.matches(p) for p in wanted))
        and not any(c.matches(p) for p in unwanted)
    ]
    kept = [_clean(c, ctx) for c in kept[:MAX_CASES]]
    deciding = decides or (lambda c: True)
    failing = [c for c in kept if c.failed and deciding(c)]
    evidence: list[Mismatch] = list(problems)
    if selected and not kept:
        evidence.append(
            Mismatch("cases", f"a case matching {_describe(selected)}", f"none of {len(cases)}")
        )
    elif not everything and require_cases:
        evidence.append(Mismatch("cases", "at least one test case", "none reported"))
    for c in failing:
        evidence.append(
            evidence_of(c)
            if evidence_of
            else Mismatch(f"case {c.full_name}", "passed", _first_line(c))
        )
    crashed = code not in (None, 0) and not any(c.failed and deciding(c) for c in everything)
    if crashed:
        words = (exit_words or {}).get(code or 0)
        evidence.append(
            Mismatch(
                "exit code",
                "0",
                f"{code} ({words})" if words else f"{code} with no failing test case",
            )
        )
    info = {"tool": tool, "exitCode": code, "cases": tally(kept), **(details or {})}
    if output.strip():
        info["log"] = tail(red(output), LOG_CHARS)
    counted = summary(kept) if kept else "no cases"
    if not evidence:
        return Outcome(True, counted, [], None, info, None, kept)
    if failing:
        names = "; ".join(_failed_line(c) for c in failing[:NAMED_FAILURES])
        more = f" (+{len(failing) - NAMED_FAILURES} more)" if len(failing) > NAMED_FAILURES else ""
        counted_in = sum(1 for c in kept if deciding(c))
        noun, verb = wording
        message = f"{len(failing)} of {counted_in} {noun} {verb}: {names}{more}"
        others = list(problems) + [m for m in evidence if m.subject in ("cases", "exit code")]
        if others:
            message += "; " + "; ".join(str(m) for m in others[:2])
    else:
        message = "; ".join(str(m) for m in evidence[:3])
    snippet = tail(red(output).rstrip(), 1024) if crashed and output.strip() else None
    return Outcome(False, message, evidence, snippet, info, ErrorKind.EXPECTATION, kept)
