"""Helm release Secrets built the way Helm writes them, for tests that need a release record
without running `helm install` (discovery, serve)."""

from __future__ import annotations

import base64
from typing import Any

from smokegate.helm.release import encode_release


def release_secret(
    release: str,
    ns: str,
    version: int,
    status: str,
    manifest: str,
    *,
    compress: bool = True,
    chart: str = "charts",
    storage_namespace: str | None = None,
) -> dict[str, Any]:
    """A release Secret (``data.release`` = base64 of Helm's base64(gzip(json)) payload).

    ``ns`` is the release's namespace; the Secret's own (Helm's storage namespace) is set only
    when ``storage_namespace`` is given, else it is wherever the test applies it."""
    record = {
        "name": release,
        "namespace": ns,
        "version": version,
        "info": {"status": status},
        "chart": {"metadata": {"name": chart, "version": f"1.{version}.0"}},
        "config": {},
        "manifest": manifest,
        "hooks": [],
    }
    payload = encode_release(record, compress=compress)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"sh.helm.release.v1.{release}.v{version}",
            **({"namespace": storage_namespace} if storage_namespace else {}),
            "labels": {"owner": "helm", "name": release, "status": status, "version": str(version)},
        },
        "data": {"release": base64.b64encode(payload.encode()).decode()},
    }
