"""``smokegate trigger``'s conversation with a running server: POST /api/v1/runs, then, when
asked, poll the job until its run has a verdict. Uses the built-in HTTP client only (no server
extra needed on the machine that triggers)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smokegate.core.errors import ClusterError


@dataclass(slots=True)
class TriggerResult:
    job_id: str
    done: bool = False
    """False: no verdict within the timeout (or not waited for)."""
    run: dict[str, Any] | None = None
    """The run's summary (``GET /api/v1/runs/{id}``); None when nothing maps to the release."""


async def trigger_run(
    server: str,
    token: str,
    body: dict[str, Any],
    *,
    wait: bool,
    timeout: float,
    on_queued: Callable[[str], None] = lambda job_id: None,
) -> TriggerResult:
    """Ask ``server`` to run ``body`` (``{"release": "ns/name", "revision", "suites"}``).
    Unreachable or refused: ``ClusterError`` (exit 4)."""
    from smokegate.httpclient import HttpClient, HttpError

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def call(method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        data = json.dumps(payload).encode() if payload is not None else None
        try:
            resp = await http.request(method, server + path, headers=headers, body=data, timeout=30)
        except (HttpError, OSError) as exc:
            raise ClusterError(f"cannot reach the smokegate server at {server}: {exc}") from None
        try:
            return resp.status, json.loads(resp.text() or "null")
        except ValueError:
            return resp.status, {"error": resp.text()[:300]}

    async with HttpClient(max_connections_per_origin=1) as http:
        status, answer = await call("POST", "/api/v1/runs", body)
        if status != 202:
            message = (answer or {}).get("error") if isinstance(answer, dict) else answer
            raise ClusterError(f"server refused the run (HTTP {status}): {message}")
        result = TriggerResult(answer["jobId"])
        on_queued(result.job_id)
        if not wait:
            return result
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, job = await call("GET", f"/api/v1/jobs/{result.job_id}")
            if status == 200 and job.get("state") == "done":
                result.done = True
                if job.get("runId"):
                    _, result.run = await call("GET", f"/api/v1/runs/{job['runId']}")
                return result
            await asyncio.sleep(1.0)
    return result
