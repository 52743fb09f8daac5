"""Wait until Flux has reconciled a HelmRelease: ``generation == observedGeneration``,
``Ready=True``, not ``Reconciling``, at ``revision`` when one is asked for, and with Flux's Helm
tests finished when ``spec.test.enable`` (the rules: ``flux.helmrelease.evaluate``).

It is a watch (resourceVersion-based, resumed after the API server ends a stream or answers
410 Gone), not a polling loop; every change of the Ready message is reported through
``progress``. ``Stalled`` or a terminal ``Ready=False`` reason fails at once (``ReleaseFailed``);
so does the timeout (``GateTimeout``): both exit 3, with Flux's own reason and message. Used by
``gate`` and by ``smokegate serve`` before each run of a release.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from smokegate.core.durations import format_duration
from smokegate.core.errors import ClusterError, GateTimeout
from smokegate.flux.helmrelease import evaluate
from smokegate.kube.client import HELMRELEASE, KubeClient, KubeError

# The API server ends a watch after this long; lightkube resumes it from the last version.
WATCH_SERVER_TIMEOUT = 290

Progress = Callable[[str], None]


class ReleaseFailed(GateTimeout):
    """Flux reports a failure this revision will not recover from by waiting (exit 3)."""


async def wait_for_release(
    client: KubeClient,
    namespace: str,
    name: str,
    *,
    revision: str | None,
    timeout: float,
    progress: Progress,
    accept_test_failure: bool = True,
) -> dict[str, Any]:
    """The HelmRelease once Flux has reconciled it (see the module docstring). Raises
    ``ReleaseFailed``/``GateTimeout`` (exit 3) or ``ClusterError`` (no access)."""
    what = HELMRELEASE.describe(name, namespace)
    last = ["not read yet"]

    def check(hr: dict[str, Any] | None) -> dict[str, Any] | None:
        if hr is None:
            summary = "not found (yet): waiting for it to be created"
            terminal = False
        else:
            state = evaluate(hr, revision, accept_test_failure=accept_test_failure)
            if state.ready:
                progress(f"{what} is ready: {state.summary}")
                return hr
            summary, terminal = state.summary, state.terminal
        if terminal:
            raise ReleaseFailed(f"{what} failed: {summary}")
        if summary != last[0]:
            last[0] = summary
            progress(f"waiting for {what}: {summary}")
        return None

    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            # First read outside the retry loop: a wrong server, a bad token or a missing
            # permission is a configuration error to report now, not a reason to wait.
            hr = await _get(client, name, namespace, what)
            last[0] = "read, not ready yet"
            failures = 0
            while True:
                done = check(hr)
                if done is not None:
                    return done
                version = (hr or {}).get("metadata", {}).get("resourceVersion")
                stream = client.watch(
                    HELMRELEASE,
                    name,
                    namespace,
                    resource_version=version,
                    server_timeout=WATCH_SERVER_TIMEOUT,
                )
                try:
                    async with contextlib.aclosing(stream):
                        async for event, obj in stream:
                            failures = 0
                            done = check(None if event == "DELETED" else obj)
                            if done is not None:
                                return done
                except KubeError as exc:
                    if exc.code in (401, 403):
                        raise ClusterError(
                            f"{exc}: the gate needs get, list and watch on helmreleases"
                            f".helm.toolkit.fluxcd.io in namespace {namespace!r} (see docs/rbac.md)"
                        ) from None
                    # 410 Gone (version too old) or a dropped connection: re-read, watch again.
                    failures += 1
                    await asyncio.sleep(min(0.2 * 2**failures, 5.0))
                hr = await _get(client, name, namespace, what, transient_ok=True) or hr
    except TimeoutError:
        waited = format_duration(time.monotonic() - started)
        if last[0] == "not read yet":
            # The API server accepted the connection but never answered the first read: that
            # is an unreachable cluster (exit 4), not a release that never became ready (3).
            raise ClusterError(
                f"{what}: the Kubernetes API did not answer within {waited} (--timeout)"
            ) from None
        raise GateTimeout(f"{what} not ready after {waited} (--timeout): {last[0]}") from None


async def _get(
    client: KubeClient, name: str, namespace: str, what: str, *, transient_ok: bool = False
) -> dict[str, Any] | None:
    try:
        return await client.get_or_none(HELMRELEASE, name, namespace)
    except KubeError as exc:
        if transient_ok and exc.code not in (401, 403):
            return None
        hint = ""
        if exc.code in (401, 403):
            hint = f" (the gate needs get, list and watch on helmreleases in {namespace!r})"
        raise ClusterError(f"{exc}{hint}") from None
