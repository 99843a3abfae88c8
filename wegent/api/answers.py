"""Answers of the resource API as both doors send them: status, body and headers."""

from __future__ import annotations

from typing import Any, NamedTuple

from litestar.types import Send

from wegent.api.errors import error_for, status_body

Headers = list[tuple[bytes, bytes]]
JSON = (b"content-type", b"application/json")
#: At most this many ``Warning`` headers, then one that says how many more (API.md §13):
#: thousands of them make an answer that clients fail to read, and they retry a write that
#: succeeded.
MAX_WARNINGS = 20


class Answer(NamedTuple):
    status: int
    body: bytes
    headers: Headers


def answer(status: int, body: bytes, warnings: list[str] | None = None) -> Answer:
    """A JSON answer, with a ``Warning`` header per dropped unknown field (capped)."""
    headers = [JSON]
    if warnings:
        headers += warning_headers(warnings)
    return Answer(status, body, headers)


def warning_headers(warnings: list[str]) -> Headers:
    """RFC 7234 warn-code 299 headers, as Kubernetes sends them; at most :data:`MAX_WARNINGS`,
    then one counting the rest."""
    shown = [warning_value(text) for text in warnings[:MAX_WARNINGS]]
    if len(warnings) > MAX_WARNINGS:
        shown.append(warning_value(f"{len(warnings) - MAX_WARNINGS} more warnings not shown"))
    return [(b"warning", value) for value in shown]


def warning_value(text: str) -> bytes:
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{quoted}"'.encode()


def error_answer(exc: Exception) -> Answer:
    """The Status answer a failure gets (API.md §12), with its headers."""
    error = error_for(exc)
    headers = [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    return Answer(error.code, status_body(error), [JSON, *headers])


async def send_answer(send: Send, status: int, body: bytes, headers: Headers) -> None:
    """Send a whole answer in two ASGI messages."""
    start: Any = {
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})
