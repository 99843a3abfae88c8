"""``OPTIONS`` answers list every method their path serves.

Litestar answers ``OPTIONS`` with the methods of the route as it stood when the path's first
handler was registered: on ``/api/v1/namespaces/{NS}/skills`` (list and create are two
handlers) it says ``Allow: GET, OPTIONS`` while its 405 on the same path says ``GET, OPTIONS,
POST``. This middleware puts the path's full list in the ``Allow`` of every ``OPTIONS``
answer; other requests pass straight through.
"""

from __future__ import annotations

from typing import Any

from litestar.enums import ScopeType
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send


def allow_every_method(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: ``Allow`` on ``OPTIONS`` answers names every method of the path."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "OPTIONS":
            await app(scope, receive, send)
            return
        allow = methods_of(scope)

        async def send_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and allow:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                message["headers"] = [*headers, (b"allow", allow)]
            await send(message)

        await app(scope, receive, send_allow)

    return middleware


def methods_of(scope: Scope) -> bytes | None:
    """``GET, OPTIONS, POST``: the methods of the route that serves this request, if known."""
    paths = getattr(scope.get("route_handler"), "paths", ())
    routes: Any = getattr(scope.get("app"), "routes", ())
    for route in routes:
        if isinstance(route, HTTPRoute) and route.path in paths:
            return ", ".join(sorted(route.methods)).encode()
    return None
