"""The JSON API (``/api/v1``: runs, jobs, releases, status), the probes (``/healthz``,
``/readyz``), ``/metrics`` and ``/openapi.json``. The webhook is ``webhook.py``, the gates of
progressive delivery ``gates.py``, the shared helpers ``http.py``, the document ``openapi.py``."""

from __future__ import annotations

import logging
import re

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from smokegate.server.hooks import HookError, read_body
from smokegate.server.http import (
    JSON,
    MAX_JSON_BODY,
    authorized,
    client_address,
    error,
    store_unavailable,
    valid_release,
)
from smokegate.server.state import state_of
from smokegate.store.base import RunRecord

log = logging.getLogger("smokegate.server")


async def create_run(request: Request) -> Response:
    if (denied := authorized(request, write=True)) is not None:
        return denied
    state = state_of(request)
    try:
        body = await read_body(
            request.stream(), request.headers.get("content-length"), MAX_JSON_BODY
        )
        data = orjson.loads(body or b"{}")
    except HookError as exc:
        return error(exc.status, exc.message)
    except orjson.JSONDecodeError as exc:
        return error(400, f"body is not JSON: {exc}")
    if not isinstance(data, dict):
        return error(400, "body must be a JSON object")
    release = data.get("release") or (
        f"{data.get('namespace')}/{data.get('name')}" if data.get("name") else ""
    )
    if not isinstance(release, str) or not valid_release(release):
        return error(422, "give release: NAMESPACE/NAME (or namespace and name)")
    revision = data.get("revision") or ""
    suites = data.get("suites") or []
    if not isinstance(revision, str) or not (
        isinstance(suites, list) and all(isinstance(s, str) for s in suites)
    ):
        return error(422, "revision must be a string and suites a list of suite names")
    import uuid

    # A manual request is a re-run by definition: a fresh nonce so it is never a duplicate.
    try:
        queued = await state.store.enqueue(
            release,
            revision,
            "manual",
            nonce=uuid.uuid4().hex,
            payload={"suites": suites, "requestedBy": client_address(request)},
        )
    except Exception as exc:
        return store_unavailable(exc)
    state.wake_worker()
    return JSON(
        {
            "jobId": queued.job_id,
            "release": release,
            "revision": revision,
            "status": f"/api/v1/jobs/{queued.job_id}",
        },
        status_code=202,
    )


async def get_job(request: Request) -> Response:
    if (denied := authorized(request, write=False)) is not None:
        return denied
    try:
        job_id = int(request.path_params["job_id"])
    except ValueError:
        return error(404, "no such job")
    job = await state_of(request).store.get_job(job_id)
    if job is None:
        return error(404, "no such job")
    return JSON(
        {
            "id": job.id,
            "release": job.release,
            "revision": job.revision,
            "trigger": job.trigger,
            "state": job.state.value,
            "attempts": job.attempts,
            "runId": job.run_id,
            "createdAt": job.created_at,
        }
    )


async def list_releases(request: Request) -> Response:
    if (denied := authorized(request, write=False)) is not None:
        return denied
    items = await state_of(request).store.list_releases()
    return JSON({"items": [s.to_dict() for s in items]})


async def list_runs(request: Request) -> Response:
    if (denied := authorized(request, write=False)) is not None:
        return denied
    q = request.query_params
    try:
        limit = int(q.get("limit", "50"))
    except ValueError:
        return error(400, "limit must be a number")
    runs = await state_of(request).store.list_runs(
        q.get("release") or None, revision=q.get("revision") or None, limit=limit
    )
    return JSON({"items": [r.to_dict() for r in runs]})


async def status(request: Request) -> Response:
    """This replica: its worker identity, leadership, running jobs, watch counters."""
    if (denied := authorized(request, write=False)) is not None:
        return denied
    state = state_of(request)
    worker = state.worker
    watcher = state.watcher
    return JSON(
        {
            "worker": worker.name if worker else None,
            "running": sorted(worker.running) if worker else [],
            "leaderElection": state.elector is not None,
            "leader": state.elector.is_leader if state.elector is not None else True,
            "watching": watcher is not None,
            "watch": {"relists": watcher.relists, "resumes": watcher.resumes} if watcher else None,
            "queue": await state.store.queue_depth(),
        }
    )


async def get_run(request: Request) -> Response:
    if (denied := authorized(request, write=False)) is not None:
        return denied
    record = await state_of(request).store.get_run(request.path_params["run_id"])
    if record is None:
        return error(404, "no such run")
    fmt = request.query_params.get("format", "")
    if fmt in ("json", "junit"):
        return download(record, fmt)
    if fmt:
        return error(400, "format must be json or junit")
    return JSON({**record.summary.to_dict(), "report": record.report})


def download(record: RunRecord, fmt: str) -> Response:
    """The run as the same file ``smokegate run --report json=/junit=`` writes."""
    from smokegate.report import jsonreport, junit
    from smokegate.store.base import run_from_report

    run = run_from_report(record.report)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{record.summary.release}-{record.summary.id}")
    if fmt == "junit":
        body, media, ext = junit.render(run), "application/xml", "xml"
    else:
        body, media, ext = jsonreport.render(run), "application/json", "json"
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="smokegate-{safe}.{ext}"'},
    )


# --- probes and metrics ----------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def readyz(request: Request) -> Response:
    state = state_of(request)
    if not state.ready:
        return PlainTextResponse("starting\n", status_code=503)
    try:
        await state.store.ping()
    except Exception as exc:
        return PlainTextResponse(f"store unreachable: {type(exc).__name__}\n", status_code=503)
    return PlainTextResponse("ok\n")


async def metrics(request: Request) -> Response:
    from smokegate.server.metrics import CONTENT_TYPE

    state = state_of(request)
    return Response(await state.metrics.render(state.store), media_type=CONTENT_TYPE)


async def openapi(request: Request) -> Response:
    from smokegate.server.openapi import openapi_document

    return JSON(openapi_document())
