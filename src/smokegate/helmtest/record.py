"""Write test outcomes back into Helm's release record, as ``helm test`` does, so that
``helm status`` (and ``helm test`` output) shows them. Opt-in: ``helm-test --record``.

Why opt-in: it is a write to Helm's own storage (the ``sh.helm.release.v1.<name>.v<N>`` Secret),
which needs ``update`` on Secrets in the storage namespace, a permission a smoke-test identity
should not need to hold; smokegate's reports remain the primary record.

How it stays safe when enabled:

* only ``hooks[].last_run`` of hooks this run executed to a verdict is changed (``started_at``,
  ``completed_at``, ``phase`` ``Succeeded``/``Failed``, the shape Helm writes); every other
  field of the release JSON is written back exactly as read, and the Secret keeps its labels,
  type and name (tests do not create a revision in Helm either);
* the update is a PUT carrying the ``resourceVersion`` just read: if Helm or Flux wrote the
  Secret in between (an upgrade marking it ``superseded``), the API server refuses it (409) and
  the change is re-applied to the fresh copy, so their write is never lost;
* Flux ignores test hooks when it digests a release (``IgnoreHookTestEvents``), so this does not
  make helm-controller upgrade or remediate anything.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from smokegate.helm.release import ReleaseDecodeError, decode_release, encode_release
from smokegate.helmtest.objects import LastRun
from smokegate.helmtest.target import LoadedRelease
from smokegate.kube.client import SECRET, KubeClient, KubeError

ATTEMPTS = 5


def helm_time(epoch: float) -> str:
    """Go's ``time.Time`` JSON form (RFC 3339 with fractional seconds, UTC)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def apply_last_runs(release: dict[str, Any], runs: Mapping[str, LastRun]) -> int:
    """Set ``last_run`` of the named hooks in a decoded release; returns how many matched."""
    changed = 0
    for hook in release.get("hooks") or []:
        run = runs.get(str(hook.get("name"))) if isinstance(hook, dict) else None
        if run is None:
            continue
        last_run: dict[str, Any] = {"started_at": helm_time(run.started_at), "phase": run.phase}
        if run.completed_at is not None:
            last_run["completed_at"] = helm_time(run.completed_at)
        hook["last_run"] = last_run
        changed += 1
    return changed


async def record_last_runs(
    kube: KubeClient, loaded: LoadedRelease, runs: Mapping[str, LastRun]
) -> str:
    """Record ``runs`` in the release Secret the tests ran against. Returns a note for the user
    (what was recorded, or why not); never raises for an API problem."""
    if not runs:
        return "nothing to record: no test ran to a verdict"
    ns, name = loaded.target.storage_namespace, loaded.secret_name
    what = f"{loaded.describe} (secret {ns}/{name})"
    for _ in range(ATTEMPTS):
        try:
            secret = await kube.get(SECRET, name, ns)
        except KubeError as exc:
            return f"warning: could not record the results in {what}: {exc}"
        data = secret.get("data") or {}
        try:
            stored = base64.b64decode(data.get("release") or "")
            compressed = base64.b64decode(stored)[:2] == b"\x1f\x8b"
            release = decode_release(stored)
        except (ReleaseDecodeError, ValueError) as exc:
            return f"warning: could not record the results in {what}: {exc}"
        if not apply_last_runs(release, runs):
            return f"warning: {what} has none of the tests that ran: nothing recorded"
        payload = encode_release(release, compress=compressed)
        secret["data"] = {**data, "release": base64.b64encode(payload.encode()).decode()}
        try:
            await kube.replace(SECRET, secret)
        except KubeError as exc:
            if exc.code == 409:
                continue  # written by someone else since we read it: apply to the new copy
            hint = " (needs update on secrets there)" if exc.forbidden else ""
            return f"warning: could not record the results in {what}: {exc}{hint}"
        n = len(runs)
        return (
            f"recorded {n} test result{'s' if n != 1 else ''} in {what}: `helm status` shows them"
        )
    return f"warning: could not record the results in {what}: it kept changing (conflicts)"
