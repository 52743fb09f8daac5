"""JUnit XML, the format every CI test view reads (GitHub test-reporter actions, GitLab, Jenkins,
Azure DevOps, junitparser)::

    <testsuites name="smokegate" tests failures errors skipped time timestamp>
      <testsuite name=SUITE file=SUITE_FILE tests failures errors skipped time timestamp>
        <properties>run id, the suite's release, the run context</properties>
        <testcase classname=SUITE name=CHECK time file=SUITE_FILE line=LINE>
          <properties>id, kind, tags, attempts, recovered, errorKind, attempt.N.*</properties>
          <failure|error message=... type=ERROR_KIND>evidence, last attempt, response</...>
          <skipped message=REASON/>
          <system-out>the check's log (last 64 KiB)</system-out>
        </testcase>
        <testcase classname=SUITE name=CHECK/CASE time>   one per child case (pytest, newman...)
          <properties>parent, case.classname, case.name</properties>
          <failure|error message type>the case's failure body</...>
          <system-out>what the case printed</system-out>
        </testcase>
      </testsuite>
    </testsuites>

A check that failed (expectations, connection refused, timeout...) is a ``<failure>``; a check
that could not be evaluated (status ``error``: a bug or unexpected driver error) is an
``<error>``. ``time`` of a suite is the wall-clock span of its checks (they run concurrently, so
the sum of check times would overstate it). Suites with no selected check are left out.
Characters XML 1.0 cannot carry (most C0 controls, lone surrogates) are removed.

A check that ran a test suite keeps its own testcase (its verdict, attempts and the tool's log)
and is followed by one testcase per child case, named ``CHECK/CASE`` in the same suite, so a CI
view lists ``SUITE/CHECK/CASE`` and names each failing test with its assertion message. The
counts (``tests``, ``failures``...) include the cases.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

from smokegate.core.cases import Case
from smokegate.core.results import CheckResult, RunResult, Status
from smokegate.report.jsonreport import cap_log

LOG_LIMIT = 64 * 1024
MESSAGE_LIMIT = 2000

_ILLEGAL = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean(text: str) -> str:
    """``text`` without the characters XML 1.0 forbids."""
    return _ILLEGAL.sub("", text)


def _iso(ts: float, timespec: str = "seconds") -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec=timespec)


def _secs(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _span(results: list[CheckResult]) -> tuple[float, float]:
    """Start and wall-clock length of a group of checks."""
    timed = [r for r in results if r.started_at]
    if not timed:
        return 0.0, 0.0
    start = min(r.started_at for r in timed)
    end = max(r.started_at + r.duration for r in timed)
    return start, end - start


def _tally(results: list[CheckResult]) -> dict[Status, int]:
    """Testcases per status: checks and their child cases."""
    out = dict.fromkeys(Status, 0)
    for r in results:
        out[r.status] += 1
        for c in r.cases:
            out[Status(c.status)] += 1
    return out


def _tests(results: list[CheckResult]) -> int:
    return sum(1 + len(r.cases) for r in results)


def _child(parent: ET.Element, r: CheckResult, c: Case) -> None:
    label = f"{c.classname}.{c.name}" if c.classname else c.name
    tc = ET.SubElement(
        parent,
        "testcase",
        classname=clean(r.suite),
        name=clean(f"{r.name}/{label}"),
        time=_secs(c.time),
    )
    _properties(
        tc,
        [("parent", r.id), ("case.classname", c.classname), ("case.name", c.name)],
    )
    if c.failed:
        tag = "failure" if c.status == "failed" else "error"
        message = c.message or tag
        if len(message) > MESSAGE_LIMIT:
            message = message[:MESSAGE_LIMIT] + "…"
        el = ET.SubElement(tc, tag, message=clean(message), type=clean(c.failure_type or tag))
        el.text = clean(c.text or c.message)
    elif c.status == "skipped":
        ET.SubElement(tc, "skipped", message=clean(c.message or "skipped"))
    if c.output:
        out = ET.SubElement(tc, "system-out")
        out.text = clean(c.output)


def _flat(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}", v, out)
    elif value is not None:
        out.append((prefix, str(value)))


def _properties(parent: ET.Element, pairs: list[tuple[str, str]]) -> None:
    if not pairs:
        return
    props = ET.SubElement(parent, "properties")
    for name, value in pairs:
        ET.SubElement(props, "property", name=clean(name), value=clean(value))


def failure_text(r: CheckResult) -> str:
    """Body of ``<failure>``/``<error>``: what a person needs to act without opening anything."""
    lines = [r.message] if r.message else []
    if r.evidence:
        lines.append("")
        lines.append("expected vs actual:")
        for m in r.evidence:
            lines.append(f"  {m.subject}: expected {m.expected}, got {m.actual}")
    if r.attempts:
        last = r.attempts[-1]
        kind = f" [{last.error_kind}]" if last.error_kind else ""
        lines.append("")
        lines.append(
            f"attempt {last.number} of {len(r.attempts)} at {_iso(last.started_at, 'milliseconds')}"
            f" ({last.duration * 1000:.0f}ms){kind}"
            + (f": {last.message}" if last.message and last.message not in r.message else "")
        )
    if r.source:
        lines.append(f"source: {r.source}")
    if r.snippet:
        lines.append("")
        lines.append("response:")
        lines.append(r.snippet)
    return "\n".join(lines).strip("\n") + "\n"


def _line_of(source: str) -> str | None:
    _, sep, line = source.rpartition(":")
    return line if sep and line.isdigit() else None


def _testcase(parent: ET.Element, r: CheckResult, suite_file: str) -> None:
    tc = ET.SubElement(
        parent, "testcase", classname=clean(r.suite), name=clean(r.name), time=_secs(r.duration)
    )
    if suite_file:
        tc.set("file", clean(suite_file))
    line = _line_of(r.source)
    if line:
        tc.set("line", line)
    pairs = [
        ("id", r.id),
        ("kind", r.kind),
        ("tags", ",".join(r.tags)),
        ("attempts", str(len(r.attempts))),
        ("recovered", "true" if r.recovered else "false"),
        ("errorKind", r.error_kind or ""),
        ("source", r.source),
    ]
    if r.cases:
        pairs.append(("cases", str(len(r.cases))))
    if r.description:
        pairs.append(("description", r.description))
    for a in r.attempts:
        pairs.append((f"attempt.{a.number}.startedAt", _iso(a.started_at, "milliseconds")))
        pairs.append((f"attempt.{a.number}.duration", _secs(a.duration)))
        outcome = "passed" if a.ok else f"failed: {a.error_kind}" if a.error_kind else "failed"
        pairs.append((f"attempt.{a.number}.outcome", outcome))
        if not a.ok and a.message:
            pairs.append((f"attempt.{a.number}.message", a.message))
    _properties(tc, pairs)

    if r.status in (Status.FAILED, Status.ERROR):
        tag = "failure" if r.status is Status.FAILED else "error"
        message = r.message or ("check failed" if tag == "failure" else "check errored")
        if len(message) > MESSAGE_LIMIT:
            message = message[:MESSAGE_LIMIT] + "…"
        el = ET.SubElement(tc, tag, message=clean(message), type=clean(r.error_kind or tag))
        el.text = clean(failure_text(r))
    elif r.status is Status.SKIPPED:
        ET.SubElement(tc, "skipped", message=clean(r.message or "skipped"))
    if r.log:
        out = ET.SubElement(tc, "system-out")
        out.text = clean(cap_log(r.log, LOG_LIMIT))


def render(run: RunResult) -> str:
    files = {s.name: s.file for s in run.suites}
    releases = {s.name: s.release for s in run.suites}
    groups = [(name, rs) for name, rs in run.by_suite().items() if rs]
    total = _tally(run.results)

    root = ET.Element(
        "testsuites",
        name="smokegate",
        tests=str(_tests(run.results)),
        failures=str(total[Status.FAILED]),
        errors=str(total[Status.ERROR]),
        skipped=str(total[Status.SKIPPED]),
        time=_secs(run.duration),
        timestamp=_iso(run.started_at),
    )
    for name, results in groups:
        tally = _tally(results)
        start, span = _span(results)
        suite_file = files.get(name) or results[0].source.rpartition(":")[0] or results[0].source
        suite = ET.SubElement(
            root,
            "testsuite",
            name=clean(name),
            tests=str(_tests(results)),
            failures=str(tally[Status.FAILED]),
            errors=str(tally[Status.ERROR]),
            skipped=str(tally[Status.SKIPPED]),
            time=_secs(span),
            timestamp=_iso(start or run.started_at),
        )
        if suite_file:
            suite.set("file", clean(suite_file))
        pairs = [("smokegate.runId", run.run_id)]
        if run.interrupted:
            pairs.append(("smokegate.interrupted", "true"))
        _flat("release", releases.get(name), pairs)
        _flat("context", run.context, pairs)
        _properties(suite, pairs)
        for r in results:
            _testcase(suite, r, suite_file)
            for c in r.cases:
                _child(suite, r, c)

    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"
