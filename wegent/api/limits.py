"""Load shedding: past a configured number of requests in flight, answer 503 at once.

Under overload every request is then answered — served, or refused fast with a Status body and
``Retry-After`` — instead of queueing without bound; the probes are never refused.
"""

from __future__ import annotations

import msgspec
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

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


def in_flight_limit(limit: int) -> type[_Limiter] | None:
    """A middleware class bound to ``limit`` (0 disables it)."""
    if limit <= 0:
        return None
    return type("InFlightLimit", (_Limiter,), {"limit": limit})


class _Limiter:
    limit = 0

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await _refuse(send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def _refuse(send: Send) -> None:
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 503,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(_BUSY)).encode()),
            (b"retry-after", b"1"),
        ],
    }
    body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": _BUSY, "more_body": False}
    await send(start)
    await send(body)
