"""HTTP handlers: the Flux webhook, the JSON API, probes and metrics, and the OpenAPI document
that describes them (hand-written: Starlette has no schema generator worth the name, and the
document is the contract users script against, so it is kept next to the handlers it
describes and a test checks that every route is in it)."""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from smokegate import __version__
from smokegate.server.hooks import HookError, parse_event, read_body, verify_signature
from smokegate.server.state import ServerState, state_of
from smokegate.store.base import RunRecord

log = logging.getLogger("smokegate.server")

_RELEASE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
MAX_JSON_BODY = 64 * 1024


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=str)


def error(status: int, message: str, **extra: Any) -> JSON:
    return JSON({"error": message, **extra}, status_code=status)


def store_unavailable(exc: BaseException) -> JSON:
    log.error("store unavailable: %s", str(exc).splitlines()[0] if str(exc) else type(exc))
    return JSON(
        {"error": "the history store is unavailable; retry"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def valid_release(text: str) -> bool:
    """``NAMESPACE/NAME`` with Kubernetes name syntax (keeps junk out of the store)."""
    return bool(_RELEASE.match(text)) and len(text) <= 320


# --- Flux webhook ------------------------------------------------------------------------------


async def flux_hook(request: Request) -> Response:
    state = state_of(request)
    cfg = state.config.webhooks.flux
    try:
        body = await read_body(
            request.stream(), request.headers.get("content-length"), cfg.max_body_bytes
        )
        if state.webhook_secrets:
            verify_signature(body, request.headers.get("x-signature"), state.webhook_secrets)
        event = parse_event(body)
    except HookError as exc:
        state.metrics.webhooks_total.labels(outcome="rejected").inc()
        # The client's address and the reason, never the body or the expected signature.
        log.info("webhook refused (%s) from %s: %s", exc.status, _client(request), exc.message)
        return error(exc.status, exc.message)
    ignored = _ignore_reason(state, event)
    if ignored:
        state.metrics.webhooks_total.labels(outcome="ignored").inc()
        return JSON({"queued": False, "ignored": ignored}, status_code=200)
    if not event.revision:
        state.metrics.webhooks_total.labels(outcome="rejected").inc()
        return error(
            422, "the event has no metadata.revision (nor helm.toolkit.fluxcd.io/revision)"
        )
    try:
        queued = await state.store.enqueue(
            event.release, event.revision, "webhook", payload={"event": event.summary()}
        )
    except Exception as exc:
        # Not queued, so not 202: a 5xx makes the notification-controller retry the event.
        return store_unavailable(exc)
    # The job is committed (durable) at this point: only now is 202 an honest answer.
    state.metrics.webhooks_total.labels(outcome="queued" if queued.created else "duplicate").inc()
    if queued.created:
        state.wake_worker()
    return JSON(
        {
            "queued": queued.created,
            "duplicate": not queued.created,
            "jobId": queued.job_id,
            "release": event.release,
            "revision": event.revision,
        },
        status_code=202,
    )


def _ignore_reason(state: ServerState, event: Any) -> str | None:
    if event.kind != "HelmRelease":
        return f"kind {event.kind} (only HelmRelease events start runs)"
    if event.reason not in state.config.webhooks.flux.reasons:
        return f"reason {event.reason or '(none)'} does not start runs"
    if not valid_release(event.release):
        return f"{event.release!r} is not a valid namespace/name"
    if (
        not state.config.kubernetes.enabled
        and state.config.rule_for(event.namespace, event.name) is None
    ):
        # Without cluster access there is no annotation to read: only a rule can map suites.
        return f"no suites map to {event.release} (releases: in serve.yaml)"
    return None


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


# --- API ------------------------------------------------------------------------------------


def _authorized(request: Request, *, write: bool) -> Response | None:
    state = state_of(request)
    if not write and not state.config.api.protect_reads:
        return None
    if state.api_token is None:
        return error(403, "no API token is configured (api.token in serve.yaml)")
    if not state.token_ok(request.headers.get("authorization")):
        return JSON(
            {"error": "missing or wrong bearer token"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="smokegate"'},
        )
    return None


async def create_run(request: Request) -> Response:
    if (denied := _authorized(request, write=True)) is not None:
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
            payload={"suites": suites, "requestedBy": _client(request)},
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
    if (denied := _authorized(request, write=False)) is not None:
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
    if (denied := _authorized(request, write=False)) is not None:
        return denied
    items = await state_of(request).store.list_releases()
    return JSON({"items": [s.to_dict() for s in items]})


async def list_runs(request: Request) -> Response:
    if (denied := _authorized(request, write=False)) is not None:
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
    if (denied := _authorized(request, write=False)) is not None:
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
    if (denied := _authorized(request, write=False)) is not None:
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
    return JSON(openapi_document())


# --- OpenAPI -------------------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERR = _json(_ref("Error"), "error")


def openapi_document() -> dict[str, Any]:
    release_q = {
        "name": "release",
        "in": "query",
        "schema": {"type": "string"},
        "description": "NAMESPACE/NAME of the HelmRelease",
    }
    counts = {
        "type": "object",
        "properties": {
            k: {"type": "integer"} for k in ("passed", "failed", "error", "skipped", "total")
        },
    }
    summary = {
        "type": "object",
        "required": ["id", "release", "revision", "trigger", "verdict", "passed"],
        "properties": {
            "id": {"type": "string"},
            "jobId": {"type": ["integer", "null"]},
            "release": {"type": "string", "example": "apps/podinfo"},
            "revision": {"type": "string", "example": "6.6.1"},
            "trigger": {
                "type": "string",
                "enum": ["webhook", "watch", "schedule", "manual", "flagger"],
            },
            "verdict": {"type": "string", "enum": ["passed", "failed", "error"]},
            "passed": {"type": "boolean"},
            "startedAt": {"type": "number", "description": "epoch seconds"},
            "finishedAt": {"type": "number"},
            "duration": {"type": "number"},
            "counts": counts,
            "message": {"type": "string"},
        },
    }
    list_of = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": _ref("RunSummary")}},
    }
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "smokegate server",
            "version": __version__,
            "description": "Post-deploy smoke tests for Flux HelmReleases: triggers, history,"
            " gates.",
        },
        "paths": {
            "/hooks/flux": {
                "post": {
                    "summary": "Flux notification-controller webhook (generic, generic-hmac)",
                    "parameters": [
                        {
                            "name": "X-Signature",
                            "in": "header",
                            "schema": {"type": "string"},
                            "description": "sha256=<hex HMAC of the raw body>; required when "
                            "webhook secrets are configured",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("FluxEvent")}},
                    },
                    "responses": {
                        "202": _json(
                            _ref("Queued"), "queued (or a duplicate of a queued/done job)"
                        ),
                        "200": _json(
                            {"type": "object"},
                            "ignored: not a HelmRelease, another reason, no suites",
                        ),
                        "400": _ERR,
                        "401": _ERR,
                        "413": _ERR,
                        "422": _ERR,
                    },
                }
            },
            "/api/v1/runs": {
                "get": {
                    "summary": "Runs, newest first",
                    "parameters": [
                        release_q,
                        {"name": "revision", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "default": 50},
                        },
                    ],
                    "responses": {"200": _json(list_of, "runs")},
                },
                "post": {
                    "summary": "Ask for a run (a re-run if the revision was tested)",
                    "security": bearer,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["release"],
                                    "properties": {
                                        "release": {"type": "string"},
                                        "revision": {"type": "string"},
                                        "suites": {"type": "array", "items": {"type": "string"}},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": _json({"type": "object"}, "queued"),
                        "401": _ERR,
                        "403": _ERR,
                        "422": _ERR,
                    },
                },
            },
            "/api/v1/runs/{run_id}": {
                "get": {
                    "summary": "One run with its full report; ?format=json|junit downloads it",
                    "parameters": [
                        {
                            "name": "run_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "format",
                            "in": "query",
                            "schema": {"type": "string", "enum": ["json", "junit"]},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "the run",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "allOf": [
                                            _ref("RunSummary"),
                                            {
                                                "type": "object",
                                                "properties": {
                                                    "report": {
                                                        "type": "object",
                                                        "description": "smokegate.io/report/v1",
                                                    }
                                                },
                                            },
                                        ]
                                    }
                                },
                                "application/xml": {"schema": {"type": "string"}},
                            },
                        },
                        "404": _ERR,
                    },
                }
            },
            "/api/v1/jobs/{job_id}": {
                "get": {
                    "summary": "A queued job's state (and its run once done)",
                    "parameters": [
                        {
                            "name": "job_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        }
                    ],
                    "responses": {"200": _json({"type": "object"}, "the job"), "404": _ERR},
                }
            },
            "/api/v1/releases": {
                "get": {
                    "summary": "The latest verdict of every release and revision",
                    "responses": {"200": _json(list_of, "latest run per (release, revision)")},
                }
            },
            "/gates/flagger": {
                "post": {
                    "summary": "Flagger webhook: run (once per checksum) or look up the verdict",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("FlaggerPayload")}},
                    },
                    "responses": {
                        "200": {"description": "passed"},
                        "412": {"description": "failed: the summary"},
                        "503": {"description": "still running: Flagger retries"},
                        "404": {"description": "no suites map to this canary"},
                        "400": _ERR,
                    },
                }
            },
            "/gates/argo": {
                "get": {
                    "summary": "Argo Rollouts web metric: successCondition: result.passed == true",
                    "parameters": [
                        {**release_q, "required": True},
                        {"name": "revision", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": _json(_ref("GateVerdict"), "latest verdict"),
                        "400": _ERR,
                        "404": _ERR,
                    },
                }
            },
            "/api/v1/status": {
                "get": {
                    "summary": "This replica: worker id, leader or not, running jobs, queue",
                    "responses": {"200": _json({"type": "object"}, "status")},
                }
            },
            "/healthz": {
                "get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness (store reachable)",
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "not ready"},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "text exposition format"}},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI"}},
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
                "RunSummary": summary,
                "Queued": {
                    "type": "object",
                    "properties": {
                        "queued": {"type": "boolean"},
                        "duplicate": {"type": "boolean"},
                        "jobId": {"type": "integer"},
                        "release": {"type": "string"},
                        "revision": {"type": "string"},
                    },
                },
                "FluxEvent": {
                    "type": "object",
                    "required": ["involvedObject"],
                    "properties": {
                        "involvedObject": {
                            "type": "object",
                            "properties": {
                                k: {"type": "string"}
                                for k in (
                                    "kind",
                                    "namespace",
                                    "name",
                                    "uid",
                                    "apiVersion",
                                    "resourceVersion",
                                )
                            },
                        },
                        "severity": {"type": "string", "enum": ["trace", "info", "error"]},
                        "timestamp": {"type": "string"},
                        "message": {"type": "string"},
                        "reason": {"type": "string"},
                        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                        "reportingController": {"type": "string"},
                        "reportingInstance": {"type": "string"},
                    },
                },
                "FlaggerPayload": {
                    "type": "object",
                    "required": ["name", "namespace"],
                    "properties": {
                        "name": {"type": "string"},
                        "namespace": {"type": "string"},
                        "phase": {"type": "string"},
                        "checksum": {"type": "string"},
                        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
                "GateVerdict": {
                    "type": "object",
                    "properties": {
                        "passed": {"type": "boolean"},
                        "verdict": {"type": "string"},
                        "release": {"type": "string"},
                        "revision": {"type": "string"},
                        "runId": {"type": "string"},
                        "counts": counts,
                        "finishedAt": {"type": "number"},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    }
