"""The one place where failures become Kubernetes ``Status`` bodies (API.md §12).

Domain errors carry their own code; framework errors (unknown route, wrong method, body too
large, validation) are translated; database outages become 503; anything else is a logged 500
whose answer carries no trace, SQL or constraint name.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from wegent.errors import ERRORS_BY_CODE, ApiError, Cause, Invalid, ServiceUnavailable

log = logging.getLogger("wegent.errors")


class _RateLimitedLog:
    """At most one line a second: an outage fails every request, the log should say so once."""

    def __init__(self, logger: logging.Logger, interval_s: float = 1.0) -> None:
        self._logger = logger
        self._interval = interval_s
        self._last = 0.0
        self._skipped = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            self._skipped += 1
            return
        if self._skipped:
            message = f"{message} (and {self._skipped} more since the last line)"
        self._last, self._skipped = now, 0
        self._logger.warning(message, *args)


_outage_log = _RateLimitedLog(log)


class StatusDetails(msgspec.Struct, omit_defaults=True):
    """``details`` of a Status: what object the failure concerns and why, field by field."""

    name: str | None = None
    kind: str | None = None
    causes: list[Cause] = []


class Status(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The Kubernetes ``Status`` body, plus ``detail`` for FastAPI-style clients."""

    apiVersion: str
    kind: str
    status: str
    code: int
    reason: str
    message: str
    detail: str
    details: StatusDetails | None = None


def status_body(error: ApiError) -> bytes:
    """The Status body of ``error``, encoded."""
    details = None
    if error.kind or error.name or error.causes:
        details = StatusDetails(name=error.name, kind=error.kind, causes=error.causes)
    body = Status(
        apiVersion="v1",
        kind="Status",
        status="Failure",
        code=error.code,
        reason=error.reason,
        message=error.message,
        detail=error.message,
        details=details,
    )
    return msgspec.json.encode(body)


def status_response(error: ApiError) -> Response[bytes]:
    """Encode ``error`` as a Status answer with its headers."""
    return Response(
        content=status_body(error),
        status_code=error.code,
        media_type="application/json",
        headers=error.headers,
    )


def api_error_handler(_: Request[Any, Any, Any], exc: ApiError) -> Response[bytes]:
    return status_response(exc)


_FRAMEWORK_MESSAGES = {
    404: "the requested path was not found",
    405: "the method is not allowed on this path",
    413: "the request body is too large",
    415: "the content type is not supported",
}


def framework_error(code: int) -> ApiError:
    """The answer Litestar's own refusal with this code gets (for paths that bypass it)."""
    return ERRORS_BY_CODE[code](_FRAMEWORK_MESSAGES[code])


def http_error_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """Litestar's own errors: route misses, wrong methods, body limits, malformed input."""
    cls = ERRORS_BY_CODE.get(exc.status_code)
    if cls is None:
        return internal_error_handler(_, exc)
    message = _FRAMEWORK_MESSAGES.get(exc.status_code) or _safe_detail(exc)
    causes = [
        Cause(
            reason="FieldValueInvalid", message=str(item.get("message", "")), field=item.get("key")
        )
        for item in (exc.extra if isinstance(exc.extra, list) else [])
        if isinstance(item, dict)
    ]
    error = cls(message, causes=causes)
    if exc.headers:
        error.headers.update({k: v for k, v in exc.headers.items() if k.lower() == "allow"})
    return status_response(error)


def error_for(exc: Exception) -> ApiError:
    """What an unexpected exception means for the client: the database being unreachable or too
    slow is a 503, a value it cannot store a 422, anything else a logged 500."""
    if isinstance(exc, ApiError):
        return exc
    if is_connection_error(exc):
        _outage_log.warning("database unavailable: %s", type(exc).__name__)
        return ServiceUnavailable("the database is unavailable; retry later", retry_after=1)
    if isinstance(exc, asyncpg.DataError):  # e.g. a NUL character, which PostgreSQL refuses
        log.warning("value refused by the database: %s", type(exc).__name__)
        return Invalid("the request holds a value that cannot be stored (such as a NUL character)")
    if isinstance(exc, asyncpg.QueryCanceledError):
        _outage_log.warning("statement timeout: %s", type(exc).__name__)
        return ServiceUnavailable("the request took too long; retry later", retry_after=1)
    log.error("unhandled error", exc_info=exc)
    return ApiError("an internal error occurred")


def internal_error_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Anything unexpected: logged with its trace here, answered without it."""
    return status_response(error_for(exc))


def is_connection_error(exc: BaseException) -> bool:
    """True for failures that mean the database cannot be reached right now.

    ``InternalClientError`` belongs here: a pooled connection that PostgreSQL has just killed
    (shutdown, ``pg_terminate_backend``) can be handed out between the server's FATAL message
    and the socket closing, and asyncpg then fails the next operation with it.
    """
    return isinstance(
        exc,
        OSError
        | TimeoutError
        | asyncpg.InterfaceError
        | asyncpg.InternalClientError
        | asyncpg.PostgresConnectionError
        | asyncpg.CannotConnectNowError
        | asyncpg.AdminShutdownError,
    )


def _safe_detail(exc: HTTPException) -> str:
    detail = exc.detail if isinstance(exc.detail, str) else ""
    return detail or "the request could not be processed"


EXCEPTION_HANDLERS = {
    ApiError: api_error_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}
