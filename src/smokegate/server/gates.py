"""Gates for progressive delivery.

**Flagger** (``POST /gates/flagger``, any hook type, e.g. ``pre-rollout`` or ``rollout``): the
payload is ``{name, namespace, phase, checksum, metadata}``. The canary's checksum is the
revision: the first call queues one run per checksum (a trigger ``flagger`` job, deduplicated
like every other), later calls look its verdict up. Flagger counts only 200-202 as success, so:

* ``200`` the run passed (body: the summary);
* ``412`` the run failed or errored (body: the summary with the failed checks; Flagger shows it
  in its events as "… check <name> failed <body>");
* ``503`` the run has not finished within ``gates.flaggerWait`` (kept below Flagger's 10s
  default timeout): Flagger retries at its next analysis tick, by which time the verdict is in;
* ``404`` no suites map to the canary (a misconfiguration must halt the rollout, not pass it).

``metadata.release`` (``NAMESPACE/NAME``) overrides the HelmRelease the canary belongs to,
``metadata.suites`` (``a,b``) the suites to run, ``metadata.revision`` the checksum.

**Argo Rollouts** (``GET /gates/argo?release=NS/NAME[&revision=R]``): the latest run's verdict as
JSON for a ``web`` metric with ``successCondition: result.passed == true`` (200 for a passed
and for a failed run alike: the condition decides). A release with no run (at ``revision``) yet
answers 404: non-2xx is an Argo measurement *error* (retried up to ``consecutiveErrorLimit``),
not a failure, which is right while the run is still queued.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from smokegate.server.hooks import HookError, read_body
from smokegate.server.http import JSON, MAX_JSON_BODY, error, store_unavailable, valid_release
from smokegate.server.state import ServerState, state_of
from smokegate.store.base import JobState, RunSummary, Verdict


def verdict_body(summary: RunSummary) -> dict[str, Any]:
    return {
        "passed": summary.verdict is Verdict.PASSED,
        "verdict": summary.verdict.value,
        "release": summary.release,
        "revision": summary.revision,
        "runId": summary.id,
        "counts": summary.counts,
        "finishedAt": summary.finished_at,
        "message": summary.message,
    }


def _text(summary: RunSummary) -> str:
    return (
        f"smokegate {summary.verdict.value}: {summary.release} {summary.revision}: "
        f"{summary.message} (run {summary.id})\n"
    )


async def flagger(request: Request) -> Response:
    state = state_of(request)
    try:
        body = await read_body(
            request.stream(), request.headers.get("content-length"), MAX_JSON_BODY
        )
        data = orjson.loads(body)
    except HookError as exc:
        return error(exc.status, exc.message)
    except orjson.JSONDecodeError as exc:
        return error(400, f"body is not JSON: {exc}")
    if not isinstance(data, dict) or not data.get("name") or not data.get("namespace"):
        return error(400, "a Flagger webhook payload needs name and namespace")
    raw_meta = data.get("metadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    release = str(meta.get("release") or f"{data['namespace']}/{data['name']}")
    if not valid_release(release):
        return error(400, f"{release!r} is not a valid namespace/name")
    revision = str(meta.get("revision") or data.get("checksum") or "")
    suites = [s.strip() for s in str(meta.get("suites") or "").split(",") if s.strip()]
    namespace, _, name = release.partition("/")
    if not suites and not _has_mapping(state, namespace, name):
        return PlainTextResponse(
            f"smokegate: no suites map to {release} (serve.yaml releases:, the "
            "smokegate.io/suites annotation, or metadata.suites)\n",
            status_code=404,
        )
    try:
        queued = await state.store.enqueue(
            release,
            revision,
            "flagger",
            payload={
                "suites": suites,
                "event": {"phase": data.get("phase"), "checksum": data.get("checksum")},
            },
        )
    except Exception as exc:
        return store_unavailable(exc)
    if queued.created:
        state.wake_worker()
    run_id = await _wait_for_run(state, queued.job_id, queued.run_id)
    if run_id is None:
        return PlainTextResponse(
            f"smokegate: run for {release} {revision} still in progress; retry\n",
            status_code=503,
            headers={"Retry-After": "5"},
        )
    if not run_id:  # the worker found no suites for it (e.g. no annotation on the HelmRelease)
        return PlainTextResponse(f"smokegate: no suites map to {release}\n", status_code=404)
    record = await state.store.get_run(run_id)
    if record is None:  # pruned between the lookup and now
        return PlainTextResponse("smokegate: the run was deleted; retry\n", status_code=503)
    code = 200 if record.summary.verdict is Verdict.PASSED else 412
    return PlainTextResponse(_text(record.summary), status_code=code)


def _has_mapping(state: ServerState, namespace: str, name: str) -> bool:
    # With cluster access the HelmRelease's annotation may map suites: let the worker decide.
    return state.config.kubernetes.enabled or state.config.rule_for(namespace, name) is not None


async def _wait_for_run(state: ServerState, job_id: int, run_id: str | None) -> str | None:
    """The job's run id once it is done, polling the store (the run may happen on another
    replica) until ``gates.flaggerWait``; None if still pending."""
    if run_id is not None:
        return run_id
    deadline = time.monotonic() + state.config.gates.flagger_wait
    delay = 0.05
    while True:
        job = await state.store.get_job(job_id)
        if job is not None and job.state is JobState.DONE:
            return job.run_id or ""
        if time.monotonic() + delay > deadline:
            return None
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.5)


async def argo(request: Request) -> Response:
    state = state_of(request)
    release = request.query_params.get("release", "")
    revision = request.query_params.get("revision") or None
    if not valid_release(release):
        return error(400, "give ?release=NAMESPACE/NAME")
    runs = await state.store.list_runs(release, revision=revision, limit=1)
    if not runs:
        at = f" at revision {revision}" if revision else ""
        return error(404, f"no run of {release}{at} yet")
    return JSON(verdict_body(runs[0]))
