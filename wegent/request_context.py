"""The request being handled, as a context variable: its id and who sent it (API.md §18).

The front layer (``wegent.api.observe``) sets it for every request; the guard names the caller
in it; log records read its id (:class:`RequestIdFilter`). Below every other layer, so any
module may read it.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time
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


class _Ids:
    """New request ids: 16 random hex digits per process, then a 16-digit counter.

    A ``uuid4`` per request cost 4 µs of a 50 µs GET (a ``getrandom`` system call each); ids
    only need to be unique, not secret. A forked child draws its own prefix."""

    def __init__(self) -> None:
        self.renew()
        os.register_at_fork(after_in_child=self.renew)

    def renew(self) -> None:
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count()

    def new(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


_ids = _Ids()


def request_id_of(given: str | None) -> str:
    """The client's request id (the header's value) when it is a valid one, else a new one."""
    if given is not None and _VALID_ID.fullmatch(given):
        return given
    return _ids.new()


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
