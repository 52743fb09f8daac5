"""``KubeError``: a failed API request, its message naming the resource and the reason the API
server gave (``secret apps/db: forbidden: User "…" cannot get resource "secrets" …``)."""

from __future__ import annotations


class KubeError(Exception):
    """A Kubernetes API request failed. ``str()`` names the resource and the reason."""

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def forbidden(self) -> bool:
        return self.code == 403

    @property
    def error_kind(self) -> str:
        """The check ``ErrorKind`` that fits (a report groups failures by it)."""
        from smokegate.core.outcome import ErrorKind

        return {
            403: ErrorKind.FORBIDDEN,
            404: ErrorKind.NOT_FOUND,
            401: ErrorKind.AUTH,
            None: ErrorKind.CONNECTION_REFUSED,
        }.get(self.code, ErrorKind.PROTOCOL)


def api_error(exc: BaseException, what: str) -> KubeError:
    """Turn a lightkube/httpx error into a ``KubeError`` about ``what`` (``secret apps/db``)."""
    from lightkube import ApiError

    if isinstance(exc, ApiError):
        status = exc.status
        code = getattr(status, "code", None) or exc.response.status_code
        message = (getattr(status, "message", None) or "").strip()
        reason = getattr(status, "reason", None) or ""
        if code == 404:
            return KubeError(f"{what}: not found", code=404, reason=reason)
        if code == 403:
            # The apiserver says: `secrets "db" is forbidden: User "…" cannot get resource …`;
            # the part after "is forbidden: " names the user and the missing permission.
            _, sep, detail = message.partition(" is forbidden: ")
            return KubeError(f"{what}: forbidden: {detail if sep else message}", code=403)
        if code == 401:
            return KubeError(
                f"{what}: unauthorized: the API server rejected the credentials "
                "(expired token? wrong kubeconfig user?)",
                code=401,
            )
        return KubeError(f"{what}: {message or reason} (HTTP {code})", code=code, reason=reason)
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None):
        # A watch stream's error status arrives before its (unread) body: only the code is known.
        code = response.status_code
        text = {401: "unauthorized", 403: "forbidden", 404: "not found"}.get(code, f"HTTP {code}")
        return KubeError(f"{what}: {text}", code=code)
    return KubeError(f"{what}: cannot reach the Kubernetes API: {_transport_text(exc)}")


def _transport_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    # httpx wraps OSError texts like "[Errno 111] Connection refused": keep them short.
    return text.split("\n")[0]
