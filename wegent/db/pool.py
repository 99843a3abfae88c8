"""The connection pool every request goes through: asyncpg connections handed out LIFO.

asyncpg's own ``Pool`` costs ~10 µs of CPU per acquire and release (a proxy object and a
future per acquire, an ``asyncio.shield`` task per release, an inactivity timer re-armed every
time, an O(n) idle count to decide on a timeout): a fifth of what a whole GET costs this
service. This pool does what the service needs and no more — a list pop to acquire, a list
push to release — and keeps the safety properties that matter:

- at most ``max_size`` connections, opened on demand (``min_size`` at start);
- a caller waits at most ``timeout`` for a connection, then ``TimeoutError`` (answered 503);
- a connection the server has closed (restart, ``pg_terminate_backend``) is dropped when seen,
  and its slot is given to a waiter, who opens a fresh one;
- a connection returned inside a transaction is rolled back first, and terminated if even that
  fails, so no request ever inherits another's transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import Any

import asyncpg
from asyncpg.prepared_stmt import PreparedStatement

Connect = Callable[[], Awaitable[asyncpg.Connection]]
MAX_PREPARED = 256  # per connection; list statements vary with selectors and paging


class PoolClosing(asyncpg.InterfaceError):  # type: ignore[misc]
    """The pool is closing: no more connections are handed out."""


class Pool:
    """A LIFO pool of asyncpg connections (see the module docstring)."""

    def __init__(
        self, connect: Connect, *, min_size: int, max_size: int, prepare_statements: bool = True
    ) -> None:
        self._connect = connect
        self._min_size = min(min_size, max_size)
        self._max_size = max_size
        self._idle: list[asyncpg.Connection] = []
        self._in_use: set[asyncpg.Connection] = set()
        self._opening = 0
        # A waiter gets a connection, or None: "a slot is free, open a connection yourself".
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._closing = False
        self._drained: asyncio.Event | None = None  # set by close(): the last one is back
        # Prepared statements by connection and SQL text, for the hottest reads (see fetch);
        # none when off (PgBouncer in transaction mode: WEGENT_DB_PREPARED_STATEMENTS=false).
        self.prepare_statements = prepare_statements
        self._prepared: dict[asyncpg.Connection, dict[str, PreparedStatement]] = {}

    async def open(self) -> None:
        """Open ``min_size`` connections; the first failure is raised (the others are kept,
        so :meth:`close` closes them)."""
        opened = await asyncio.gather(
            *(self._connect() for _ in range(self._min_size)), return_exceptions=True
        )
        self._idle.extend(c for c in opened if not isinstance(c, BaseException))
        for outcome in opened:
            if isinstance(outcome, BaseException):
                raise outcome

    @property
    def size(self) -> int:
        """Open connections, idle or in use, plus those being opened."""
        return len(self._idle) + len(self._in_use) + self._opening

    def get_idle_size(self) -> int:
        return len(self._idle)

    def occupancy(self) -> tuple[int, int, int]:
        """Connections lent out, connections idle, and requests waiting for one (metrics)."""
        waiting = sum(1 for waiter in self._waiters if not waiter.done())
        return len(self._in_use), len(self._idle), waiting

    def is_closing(self) -> bool:
        return self._closing

    def acquire(self, timeout: float | None = None) -> Lease:
        """``async with pool.acquire() as conn`` (released on exit) or ``await pool.acquire()``
        (then ``await pool.release(conn)``)."""
        return Lease(self, timeout)

    def take_idle(self) -> asyncpg.Connection | None:
        """An idle connection, at once, or None (none idle: ``await take()``). The hottest
        path: no coroutine, no timer, no future."""
        idle = self._idle
        while idle and not self._closing:
            conn = idle.pop()
            if not conn.is_closed():
                self._in_use.add(conn)
                return conn
            self._prepared.pop(conn, None)
        return None

    async def take(self, wait_s: float | None) -> asyncpg.Connection:
        if self._closing:
            raise PoolClosing("the connection pool is closing")
        conn = self.take_idle()
        if conn is not None:
            return conn
        if self.size < self._max_size:
            self._opening += 1
            return await self._open_reserved()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[asyncpg.Connection | None] = loop.create_future()
        self._waiters.append(waiter)
        # A plain timer on the future: asyncio.timeout() costs several times more, and under
        # load most acquires wait.
        timer = None if wait_s is None else loop.call_later(wait_s, _expire, waiter)
        try:
            conn = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._give_up(waiter.result())  # got one just as it gave up: pass it on
            waiter.cancel()
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if conn is None:
            return await self._open_reserved()
        return conn

    async def _open_reserved(self) -> asyncpg.Connection:
        """Open a connection in a slot already counted in ``_opening``."""
        try:
            conn = await self._connect()
        except BaseException:
            self._opening -= 1
            self._hand_back(None)  # the slot is free again
            raise
        self._opening -= 1
        if self._closing:
            conn.terminate()
            raise PoolClosing("the connection pool is closing")
        self._in_use.add(conn)
        return conn

    def _give_up(self, got: asyncpg.Connection | None) -> None:
        if got is None:
            self._opening -= 1
        else:
            self._in_use.discard(got)
        self._hand_back(got)

    def give_back(self, conn: asyncpg.Connection) -> bool:
        """Release ``conn`` at once, unless a transaction is still open on it: then False, and
        :meth:`release` must roll it back (the hottest path releases without a coroutine)."""
        if conn not in self._in_use:
            return True  # released twice
        if conn.is_closed() or self._closing:
            self._drop(conn)
            return True
        if conn.is_in_transaction():
            return False
        self._in_use.discard(conn)
        self._hand_back(conn)
        return True

    async def release(self, conn: asyncpg.Connection) -> None:
        """Give a connection back; rolled back first if a transaction is still open (a
        connection that cannot even roll back is terminated)."""
        if self.give_back(conn):
            return
        try:
            await conn.execute("ROLLBACK")
        except asyncio.CancelledError:
            self._drop(conn)
            raise
        except Exception:
            self._drop(conn)
            return
        self.give_back(conn)

    def fetch(
        self, conn: asyncpg.Connection, sql: str, *params: Any
    ) -> Awaitable[list[asyncpg.Record]]:
        """The rows of ``sql`` on ``conn``: through a statement prepared once per connection,
        or, with prepared statements off, sent as an unnamed statement each time. (Not a
        coroutine itself: it hands over asyncpg's, one frame less per read.)"""
        if not self.prepare_statements:
            return conn.fetch(sql, *params)  # type: ignore[no-any-return]
        statement = self.prepared(conn, sql)
        if statement is not None:
            return statement.fetch(*params)  # type: ignore[no-any-return]
        return self._prepare_and_fetch(conn, sql, params)

    async def _prepare_and_fetch(
        self, conn: asyncpg.Connection, sql: str, params: tuple[Any, ...]
    ) -> list[asyncpg.Record]:
        statement = await self.prepare(conn, sql)
        return await statement.fetch(*params)  # type: ignore[no-any-return]

    def prepared(self, conn: asyncpg.Connection, sql: str) -> PreparedStatement | None:
        """``sql`` as already prepared on ``conn``, if it is (see :meth:`prepare`)."""
        statements = self._prepared.get(conn)
        return None if statements is None else statements.get(sql)

    async def prepare(self, conn: asyncpg.Connection, sql: str) -> PreparedStatement:
        """Prepare ``sql`` on ``conn`` and keep it for the connection's life: running a prepared
        statement skips asyncpg's per-call statement lookup (a few µs on every read). Never
        with prepared statements off: it would be a named statement."""
        if not self.prepare_statements:
            raise asyncpg.InterfaceError("prepared statements are off")
        statements = self._prepared.setdefault(conn, {})
        if len(statements) >= MAX_PREPARED:
            statements.clear()
        statement: PreparedStatement = await conn.prepare(sql)
        statements[sql] = statement
        return statement

    def forget_prepared(self, conn: asyncpg.Connection, sql: str) -> None:
        """Drop a statement that failed: the next use prepares it again (schema changes)."""
        self._prepared.get(conn, {}).pop(sql, None)

    def _drop(self, conn: asyncpg.Connection) -> None:
        self._prepared.pop(conn, None)
        conn.terminate()
        self._in_use.discard(conn)
        self._hand_back(None)
        if self._drained is not None and not self._in_use:
            self._drained.set()

    def _hand_back(self, conn: asyncpg.Connection | None) -> None:
        """A connection, or a free slot (None), goes to the first waiter, else: a connection to
        the idle list (a free slot needs no bookkeeping: ``size`` has already dropped)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if waiter.done():
                continue
            if conn is None:
                self._opening += 1  # reserved for the waiter, who opens it
            else:
                self._in_use.add(conn)
            waiter.set_result(conn)
            return
        if conn is not None:
            self._idle.append(conn)

    async def close(self, grace: float = 10.0) -> None:
        """Refuse new acquires, wait up to ``grace`` seconds for connections in use, close all."""
        self._closing = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolClosing("the connection pool is closing"))
        if self._in_use:
            self._drained = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), grace)
        idle, self._idle = self._idle, []
        for conn in self._in_use:
            conn.terminate()
        self._in_use.clear()
        self._prepared.clear()
        await asyncio.gather(*(_close(conn) for conn in idle))


def _expire(waiter: asyncio.Future[asyncpg.Connection | None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("no database connection became free in time"))


async def _close(conn: asyncpg.Connection) -> None:
    try:
        await conn.close(timeout=2)
    except Exception:
        conn.terminate()


class Lease:
    """What ``Pool.acquire`` returns: awaitable, or an async context manager that releases."""

    __slots__ = ("_conn", "_pool", "_timeout")

    def __init__(self, pool: Pool, timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._conn: asyncpg.Connection | None = None

    def __await__(self) -> Generator[Any, None, asyncpg.Connection]:
        return self._pool.take(self._timeout).__await__()

    async def __aenter__(self) -> asyncpg.Connection:
        self._conn = await self._pool.take(self._timeout)
        return self._conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._pool.release(conn)
