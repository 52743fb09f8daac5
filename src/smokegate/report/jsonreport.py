"""JSON report: ``RunResult.to_dict()`` as indented JSON, the stable machine-readable record of a
run (schema ``smokegate.io/report/v1``; fields are documented in docs/report-format.md and
described by ``report_schema.json`` next to this module).

The only transformation is size: a check's ``log`` keeps its last ``LOG_LIMIT`` bytes, behind a
``[truncated N bytes]`` first line. ``cap_log`` is shared with the other file reporters so the
note reads the same everywhere.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import orjson

from smokegate.core.results import RunResult

LOG_LIMIT = 256 * 1024
SCHEMA_FILE = "report_schema.json"

_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE


def cap_log(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` UTF-8 bytes, else its tail (from a line start when one is
    near) behind a ``[truncated N bytes]`` line. The tail is kept because that is where a failing
    pod or script says why it failed."""
    if len(text) * 4 <= limit:  # cannot exceed the limit: skip encoding
        return text
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    tail = data[len(data) - limit :]
    newline = tail.find(b"\n", 0, 1024)
    if newline != -1:
        tail = tail[newline + 1 :]
    kept = tail.decode("utf-8", "ignore")
    dropped = len(data) - len(kept.encode("utf-8", "surrogatepass"))
    return f"[truncated {dropped} bytes]\n{kept}"


def report_data(run: RunResult) -> dict[str, Any]:
    """The JSON report as plain data (what ``render`` encodes)."""
    data = run.to_dict()
    for result in data["results"]:
        log = result.get("log")
        if log:
            result["log"] = cap_log(log, LOG_LIMIT)
    return data


def render(run: RunResult) -> str:
    data = report_data(run)
    try:
        return orjson.dumps(data, default=_fallback, option=_OPTIONS).decode()
    except orjson.JSONEncodeError:
        # Lone surrogates (bytes decoded with surrogateescape somewhere), integers beyond 64 bits
        # or deeply nested details: the stdlib encoder with replacement never fails.
        return json.dumps(_clean(data), indent=2, ensure_ascii=False, default=str) + "\n"


def _fallback(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {str(_clean(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in value]
    return value


def load_schema() -> dict[str, Any]:
    """The JSON Schema (Draft 2020-12) of the report."""
    text = resources.files("smokegate.report").joinpath(SCHEMA_FILE).read_text("utf-8")
    return json.loads(text)


# --- reading a report back -------------------------------------------------------------------


class ReportFormatError(ValueError):
    """Not a ``smokegate.io/report/v1`` report; the message says where it differs."""


def load_run(data: Any) -> RunResult:
    """A ``RunResult`` from a JSON report's data (``render``'s output, parsed), so a run made
    elsewhere (a pod, another host) can be reported as if it ran here: every file reporter
    renders the loaded run as it rendered the original. The data is checked against the schema
    first; fields a newer smokegate added within v1 are ignored, as the promise allows."""
    import jsonschema

    from smokegate.checks.base import Mismatch
    from smokegate.core.cases import cases_from
    from smokegate.core.results import Attempt, CheckResult, Status, SuiteInfo

    try:
        jsonschema.validate(data, load_schema(), cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise ReportFormatError(
            f"not a smokegate.io/report/v1 report: {where}: {exc.message}"
        ) from None
    results = [
        CheckResult(
            id=r["id"],
            name=r["name"],
            suite=r["suite"],
            kind=r["kind"],
            status=Status(r["status"]),
            tags=tuple(r["tags"]),
            source=r["source"],
            description=r["description"],
            attempts=[
                Attempt(
                    number=a["number"],
                    started_at=a["startedAt"],
                    duration=a["duration"],
                    ok=a["ok"],
                    message=a["message"],
                    error_kind=a["errorKind"],
                )
                for a in r["attempts"]
            ],
            started_at=r["startedAt"],
            duration=r["duration"],
            message=r["message"],
            error_kind=r["errorKind"],
            evidence=[Mismatch(m["subject"], m["expected"], m["actual"]) for m in r["evidence"]],
            snippet=r["snippet"],
            details=dict(r["details"]),
            log=r["log"],
            cases=cases_from(r.get("cases")),
        )
        for r in data["results"]
    ]
    return RunResult(
        run_id=data["runId"],
        started_at=data["startedAt"],
        finished_at=data["finishedAt"],
        suites=[SuiteInfo(s["name"], s["file"], s["release"]) for s in data["suites"]],
        results=results,
        interrupted=data["interrupted"],
        context=dict(data["context"]),
    )


def parse_report(text: str) -> RunResult:
    """``load_run`` of a JSON report's text."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ReportFormatError(f"not JSON: {exc}") from None
    return load_run(data)
