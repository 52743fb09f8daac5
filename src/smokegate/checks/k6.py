"""``k6``: run a k6 load script; its thresholds decide, its summary is the evidence.

    - name: checkout-under-load
      timeout: 5m
      k6:
        script: k6/checkout.js            # relative to the suite file
        vus: 10
        duration: 30s
        env: {BASE_URL: "http://${host}"} # the script reads __ENV.BASE_URL
        bin: k6                           # default: k6 on PATH

k6 runs with ``--summary-export`` into a private directory; that JSON summary (metric
aggregates, each threshold's verdict, each check's passes and fails) is read back:

* one child case per threshold (``classname`` ``threshold``, name ``METRIC EXPRESSION``):
  failed when k6 says it was crossed, with the measured value beside the threshold
  (``p(95)=612.40ms, threshold p(95)<500``). Crossed thresholds fail the check, and each is
  evidence ``METRIC p(95)``: expected ``<500``, got ``612.40ms``;
* one child case per ``check()`` (``classname`` the group path, or ``check``): failed when any
  iteration failed it, with the counts. Checks are reported, never decisive on their own, as in
  k6 itself: put a threshold on ``checks`` (``rate>0.99``) to gate on them;
* ``details``: checks pass rate, ``http_req_duration`` avg/p(90)/p(95)/max (ms),
  ``http_req_failed`` rate, requests and iterations.

The suite's vars reach the script as ``__ENV.SMOKEGATE_*`` (k6 passes its environment to
``__ENV``). A k6 that is not installed is refused when the suite is loaded. k6 is Grafana's
(AGPL-3.0): smokegate only runs the binary the user installed, it ships none of it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from typing import Any, Self

from pydantic import Field, model_validator

from smokegate.checks._suites import verdict
from smokegate.checks._tool import ToolSpec, require_tool, run_tool
from smokegate.checks.base import (
    CheckContext,
    CheckFailed,
    ErrorKind,
    LocalPath,
    Mismatch,
    Outcome,
    Secret,
    masked,
)
from smokegate.core.cases import Case
from smokegate.suite.model import Duration

INSTALL = (
    "see https://grafana.com/docs/k6/latest/set-up/install-k6/ (brew install k6, the k6 "
    "apt/rpm repository, or its release binary), or give its path in `bin`"
)

# k6's exit codes (errext/exitcodes), for a run that failed without a crossed threshold.
EXIT_WORDS = {
    97: "k6 cloud test failed",
    99: "thresholds crossed",
    100: "setup() timed out",
    101: "teardown() timed out",
    102: "k6 timed out",
    103: "k6 engine error",
    104: "invalid k6 configuration: check `args` and the script's options",
    105: "aborted from outside",
    107: "the script threw an exception",
    108: "the script called test.abort()",
    110: "the script marked the test as failed",
}
THRESHOLD = "threshold"
_EXPR = re.compile(r"^\s*([A-Za-z]+(?:\(\s*[\d.]+\s*\))?)\s*(<=|>=|===|==|!=|<|>)\s*(\S+)\s*$")
# Metrics k6 measures in milliseconds (trend aggregates are shown with "ms").
_MS = re.compile(r"^(http_req_(?!failed)\w+|iteration_duration|group_duration)(\{.*\})?$")


class K6Spec(ToolSpec):
    """A k6 script whose thresholds decide the check."""

    script: LocalPath
    """The k6 script (JavaScript), relative to the suite file."""
    vus: int | None = Field(default=None, ge=1)
    """Virtual users (`--vus`); default: the script's options."""
    duration: Duration | None = None
    """How long to run (`--duration`); default: the script's options."""
    iterations: int | None = Field(default=None, ge=1)
    """Total iterations (`--iterations`); default: the script's options."""
    bin: str = "k6"
    """The k6 executable: a name on PATH or a path relative to the suite file."""

    @model_validator(mode="after")
    def _installed(self) -> Self:
        require_tool(self.executable(), f"install it: {INSTALL}")
        return self

    def executable(self) -> str:
        if "/" in self.bin and not os.path.isabs(self.bin) and self.base_dir:
            return os.path.join(self.base_dir, self.bin)
        return self.bin

    def argv(self, summary: str) -> list[str | Secret]:
        argv: list[str | Secret] = [self.executable(), "run", "--summary-export", summary]
        argv += ["--no-color", "--quiet"]
        if self.vus:
            argv += ["--vus", str(self.vus)]
        if self.duration:
            argv += ["--duration", f"{self.duration:g}s"]
        if self.iterations:
            argv += ["--iterations", str(self.iterations)]
        return [*argv, *self.args, self.script]


def _number(value: float, metric: str, agg: str) -> str:
    if _MS.match(metric) and agg not in ("count", "rate", "value"):
        return f"{value:.2f}ms"
    return f"{value:g}"


def measured(metric: str, data: dict[str, Any], expression: str) -> tuple[str, str, str]:
    """(aggregation, operator and bound, the measured value as text) of one threshold."""
    m = _EXPR.match(expression)
    if not m:
        return expression, expression, "n/a"
    agg, op, bound = m.group(1).replace(" ", ""), m.group(2), m.group(3)
    # A Rate metric's `rate` is exported as `value`; a Counter has `count` and `rate` itself.
    key = "value" if agg == "rate" and "rate" not in data else agg
    value = data.get(key)
    if not isinstance(value, int | float):
        return agg, f"{op}{bound}", "n/a (not in the summary: add it to summaryTrendStats)"
    return agg, f"{op}{bound}", _number(float(value), metric, agg)


def _check_cases(group: dict[str, Any], path: str, out: list[Case]) -> None:
    checks = group.get("checks") or {}
    for name, c in checks.items() if isinstance(checks, dict) else ():
        passes, fails = int(c.get("passes") or 0), int(c.get("fails") or 0)
        total = passes + fails
        case = Case(name=str(c.get("name") or name), classname=path or "check")
        if fails:
            case.status = "failed"
            case.message = f"{fails} of {total} failed ({passes / total:.2%} passed)"
        else:
            case.message = "" if total else "never run"
        out.append(case)
    for sub in (group.get("groups") or {}).values():
        if isinstance(sub, dict):
            _check_cases(
                sub, f"{path}::{sub.get('name', '')}" if path else str(sub.get("name")), out
            )


def summary_cases(summary: dict[str, Any]) -> tuple[list[Case], dict[str, Mismatch]]:
    """Threshold cases, then check cases; and the evidence of each crossed threshold."""
    cases: list[Case] = []
    evidence: dict[str, Mismatch] = {}
    for metric, data in (summary.get("metrics") or {}).items():
        if not isinstance(data, dict):
            continue
        for expression, crossed in (data.get("thresholds") or {}).items():
            agg, bound, value = measured(metric, data, expression)
            case = Case(name=f"{metric} {expression}", classname=THRESHOLD)
            case.message = f"{agg}={value}, threshold {expression}"
            if crossed:
                case.status = "failed"
                evidence[case.full_name] = Mismatch(f"{metric} {agg}", bound, value)
            cases.append(case)
    _check_cases(summary.get("root_group") or {}, "", cases)
    return cases, evidence


def _facts(summary: dict[str, Any]) -> dict[str, Any]:
    metrics = summary.get("metrics") or {}
    facts: dict[str, Any] = {}
    checks = metrics.get("checks")
    if isinstance(checks, dict):
        facts["checks"] = {k: checks.get(k) for k in ("passes", "fails")} | {
            "rate": checks.get("value")
        }
    duration = metrics.get("http_req_duration")
    if isinstance(duration, dict):
        facts["http_req_duration_ms"] = {
            k: duration.get(k) for k in ("avg", "p(90)", "p(95)", "max") if k in duration
        }
    failed = metrics.get("http_req_failed")
    if isinstance(failed, dict):
        facts["http_req_failed_rate"] = failed.get("value")
    for name in ("http_reqs", "iterations"):
        if isinstance(metrics.get(name), dict):
            facts[name] = metrics[name].get("count")
    return facts


def read_summary(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise CheckFailed(
            f"k6 summary {path} is not readable JSON: {exc}", kind=ErrorKind.PROTOCOL
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise CheckFailed(f"k6 summary {path} has no `metrics`", kind=ErrorKind.PROTOCOL)
    return data


def outcome(
    summary: dict[str, Any] | None, code: int | None, output: str, ctx: CheckContext, shown: str
) -> Outcome:
    """The check's outcome from k6's summary (None: k6 wrote none) and exit code."""
    cases, evidence = summary_cases(summary) if summary is not None else ([], {})
    details = {"command": shown, **(_facts(summary) if summary is not None else {})}
    return verdict(
        cases,
        ctx,
        tool="k6",
        code=code,
        output=output,
        details=details,
        exit_words=EXIT_WORDS,
        decides=lambda c: c.classname == THRESHOLD,
        evidence_of=lambda c: (
            evidence.get(c.full_name) or Mismatch(c.full_name, "not crossed", c.message)
        ),
        require_cases=summary is None,
        wording=("thresholds", "crossed"),
    )


async def run(spec: K6Spec, ctx: CheckContext) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="smokegate-k6-") as tmp:
        path = os.path.join(tmp, "summary.json")
        argv = spec.argv(path)
        done = await run_tool(argv, spec.process_env(), spec.workdir(), "k6")
        summary = read_summary(path) if os.path.exists(path) else None
        shown = " ".join(masked(argv)).replace(tmp, "<tmp>")
        return outcome(summary, done.code, done.stdout + done.stderr, ctx, shown)


SPEC = K6Spec
