"""Domain errors. Services raise them; ``wegent.api.errors`` turns them into ``Status`` bodies."""

from __future__ import annotations

import msgspec


class Cause(msgspec.Struct, omit_defaults=True):
    """One reason a request failed, with the field it concerns (Kubernetes ``StatusCause``)."""

    reason: str
    message: str
    field: str | None = None


class ApiError(Exception):
    """Base of every error the API answers with; ``code`` and ``reason`` follow API.md §12."""

    code = 500
    reason = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        name: str | None = None,
        causes: list[Cause] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.name = name
        self.causes = causes or []
        self.headers = headers or {}


class BadRequest(ApiError):
    code, reason = 400, "BadRequest"


class Unauthorized(ApiError):
    code, reason = 401, "Unauthorized"

    def __init__(self, message: str = "authentication required") -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    code, reason = 403, "Forbidden"


class NotFound(ApiError):
    code, reason = 404, "NotFound"


class MethodNotAllowed(ApiError):
    code, reason = 405, "MethodNotAllowed"


class AlreadyExists(ApiError):
    code, reason = 409, "AlreadyExists"


class Conflict(ApiError):
    code, reason = 409, "Conflict"


class RequestTimeout(ApiError):
    code, reason = 408, "RequestTimeout"


class Gone(ApiError):
    code, reason = 410, "Gone"


class Expired(Gone):
    """A version older than the history this server keeps (Kubernetes' 410 ``Expired``)."""

    reason = "Expired"


class RequestEntityTooLarge(ApiError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(ApiError):
    code, reason = 415, "UnsupportedMediaType"


class RequestHeaderFieldsTooLarge(ApiError):
    code, reason = 431, "RequestHeaderFieldsTooLarge"


class Invalid(ApiError):
    code, reason = 422, "Invalid"


class TooManyRequests(ApiError):
    code, reason = 429, "TooManyRequests"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})


class ServiceUnavailable(ApiError):
    code, reason = 503, "ServiceUnavailable"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        super().__init__(message, headers=headers)


ERRORS_BY_CODE: dict[int, type[ApiError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        RequestTimeout,
        Gone,
        RequestEntityTooLarge,
        UnsupportedMediaType,
        RequestHeaderFieldsTooLarge,
        Invalid,
        TooManyRequests,
        ServiceUnavailable,
    )
}


def namespace_not_found(name: str) -> NotFound:
    return NotFound(f'namespace "{name}" not found', kind="Namespace", name=name)


def invalid(kind: str | None, name: str | None, causes: list[Cause]) -> Invalid:
    """A 422 in Kubernetes' words: ``Bot "b1" is invalid: spec.ghostRef: …`` (several causes
    are listed in brackets)."""
    subject = f'{kind} "{name}" is invalid' if kind and name else "the object is invalid"
    parts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    if len(parts) == 1:
        subject = f"{subject}: {parts[0]}"
    elif parts:
        subject = f"{subject}: [{', '.join(parts)}]"
    return Invalid(subject, kind=kind, name=name, causes=causes)
