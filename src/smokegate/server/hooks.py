"""Flux notification-controller webhooks (Provider types ``generic`` and ``generic-hmac``).

The body is a serialized ``eventv1.Event`` (fluxcd/pkg ``apis/event/v1beta1``)::

    {"involvedObject": {"kind": "HelmRelease", "namespace": "apps", "name": "podinfo", …},
     "severity": "info", "timestamp": "…", "message": "…", "reason": "UpgradeSucceeded",
     "metadata": {"revision": "6.6.1", …}, "reportingController": "helm-controller", …}

* ``generic-hmac`` signs it: ``X-Signature: sha256=<hex(HMAC-SHA256(token, body))>``; Flux's
  own verifier example also accepts sha224/sha384/sha512, so this one does. The HMAC is
  computed over the *raw* body (re-serialising the JSON would change the bytes) and compared
  with ``hmac.compare_digest`` (constant time).
* The revision is ``metadata.revision`` (notification-controller v1.5+, which strips the
  involved object's group prefix) or ``metadata["helm.toolkit.fluxcd.io/revision"]`` (older
  controllers forward keys prefixed): both are accepted.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from smokegate.core.secrets import Secret

HELM_GROUP = "helm.toolkit.fluxcd.io"
_ALGORITHMS = {
    "sha224": hashlib.sha224,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}


class HookError(Exception):
    """A request to refuse: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def sign(body: bytes, secret: str, algorithm: str = "sha256") -> str:
    """The ``X-Signature`` value notification-controller sends for ``body``."""
    digest = hmac.new(secret.encode(), body, _ALGORITHMS[algorithm]).hexdigest()
    return f"{algorithm}={digest}"


def verify_signature(body: bytes, header: str | None, secrets: Iterable[Secret]) -> None:
    """Raise ``HookError(401)`` unless ``header`` is a valid signature of ``body`` under one of
    ``secrets``. The reason given never includes the expected value."""
    if not header:
        raise HookError(401, "missing X-Signature header (Provider type generic-hmac)")
    algorithm, sep, given = header.strip().partition("=")
    digest = _ALGORITHMS.get(algorithm.lower())
    if not sep or digest is None:
        raise HookError(401, "X-Signature must be <sha224|sha256|sha384|sha512>=<hex>")
    given_bytes = given.strip().lower().encode()
    ok = False
    for secret in secrets:
        expected = hmac.new(secret.reveal().encode(), body, digest).hexdigest().encode()
        # No early exit: every key is tried, so timing does not tell which one matched.
        ok |= hmac.compare_digest(expected, given_bytes)
    if not ok:
        raise HookError(401, "X-Signature does not match the body")


@dataclass(slots=True)
class FluxEvent:
    kind: str
    namespace: str
    name: str
    reason: str
    revision: str | None
    severity: str = ""
    message: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    reporting_controller: str = ""

    @property
    def release(self) -> str:
        return f"{self.namespace}/{self.name}"

    def summary(self) -> dict[str, Any]:
        """What the job remembers about the event (shown with the run)."""
        return {
            "reason": self.reason,
            "severity": self.severity,
            "message": self.message[:500],
            "reportingController": self.reporting_controller,
            "metadata": {k: v for k, v in self.metadata.items() if k != "token"},
        }


def parse_event(body: bytes) -> FluxEvent:
    """Decode and check an event body; ``HookError(400)`` says what is wrong."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HookError(400, f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HookError(400, "body must be a JSON object (a Flux event)")
    obj = data.get("involvedObject")
    if not isinstance(obj, dict):
        raise HookError(400, "missing involvedObject: not a Flux event")
    kind, namespace, name = (obj.get(k) for k in ("kind", "namespace", "name"))
    if not all(isinstance(v, str) and v for v in (kind, namespace, name)):
        raise HookError(400, "involvedObject needs kind, namespace and name")
    raw_meta = data.get("metadata") or {}
    if not isinstance(raw_meta, dict):
        raise HookError(400, "metadata must be an object")
    metadata = {str(k): str(v) for k, v in raw_meta.items()}
    revision = metadata.get("revision") or metadata.get(f"{HELM_GROUP}/revision") or None
    return FluxEvent(
        kind=str(kind),
        namespace=str(namespace),
        name=str(name),
        reason=str(data.get("reason") or ""),
        revision=revision,
        severity=str(data.get("severity") or ""),
        message=str(data.get("message") or ""),
        metadata=metadata,
        reporting_controller=str(data.get("reportingController") or ""),
    )


def check_content_type(header: str | None) -> None:
    """``HookError(415)`` unless the body is declared JSON, as notification-controller always
    declares it. Why refuse the rest: a browser can send a cross-site ``text/plain`` (or
    untyped) POST without a CORS preflight; requiring ``application/json`` makes it preflight,
    which this server never answers, so a web page cannot post events for a user inside the
    cluster network (it matters most for an unsigned ``generic`` Provider)."""
    media = (header or "").partition(";")[0].strip().lower()
    if media != "application/json":
        shown = media[:60] or "none"
        raise HookError(415, f"Content-Type must be application/json (got {shown})")


async def read_body(receive_chunks: Any, content_length: str | None, limit: int) -> bytes:
    """The whole body, or ``HookError(413)`` as soon as it exceeds ``limit`` bytes (the
    declared length is checked first, so an oversized upload is refused before it is read)."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise HookError(400, "invalid Content-Length") from None
        if declared > limit:
            raise HookError(413, f"body of {declared} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in receive_chunks:
        size += len(chunk)
        if size > limit:
            raise HookError(413, f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)
