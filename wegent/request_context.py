"""The request being handled, as a context variable: its id and who sent it (API.md §18).

The front layer (``wegent.api.observe``) sets it for every request; the guard names the caller
in it; log records read its id (:class:`RequestIdFilter`). Below every other layer, so any
module may read it.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = b"x-request-id"
_VALID_ID = re.compile(r"[!-~]{1,128}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNROUTED = "(unrouted)"  # answered before any route was matched: a refusal, a 404


class Seen:
    """One request as the front layer saw it."""

    __slots__ = ("id", "method", "path", "route", "started", "token", "user")

    def __init__(self, request_id: str, method: str, path: str) -> None:
        self.id = request_id
        self.method = method if method in METHODS else "OTHER"
        self.path = path
        self.route = UNROUTED
        self.user: str | None = None
        self.token: str | None = None
        self.started = time.perf_counter()


CURRENT: ContextVar[Seen | None] = ContextVar("wegent_request", default=None)


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's request id when it is a valid one, else a new one."""
    for key, value in headers:
        if key == REQUEST_ID_HEADER:
            given = bytes(value).decode("latin-1")
            if _VALID_ID.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    seen = CURRENT.get()
    return None if seen is None else seen.id


def note_caller(username: str, token: str | None) -> None:
    """The guard names the authenticated caller, for the access log."""
    seen = CURRENT.get()
    if seen is not None:
        seen.user, seen.token = username, token


class RequestIdFilter(logging.Filter):
    """Gives every log record ``request_id``: the id of the request being handled, or "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        seen = CURRENT.get()
        record.request_id = seen.id if seen is not None else "-"
        return True
