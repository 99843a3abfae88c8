"""Answers of the resource API as both doors send them: status, body and headers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, NamedTuple, Protocol, cast

from litestar.types import Receive, Scope, Send

from wegent.api.errors import error_for, status_body

Header = tuple[bytes, bytes]
Headers = list[Header]
JSON = (b"content-type", b"application/json")
#: At most this many ``Warning`` headers, then one that says how many more (API.md §13):
#: thousands of them make an answer that clients fail to read, and they retry a write that
#: succeeded.
MAX_WARNINGS = 20


#: Where the front layer puts, for a request it counts as in flight, the function that stops
#: counting it: a stream (a watch) may last half an hour and must not hold a place meanwhile.
LEAVE_KEY = "wegent.leave"


class Stream(Protocol):
    """An answer sent as it is made (a watch, API.md §15)."""

    def chunks(self) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...


class Answer(NamedTuple):
    status: int
    body: bytes
    headers: Headers
    stream: Stream | None = None


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


async def respond(scope: Scope, receive: Receive, send: Send, given: Answer) -> None:
    """Send an answer, whole or streamed."""
    if given.stream is None:
        await send_answer(send, given.status, given.body, given.headers)
    else:
        await send_stream(scope, receive, send, given.status, given.headers, given.stream)


async def send_stream(
    scope: Scope, receive: Receive, send: Send, status: int, headers: Headers, stream: Stream
) -> None:
    """Send ``stream`` chunk by chunk (HTTP/1.1 chunked) until it ends or the client leaves;
    the request stops counting as in flight once its head is sent."""
    try:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        leave = cast(Callable[[], None] | None, scope.get(LEAVE_KEY))
        if leave is not None:
            leave()

        async def pump() -> None:
            async for chunk in stream.chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        pumping, watching = asyncio.ensure_future(pump()), asyncio.ensure_future(gone())
        try:
            await asyncio.wait((pumping, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pumping, watching):
                task.cancel()
            for task in (pumping, watching):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        stream.close()


def answer_messages(status: int, body: bytes, headers: Headers) -> tuple[Any, Any]:
    """A whole answer's two ASGI messages: its head (with its length) and its body."""
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
    }
    return start, {"type": "http.response.body", "body": body, "more_body": False}


async def send_answer(send: Send, status: int, body: bytes, headers: Headers) -> None:
    """Send a whole answer in two ASGI messages."""
    start, rest = answer_messages(status, body, headers)
    await send(start)
    await send(rest)
