"""Cross-origin requests (closed unless ``WEGENT_CORS_ORIGINS`` names origins), answered in
the front layer so that every answer gets the same headers whichever door produced it. The
rules (which origins, methods and headers) are Litestar's ``CORSConfig``; this only applies
them: a preflight is answered at once, other requests from an allowed origin get its headers.
"""

from __future__ import annotations

from litestar.config.cors import CORSConfig
from litestar.constants import DEFAULT_ALLOWED_CORS_HEADERS
from litestar.types import Message, Send

from wegent.api.answers import Answer, Headers


class Cors:
    def __init__(self, origins: tuple[str, ...]) -> None:
        self.config = CORSConfig(
            allow_origins=list(origins),
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
            expose_headers=["Warning", "Retry-After", "X-Request-ID"],
        )
        self._simple = [
            (k.lower().encode(), v.encode()) for k, v in self.config.simple_headers.items()
        ]

    def preflight(self, origin: str, method: str | None, headers: str | None) -> Answer:
        """The answer to ``OPTIONS`` with ``Access-Control-Request-Method``: 204 with what is
        allowed, or 400 naming what is not."""
        config = self.config
        failures = []
        if not config.is_allow_all_methods and method and method not in config.allow_methods:
            failures.append("method")
        answered = dict(config.preflight_headers)
        if not config.is_origin_allowed(origin):
            failures.append("Origin")
        elif answered.get("Access-Control-Allow-Origin") != "*":
            answered["Access-Control-Allow-Origin"] = origin
        allowed = {h.lower() for h in config.allow_headers} | {
            h.lower() for h in DEFAULT_ALLOWED_CORS_HEADERS
        }
        requested = [h.strip() for h in (headers or "").split(",") if h.strip()]
        if any(h.lower() not in allowed for h in requested):
            failures.append("headers")
        if failures:
            text = f"Disallowed CORS {', '.join(failures)}".encode()
            return Answer(400, text, [(b"content-type", b"text/plain; charset=utf-8")])
        return Answer(204, b"", [(k.lower().encode(), v.encode()) for k, v in answered.items()])

    def wrap(self, send: Send, origin: str) -> Send:
        """``send`` that adds the CORS headers of an allowed origin to the answer."""
        if not self.config.is_origin_allowed(origin):
            return send
        added: Headers = [
            *self._simple,
            (b"access-control-allow-origin", origin.encode()),
            (b"vary", b"Origin"),
        ]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *added]
            await send(message)

        return send_with_cors
