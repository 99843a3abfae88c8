"""One watch (API.md §15): its first events, then the hub's, as lines of JSON.

A watch registers with the hub *before* it reads anything, at the hub's version P: from then
on the hub offers it every change above P. What it owes its client before those comes from
the database:

- from a version N below P: the log's changes in (N, P] (410 Expired once pruned);
- from nothing (no version, ``""`` or ``"0"``): the current objects. They are read in one
  statement, then the sequence's ``last_value`` Q (every object that read can show has a
  version <= Q). Once the hub has passed Q, the changes it offered in (P, Q] are folded into
  what was read — a change newer than the object's row replaces it or removes it — so the
  ADDED events show the collection exactly as at Q, and every later event is above Q.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, NamedTuple

import asyncpg

from wegent import metrics
from wegent.api import tables
from wegent.api.errors import status_body
from wegent.auth.access import Principal, describe
from wegent.db.engine import Database
from wegent.errors import ApiError, Expired, Forbidden, ServiceUnavailable
from wegent.resources.meta import API_VERSION
from wegent.resources.registry import KindInfo
from wegent.resources.store import whole_list_statement
from wegent.watch.changes import HORIZON, PAGE, READ, Change, Interest
from wegent.watch.wake import wait_set

if TYPE_CHECKING:
    from wegent.watch.hub import Hub

LAST_VALUE = "SELECT last_value FROM resource_version_seq"
MAX_WATCH_S = 1800  # timeoutSeconds: the default and the most a watch lasts
#: What reading the database may fail with (a pool time-out is an OSError or an ApiError).
UNREADABLE = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ApiError)
INITIAL_END = "k8s.io/initial-events-end"


class Options(NamedTuple):
    """How one watch was asked for."""

    start: int | None  # every change after this version (None: from now)
    initial: bool  # the current objects first (then start is None)
    initial_end: bool  # sendInitialEvents=true: a BOOKMARK ends the current objects
    bookmarks: bool  # allowWatchBookmarks=true
    timeout_s: float
    table: str | None = None  # the Table version asked for, if any
    include_object: str = "Metadata"


class _Event(NamedTuple):
    version: int
    type: str
    uid: str
    name: str
    body: bytes


class Watch:
    """A stream's state; the hub feeds its queue, :meth:`chunks` sends it."""

    def __init__(
        self,
        hub: Hub,
        db: Database,
        info: KindInfo,
        interest: Interest,
        principal: Principal,
        namespace: str | None,
        options: Options,
        *,
        bound: int,
        bookmark_s: float,
    ) -> None:
        self.hub = hub
        self.db = db
        self.info = info
        self.interest = interest
        self.principal = principal
        self.namespace = namespace  # None: across namespaces
        self.options = options
        self.bound = bound
        self.bookmark_s = bookmark_s
        self._queue: deque[_Event] = deque()
        self._wake = asyncio.Event()
        self._finished = False
        self._error: ApiError | None = None
        self._start = hub.register(self)  # raises when the server takes no more watches

    # -- fed by the hub --------------------------------------------------------------------------

    def offer(self, change: Change, event: str) -> None:
        """Queue ``change`` as ``event`` (its type for this watch's interest)."""
        if self._finished:
            return
        if len(self._queue) >= self.bound:  # not read fast enough: dropped, it resumes
            self.hub.end(self, None)
            return
        self._queue.append(_Event(change.version, event, change.uid, change.name, change.body))
        self._wake.set()

    @property
    def key(self) -> tuple[str, str | None]:
        """Where the hub files it: its kind, and its namespace (None: across namespaces)."""
        return self.interest.kind, self.namespace

    def advanced(self) -> None:
        self._wake.set()

    def finish(self, error: ApiError | None) -> None:
        """End the stream; what is queued is not sent (the client resumes from what it got)."""
        self._finished = True
        self._error = error
        self._queue.clear()
        self._wake.set()

    def recheck(self, principal: Principal | None, readable: list[str] | None) -> None:
        """The caller's access changed somewhere: end the stream if this watch is affected."""
        lost = Forbidden(
            f"{describe(self.principal)} can no longer watch {self.info.plural}"
            + (f' in namespace "{self.namespace}"' if self.namespace is not None else "")
        )
        if principal is None or principal.username != self.principal.username:
            self.hub.end(self, lost)
        elif self.namespace is not None:
            if readable is not None and self.namespace not in readable:
                self.hub.end(self, lost)
        else:
            now = None if readable is None else frozenset(readable)
            was = self.interest.namespaces
            if now == was:
                return
            if was is None or (now is not None and not now >= was):
                self.hub.end(self, lost)
            else:  # more to read than the stream shows: the client lists again
                self.hub.end(self, Expired("the namespaces you can read changed; list again"))

    def close(self) -> None:
        self.hub.unregister(self)

    # -- the stream ------------------------------------------------------------------------------

    async def chunks(self) -> AsyncIterator[bytes]:
        """The stream's bytes: a chunk per batch of events, until the time-out or the end."""
        loop = asyncio.get_running_loop()
        lasts = self.options.timeout_s
        token = self.principal.token
        if token is not None and token.expires_at is not None:
            lasts = min(lasts, token.expires_at - time.time())  # a token's watch ends with it
        deadline = loop.time() + lasts
        sent, start = self._start, self.options.start
        try:
            if self.options.initial:
                objects, sent = await self._current(deadline)
                if objects:
                    yield b"".join(self._line("ADDED", body) for body in objects)
                if self.options.initial_end and not self._finished:
                    yield self._bookmark(sent, initial_end=True)
            elif start is not None and start < sent:
                async for chunk in self._replay(start):
                    yield chunk
            elif start is not None:
                sent = start
        except UNREADABLE as exc:  # the database failed us: say so, the client resumes
            failed = (
                exc
                if isinstance(exc, ApiError)
                else ServiceUnavailable(
                    "the watch could not read the database; resume from your last resourceVersion",
                    retry_after=1,
                )
            )
            yield self._line("ERROR", status_body(failed))
            return
        next_bookmark = loop.time() + self.bookmark_s
        while True:
            lines = []
            while self._queue:
                event = self._queue.popleft()
                if event.version > sent:
                    lines.append(self._line(event.type, event.body))
                    sent = event.version
            if lines:
                yield b"".join(lines)
                continue
            if self._finished:
                if self._error is not None:
                    yield self._line("ERROR", status_body(self._error))
                return
            now = loop.time()
            if now >= deadline:
                return
            if self.options.bookmarks and now >= next_bookmark:
                yield self._bookmark(max(sent, self.hub.version))
                next_bookmark = now + self.bookmark_s
                continue
            wait = min(deadline, next_bookmark if self.options.bookmarks else deadline) - now
            await self._sleep(wait)

    async def _sleep(self, seconds: float) -> None:
        await wait_set(self._wake, seconds)
        self._wake.clear()

    async def _replay(self, start: int) -> AsyncIterator[bytes]:
        """The log's changes in (start, registration], or a 410 when it no longer holds them."""
        rows = await self.db.read(HORIZON)
        after, upto = start, self._start
        horizon = rows[0][0]
        while horizon <= start and after < upto:
            rows = await self.db.read(READ, after, upto, PAGE)
            if rows and rows[0]["horizon"] > start:  # pruned meanwhile
                horizon = rows[0]["horizon"]
                break
            lines = []
            for row in rows:
                change = Change.of(row)
                event = self.interest.event(change)
                if event is not None:
                    lines.append(self._line(event, change.body))
            if lines:
                yield b"".join(lines)
            if len(rows) < PAGE:
                return
            after = rows[-1][0]
        if horizon > start:
            self.hub.end(self, Expired(f"too old resource version: {start} ({horizon})"))

    async def _current(self, deadline: float) -> tuple[list[bytes], int]:
        """The objects as at a version Q (see the module docstring), by name, and Q."""
        interest = self.interest
        namespaces = None if interest.namespaces is None else sorted(interest.namespaces)
        sql, params = whole_list_statement(
            self.info.table,
            interest.kind,
            namespaces,
            selector=interest.selector,
            filters=[*((c, "=", v) for c, v in interest.filters), *interest.fields],
        )
        rows = await self.db.read(sql, *params)
        upto = int((await self.db.read(LAST_VALUE))[0][0])  # after the rows: see above
        loop = asyncio.get_running_loop()
        self.hub.wait_for_version(self, True)
        while self.hub.version < upto and not self._finished and loop.time() < deadline:
            await self._sleep(deadline - loop.time())
        self.hub.wait_for_version(self, False)
        objects = {row[0]: (row[2], row[1], row[3]) for row in rows}  # uid: (version, name, body)
        latest: dict[str, _Event] = {}
        while self._queue and self._queue[0].version <= upto:
            event = self._queue.popleft()
            latest[event.uid] = event
        for uid, event in latest.items():
            have = objects.get(uid)
            if have is not None and have[0] >= event.version:
                continue  # the row read is as new as this change, or newer
            if event.type == "DELETED":
                objects.pop(uid, None)
            else:
                objects[uid] = (event.version, event.name, event.body)
        ordered = sorted(objects.items(), key=lambda item: (item[1][1], item[0]))
        return [body for _, (_, _, body) in ordered], max(upto, self._start)

    # -- lines -----------------------------------------------------------------------------------

    def _line(self, type_: str, body: bytes) -> bytes:
        metrics.WATCH_EVENTS.labels(type_).inc()
        if self.options.table is not None and type_ != "ERROR":
            body = tables.object_table(
                self.info.columns, body, self.options.include_object, self.options.table
            )
        return b'{"type":"%s","object":%s}\n' % (type_.encode(), body)

    def _bookmark(self, version: int, *, initial_end: bool = False) -> bytes:
        metrics.WATCH_EVENTS.labels("BOOKMARK").inc()
        annotations = f',"annotations":{{"{INITIAL_END}":"true"}}' if initial_end else ""
        return (
            f'{{"type":"BOOKMARK","object":{{"kind":"{self.info.kind}",'
            f'"apiVersion":"{API_VERSION}","metadata":{{"resourceVersion":"{version}"'
            f"{annotations}}}}}}}\n"
        ).encode()
