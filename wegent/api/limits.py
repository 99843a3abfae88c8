"""Load shedding: past a configured number of requests in flight, answer 503 at once.

Under overload every request is then answered — served, or refused fast with a Status body and
``Retry-After`` — instead of queueing without bound; the probes are never refused.

A refusal also closes the connection. A client that ignores ``Retry-After`` and sends again at
once (a load generator, a naive retry loop) must then reconnect first; on keep-alive it could
refuse-and-resend tens of thousands of times a second and leave the event loop no time for the
requests it admitted (measured by ``benchmarks/overload.py``: goodput at 512 connections went
from ~760 to 9,300-11,600 requests a second, ``/healthz`` from 0.38 s to 0.15 s at worst).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from wegent.api.answers import JSON, Answer
from wegent.api.errors import Status

EXEMPT = frozenset({"/healthz", "/readyz"})
_BUSY = msgspec.json.encode(
    Status(
        apiVersion="v1",
        kind="Status",
        status="Failure",
        code=503,
        reason="ServiceUnavailable",
        message="the server is busy; retry later",
        detail="the server is busy; retry later",
    )
)


class InFlight:
    """Counts requests in flight; ``enter`` refuses one past the limit (0: no limit)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def enter(self, path: str) -> bool:
        if path in EXEMPT:
            return False
        if self.limit and self.count >= self.limit:
            raise Busy
        self.count += 1
        return True

    def leaving(self) -> Callable[[], None]:
        """What stops counting one entered request: once, however often it is called (a
        stream calls it when its head is sent, the front layer again when it ends)."""
        left = False

        def leave() -> None:
            nonlocal left
            if not left:
                left = True
                self.count -= 1

        return leave


class Busy(Exception):
    """The limit is reached; answer with :data:`BUSY`."""


#: The refusal: 503 with ``Retry-After``, and the connection closes (see the module docstring).
BUSY = Answer(503, _BUSY, [JSON, (b"retry-after", b"1"), (b"connection", b"close")])
