"""The request connection pool against a real PostgreSQL: bounds, waiting, dead connections,
transactions left open, failed connects and closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from wegent.db.pool import Pool, PoolClosing

MakeDatabase = Callable[[], Awaitable[str]]


@pytest.fixture(scope="module")
async def url(make_database: MakeDatabase) -> str:
    return await make_database()


@pytest.fixture
async def pool(url: str) -> AsyncIterator[Pool]:
    pool = Pool(lambda: asyncpg.connect(url), min_size=1, max_size=2)
    await pool.open()
    yield pool
    await pool.close(grace=1)


async def backend(conn: asyncpg.Connection) -> int:
    pid: int = await conn.fetchval("SELECT pg_backend_pid()")
    return pid


async def test_connections_are_reused_last_in_first_out(pool: Pool) -> None:
    async with pool.acquire() as first:
        pid = await backend(first)
    async with pool.acquire() as again:
        assert await backend(again) == pid
    assert (pool.size, pool.get_idle_size()) == (1, 1)


async def test_at_most_max_size_and_a_bounded_wait(pool: Pool) -> None:
    one, two = await pool.acquire(), await pool.acquire()
    assert pool.size == 2
    with pytest.raises(TimeoutError):
        await pool.acquire(0.05)
    waiting = asyncio.ensure_future(pool.take(5))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    await pool.release(one)
    assert await waiting is one  # handed straight to the waiter
    await pool.release(one)
    await pool.release(two)
    assert (pool.size, pool.get_idle_size()) == (2, 2)


async def test_a_transaction_left_open_is_rolled_back(pool: Pool, url: str) -> None:
    conn = await pool.acquire()
    await conn.execute("BEGIN")
    await conn.execute("CREATE TABLE left_open (x int)")
    await pool.release(conn)
    async with pool.acquire() as again:
        assert again is conn and not again.is_in_transaction()
        assert await again.fetchval("SELECT to_regclass('left_open')") is None


async def test_a_connection_the_server_killed_is_replaced(pool: Pool, url: str) -> None:
    async with pool.acquire() as conn:
        pid = await backend(conn)
    killer = await asyncpg.connect(url)
    try:
        assert await killer.fetchval("SELECT pg_terminate_backend($1)", pid) is True
    finally:
        await killer.close()
    await asyncio.sleep(0.1)  # the socket closes
    async with pool.acquire() as fresh:
        assert await backend(fresh) != pid
    assert pool.size == 1


async def test_a_connection_that_dies_in_use_frees_its_slot(pool: Pool) -> None:
    one, two = await pool.acquire(), await pool.acquire()
    waiting = asyncio.ensure_future(pool.take(5))
    await asyncio.sleep(0.01)
    one.terminate()
    await pool.release(one)
    replacement = await waiting  # the waiter got the slot and opened a connection
    assert replacement is not one and await replacement.fetchval("SELECT 1") == 1
    assert pool.size == 2
    await pool.release(replacement)
    await pool.release(two)


async def test_a_failed_connect_frees_its_slot(url: str) -> None:
    attempts = 0

    async def flaky() -> asyncpg.Connection:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise OSError("connection refused")
        return await asyncpg.connect(url)

    pool = Pool(flaky, min_size=0, max_size=1)
    with pytest.raises(OSError):
        await pool.acquire()
    assert pool.size == 0
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1
    await pool.close()


async def test_a_waiter_that_gives_up_loses_no_connection(pool: Pool) -> None:
    one, two = await pool.acquire(), await pool.acquire()
    waiting = asyncio.ensure_future(pool.take(5))
    await asyncio.sleep(0.01)
    await pool.release(one)  # handed to the waiter ...
    waiting.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert (pool.size, pool.get_idle_size()) == (2, 1)
    await pool.release(two)
    assert pool.get_idle_size() == 2


async def test_closing_waits_for_connections_in_use_then_refuses(url: str) -> None:
    pool = Pool(lambda: asyncpg.connect(url), min_size=1, max_size=2)
    await pool.open()
    conn = await pool.acquire()
    closing = asyncio.ensure_future(pool.close(grace=5))
    await asyncio.sleep(0.05)
    assert not closing.done() and pool.is_closing()
    with pytest.raises(PoolClosing):
        await pool.acquire()
    assert await conn.fetchval("SELECT 1") == 1  # the request in flight completes
    await pool.release(conn)
    await asyncio.wait_for(closing, 2)
    assert conn.is_closed() and pool.size == 0


async def test_releasing_twice_is_harmless(pool: Pool) -> None:
    conn = await pool.acquire()
    await pool.release(conn)
    await pool.release(conn)
    assert (pool.size, pool.get_idle_size()) == (1, 1)


async def test_a_transaction_that_cannot_roll_back_drops_the_connection(
    pool: Pool, url: str
) -> None:
    conn = await pool.acquire()
    await conn.execute("BEGIN")
    killer = await asyncpg.connect(url)
    try:
        await killer.fetchval("SELECT pg_terminate_backend($1)", await backend(conn))
    finally:
        await killer.close()
    await pool.release(conn)  # the ROLLBACK fails: the connection is dropped, not pooled
    assert conn.is_closed() and pool.size == 0
    async with pool.acquire() as fresh:
        assert await fresh.fetchval("SELECT 1") == 1


async def test_closing_fails_the_waiters_and_ends_connections_kept_too_long(url: str) -> None:
    pool = Pool(lambda: asyncpg.connect(url), min_size=1, max_size=1)
    await pool.open()
    held = await pool.acquire()
    waiting = asyncio.ensure_future(pool.take(5))
    await asyncio.sleep(0.01)
    await pool.close(grace=0.05)
    with pytest.raises(PoolClosing):
        await waiting
    assert held.is_closed() and pool.size == 0  # not given back within the grace period
    await pool.release(held)  # late: nothing to do


async def test_prepared_statements_are_kept_per_connection_and_bounded(
    pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("wegent.db.pool.MAX_PREPARED", 2)
    async with pool.acquire() as conn:
        first = await pool.prepare(conn, "SELECT 1")
        assert pool.prepared(conn, "SELECT 1") is first
        await pool.prepare(conn, "SELECT 2")
        await pool.prepare(conn, "SELECT 3")  # a third: the cache starts again
        assert pool.prepared(conn, "SELECT 1") is None
        assert pool.prepared(conn, "SELECT 3") is not None
        pool.forget_prepared(conn, "SELECT 3")
        assert pool.prepared(conn, "SELECT 3") is None


@pytest.mark.parametrize("prepare_statements", [True, False], ids=["on", "off"])
async def test_fetch_prepares_once_per_connection_only_when_on(
    url: str, prepare_statements: bool
) -> None:
    """With prepared statements off (PgBouncer in transaction mode) a read is sent as an
    unnamed statement each time: nothing is named on the connection, nothing kept."""
    cache = {} if prepare_statements else {"statement_cache_size": 0}  # as Database does
    pool = Pool(
        lambda: asyncpg.connect(url, **cache),
        min_size=1,
        max_size=1,
        prepare_statements=prepare_statements,
    )
    await pool.open()
    try:
        async with pool.acquire() as conn:
            for _ in range(2):
                rows = await pool.fetch(conn, "SELECT $1::int + 1 AS n", 41)
                assert [tuple(r) for r in rows] == [(42,)]
            named = await conn.fetchval(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%+ 1 AS n'"
            )
            kept = pool.prepared(conn, "SELECT $1::int + 1 AS n")
            assert (named, kept is not None) == ((1, True) if prepare_statements else (0, False))
            if not prepare_statements:
                with pytest.raises(asyncpg.InterfaceError, match="prepared statements are off"):
                    await pool.prepare(conn, "SELECT 1")
    finally:
        await pool.close(grace=1)
