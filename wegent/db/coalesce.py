"""Reads by key, coalesced: one statement per round trip for every read waiting at that
moment. GETs of single objects (their key: kind, namespace, name) and list pages (their key:
the page statement's parameters; ``wegent.resources.store.many_pages``) go through here.

A GET of one object is one indexed row, but each statement costs the worker a round trip of
asyncpg work (bind, execute, a future, the rows) of about 15 µs, most of a GET's CPU once
everything else is cached. Under load most GETs would wait for a pooled connection anyway, so
here a GET's key joins a queue instead, and a reader takes every key queued by then (up to
``max_batch``), reads them all with one statement (``unnest`` of the keys, joined to the table
through its unique live index) and hands each request its row. Measured in-process with 16
concurrent GETs: 20 µs of worker CPU per read alone, 7 µs coalesced (docs/performance.md).

A reader waits one turn of the event loop before it takes a batch that is not full: the
requests whose bytes arrived in the same poll of the sockets join it. At 16 connections that
took the keys per statement from about 4 to about 20 and PostgreSQL's CPU per GET from ~30 µs
to ~9 µs, for one loop turn of latency. At most ``readers`` readers run at once, so GETs never
hold more connections than that; with nothing queued none runs, and a lone GET is a batch of
one (a task is started for it).

While one reader runs, another starts only when ``another_reader_at`` keys wait (by default a
full batch): a reader is a task, and one started for every batch costs more than the batch
saves. Counted with wrk at 16 connections: starting readers up to the limit whenever one was
free started a task for one GET in eight (nearly every batch); starting the second only for a
full batch waiting, one for one GET in fifty (the gain in GETs a second is within what wrk
resolves on a shared machine). List pages pass 1: PostgreSQL spends far longer on a page than
the worker does, so pages are read side by side by all the readers allowed (one reader at a
time served fewer lists at 64 connections).

List pages are coalesced the same way, one coalescer per page statement (the keys are its
parameters, the value a page's bodies): a page costs PostgreSQL and asyncpg far more than a
GET, so their batches are smaller (``wegent.resources.crd.LISTS_PER_BATCH``): a reader that
took every waiting list would leave the worker idle while PostgreSQL reads them.

Why it answers what a statement of its own would: a key is read by a statement that starts
after its request queued it, so the read sees every write acknowledged before the request
arrived; each request gets exactly its row, or None. A failed statement fails every request of
its batch with the same error (after :meth:`Database.read`'s one retry).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextvars import Context
from typing import Any

Key = tuple[Any, ...]
Read = Callable[[list[list[Any]]], Awaitable[Sequence[Any]]]


class Coalescer:
    """Coalesces reads of rows by key (see the module docstring).

    ``read(columns)`` runs the statement for the keys given column by column (the first
    column of every key, then the second ...) and returns rows of (1-based position of the
    key, value); keys without a row are left out."""

    def __init__(
        self,
        read: Read,
        *,
        readers: int,
        max_batch: int = 64,
        another_reader_at: int | None = None,
    ) -> None:
        self._read = read
        self.readers = max(1, readers)
        self.max_batch = max_batch
        self.another_reader_at = max(1, another_reader_at or max_batch)
        self._queue: list[tuple[Key, asyncio.Future[Any]]] = []
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak ones
        self.batches = 0  # statements run, for tests and the benchmark
        self.keys = 0  # keys read by them

    def get(self, key: Key) -> asyncio.Future[Any]:
        """The value for ``key`` (None when it has no row), once a reader has read it."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        queue = self._queue
        queue.append((key, future))
        running = self._running
        if running == 0 or (running < self.readers and len(queue) >= self.another_reader_at):
            self._start()
        return future

    def _start(self) -> None:
        self._running += 1
        # In a context of its own: a batch is no one request's (log lines, request ids).
        task = asyncio.get_running_loop().create_task(self._run(), context=Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        queue = self._queue
        try:
            while queue:
                if len(queue) < self.max_batch:
                    await asyncio.sleep(0)  # one turn of the loop: the requests it reads join
                batch = queue[: self.max_batch]
                del queue[: self.max_batch]
                await self._answer(batch)
        finally:
            self._running -= 1
            if queue and self._running == 0:  # cancelled with keys left: nobody else reads them
                for _, future in queue:
                    future.cancel()
                queue.clear()

    async def _answer(self, batch: list[tuple[Key, asyncio.Future[Any]]]) -> None:
        waiting = [(key, future) for key, future in batch if not future.done()]
        if not waiting:
            return  # every request of the batch has gone (cancelled)
        columns = [list(column) for column in zip(*(key for key, _ in waiting), strict=True)]
        self.batches += 1
        self.keys += len(waiting)
        try:
            rows = await self._read(columns)
        except asyncio.CancelledError:
            for _, future in waiting:
                future.cancel()
            raise
        except Exception as exc:  # every request of the batch answers it; the reader goes on
            for _, future in waiting:
                if not future.done():
                    future.set_exception(exc)
            return
        found: dict[int, Any] = {position: value for position, value in rows}
        for position, (_, future) in enumerate(waiting, 1):
            if not future.done():
                future.set_result(found.get(position))
