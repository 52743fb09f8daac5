"""What every route shares: JSON responses (orjson), error bodies, the store-unavailable answer,
release-name validation, and the bearer-token check of the API and dashboard."""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from smokegate.server.state import state_of

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


def authorized(request: Request, *, write: bool) -> Response | None:
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


def client_address(request: Request) -> str:
    return request.client.host if request.client else "?"
