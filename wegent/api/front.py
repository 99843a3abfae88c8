"""The front layer: the one place every HTTP request passes, whichever code answers it.

In this order, for each request:

0. the request gets its id and its record (``wegent.api.observe``): every answer carries the id,
   is counted and timed by route template, and is logged when the access log is on;
1. the query string is parsed once (a repeated parameter or text that is not UTF-8 is a 400),
   for every route (``scope[QUERY_KEY]``);
2. cross-origin requests get their CORS answer or headers (``wegent.api.cors``);
3. the body is read in full, within ``WEGENT_BODY_TIMEOUT_S`` (408 after it) and at most
   ``WEGENT_MAX_BODY_BYTES`` (413): a client that announces a body and never sends it is
   dropped, and does not hold a place in the in-flight budget while it waits;
4. the in-flight limit: past it, a fast 503 (probes are exempt; ``wegent.api.limits``);
5. the resource API's fast door answers what it has a route for (``wegent.api.dispatch``);
   everything else goes to the framework (Litestar), with the body already read.

A new concern that must see every request goes here.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from litestar.types import ASGIApp

from wegent.api.answers import LEAVE_KEY, Answer, Header, answer_messages, error_answer, respond
from wegent.api.cors import Cors
from wegent.api.dispatch import Dispatcher
from wegent.api.limits import BUSY, Busy, InFlight
from wegent.api.observe import Observer
from wegent.api.operations import Incoming
from wegent.api.params import parse_query
from wegent.errors import ApiError, RequestEntityTooLarge, RequestTimeout
from wegent.request_context import CURRENT, REQUEST_ID_HEADER, UNROUTED, Seen, request_id_of
from wegent.settings import Settings

# ASGI messages and scopes as plain dicts: this layer reads a few keys of HTTP ones only.
Scope = Any
Receive = Any
Send = Any
QUERY_KEY = "wegent.query"
_TYPED = re.compile(r"\{(\w+):\w+\}")
_CLOSE = (b"connection", b"close")
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (lower-case ``name``)."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


#: The request headers this layer and the resource API read.
_READ_HEADERS = frozenset(
    {
        b"content-length",
        b"transfer-encoding",
        b"authorization",
        b"x-api-key",
        b"content-type",
        b"accept",
        REQUEST_ID_HEADER,
    }
)


def request_headers(scope: Scope) -> dict[bytes, str]:
    """The headers of :data:`_READ_HEADERS`, in one pass (the first value of each)."""
    found: dict[bytes, str] = {}
    for key, value in scope["headers"]:
        if key in _READ_HEADERS and key not in found:
            found[key] = bytes(value).decode("latin-1")
    return found


class Disconnected(Exception):
    """The client went away before its body arrived: nobody to answer."""


class Front:
    """The ASGI app the server runs: this layer, then the fast door or the framework."""

    def __init__(
        self,
        framework: ASGIApp,
        dispatcher: Dispatcher,
        settings: Settings,
        *,
        wrote: Callable[[], None] = lambda: None,
    ) -> None:
        self.framework = framework
        self.wrote = wrote  # told after every request that may have written (the watch hub)
        self.dispatcher = dispatcher
        self.fast = True  # tests switch the fast door off: the framework then answers alone
        self.in_flight = InFlight(settings.max_in_flight)
        self.max_body = settings.max_body_bytes
        self.body_timeout = settings.body_timeout_s
        self.cors = Cors(settings.cors_origins) if settings.cors_origins else None
        self.observer = Observer(settings.access_log, settings.metrics)
        self._templates: dict[str, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.framework(scope, receive, send)  # lifespan
            return
        headers = request_headers(scope)
        seen = Seen(request_id_of(headers.get(REQUEST_ID_HEADER)), scope["method"], scope["path"])
        token = CURRENT.set(seen)
        # One coroutine for the whole request, not one per step: every frame of the await
        # chain is passed on each suspension and resumption.
        try:
            try:
                raw_query = scope["query_string"]
                query = parse_query(raw_query) if raw_query else {}
            except ApiError as error:
                self.observer.refused("bad_query")
                await self._reply(send, seen, error_answer(error))
                return
            scope[QUERY_KEY] = query
            if self.cors is not None and (origin := header(scope, b"origin")) is not None:
                method = header(scope, b"access-control-request-method")
                if scope["method"] == "OPTIONS" and method is not None:
                    asked = header(scope, b"access-control-request-headers")
                    await self._reply(send, seen, self.cors.preflight(origin, method, asked))
                    return
                send = self.cors.wrap(send, origin)
            try:
                body = await self._read(receive) if self._announced(headers) else None
            except Disconnected:
                return
            except ApiError as error:  # the rest of the body is not read: the connection closes
                reason = "too_large" if isinstance(error, RequestEntityTooLarge) else "timeout"
                self.observer.refused(reason)
                await self._reply(send, seen, error_answer(error), _CLOSE)
                return
            in_flight = self.in_flight
            try:
                counted = in_flight.enter(scope["path"])
            except Busy:
                self.observer.refused("busy")
                await self._reply(send, seen, BUSY)
                return
            if counted:
                scope[LEAVE_KEY] = leave = in_flight.leaving()
            try:
                match = self.dispatcher.match(scope["method"], scope["path"]) if self.fast else None
                if match is None:
                    replay = receive if body is None else _replay(body, receive)
                    await self.framework(scope, replay, self._stamped(scope, send, seen))
                else:
                    route, namespace, name = match
                    seen.route = route.path
                    answer = await self.dispatcher.api.serve(
                        route, Incoming(query, headers, body or b"", namespace, name)
                    )
                    self.dispatcher.answered += 1
                    if answer.stream is None:
                        await self._reply(send, seen, answer)
                    else:
                        await respond(scope, receive, self._stamped(scope, send, seen), answer)
            finally:
                if counted:
                    leave()
                if scope["method"] not in _SAFE:
                    self.wrote()
        finally:
            CURRENT.reset(token)

    async def _reply(self, send: Send, seen: Seen, given: Answer, *more: Header) -> None:
        """Send a whole answer with its length and the request id; record it. (What this layer
        answers itself; the framework's answers and streams go through :meth:`_stamped`.)"""
        self.observer.answered(seen, given.status)
        head = [*given.headers, *more, (REQUEST_ID_HEADER, seen.id.encode())]
        start, rest = answer_messages(given.status, given.body, head)
        await send(start)
        await send(rest)

    def _stamped(self, scope: Scope, send: Send, seen: Seen) -> Send:
        """``send``, with the request id added to the answer's head, which is recorded."""
        request_id = (REQUEST_ID_HEADER, seen.id.encode())
        observer = self.observer

        async def stamped(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), request_id]
                if seen.route is UNROUTED:
                    seen.route = self._template(scope.get("path_template"))
                observer.answered(seen, message["status"])
            await send(message)

        return stamped

    def _template(self, litestar_template: str | None) -> str:
        """A framework route's template as the resource API's are written: ``{name}``."""
        if litestar_template is None:
            return UNROUTED
        template = self._templates.get(litestar_template)
        if template is None:
            template = _TYPED.sub(r"{\1}", litestar_template)
            self._templates[litestar_template] = template
        return template

    def _announced(self, headers: dict[bytes, str]) -> bool:
        """Whether the request announces a body (HTTP/1.1: a length or chunked transfer); 413
        at once when its announced length is over the limit."""
        length = headers.get(b"content-length")
        if length is not None and length.isascii() and length.isdigit():
            if int(length) > self.max_body:
                raise RequestEntityTooLarge("the request body is too large")
            return int(length) > 0
        return b"transfer-encoding" in headers

    async def _read(self, receive: Receive) -> bytes:
        """The announced body, within the timeout and the size limit. (A plain timer that
        cancels this task: ``asyncio.timeout`` cost ~5 µs on every write, most of whose
        bodies are already there.)"""
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = asyncio.get_running_loop().call_later(self.body_timeout, expire)
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    raise Disconnected
                chunk = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > self.max_body:
                        raise RequestEntityTooLarge("the request body is too large")
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        except asyncio.CancelledError:
            if not expired or task.uncancel() > 0:  # not (only) ours: pass it on
                raise
            raise RequestTimeout(
                f"the request body did not arrive within {self.body_timeout:g} seconds"
            ) from None
        finally:
            timer.cancel()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the framework the body already read, then waits as the
    original does (for a disconnect)."""
    sent = False

    async def replayed() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
