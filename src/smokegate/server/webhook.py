"""``POST /hooks/flux``: Flux notification-controller events (HMAC-signed) become jobs."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from smokegate.server.hooks import (
    HookError,
    check_content_type,
    parse_event,
    read_body,
    verify_signature,
)
from smokegate.server.http import JSON, client_address, error, store_unavailable, valid_release
from smokegate.server.state import ServerState, state_of

log = logging.getLogger("smokegate.server")


async def flux_hook(request: Request) -> Response:
    state = state_of(request)
    cfg = state.config.webhooks.flux
    try:
        check_content_type(request.headers.get("content-type"))
        body = await _receive(request, cfg.max_body_bytes, cfg.body_timeout)
        if state.webhook_secrets:
            verify_signature(body, request.headers.get("x-signature"), state.webhook_secrets)
        event = parse_event(body)
    except HookError as exc:
        state.metrics.webhooks_total.labels(outcome="rejected").inc()
        # The client's address and the reason, never the body or the expected signature.
        log.info(
            "webhook refused (%s) from %s: %s", exc.status, client_address(request), exc.message
        )
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


async def _receive(request: Request, limit: int, timeout: float) -> bytes:
    """The body within ``timeout`` seconds (408 otherwise); a client gone mid-body is a 400
    for the log (nobody reads the answer), not a traceback."""
    try:
        async with asyncio.timeout(timeout):
            return await read_body(request.stream(), request.headers.get("content-length"), limit)
    except TimeoutError:
        raise HookError(408, f"body not received within {timeout:g}s") from None
    except ClientDisconnect:
        raise HookError(400, "client disconnected before sending the whole body") from None


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
