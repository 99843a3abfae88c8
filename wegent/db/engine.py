"""The Piccolo engine and its asyncpg pool, with the embedded server when no URL is set."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
from piccolo.apps.migrations.tables import Migration
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

from wegent.db.coalesce import Coalescer
from wegent.db.embedded import ServerHandle, start_embedded, stop_embedded
from wegent.db.pool import Lease, Pool
from wegent.db.tables import TABLES
from wegent.settings import Settings

log = logging.getLogger("wegent.db")

EMBEDDED_DATABASE = "wegent"
# What a pooled connection that the server has just terminated fails with.
DEAD_CONNECTION = (
    asyncpg.InternalClientError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.AdminShutdownError,
)

# A read is tried again, once, after these: a connection just killed, or a statement prepared
# before a schema change (a migration run by another worker).
RETRY_READ = (*DEAD_CONNECTION, asyncpg.InvalidCachedStatementError)

_current_engine: PostgresEngine | None = None


def current_engine() -> PostgresEngine | None:
    """The engine of the running database, for ``piccolo_conf`` and Piccolo's migrations."""
    return _current_engine


#: Statements with a coalescer of their own (see :meth:`Database.coalesced`).
MAX_COALESCED = 256


class DatabaseUnavailable(Exception):
    """The database could not be reached; the message is one line for an operator."""


class Database:
    """Owns the embedded server (if any), the connection pool requests use, and the Piccolo
    engine (tables and migrations; it opens connections of its own when it needs them)."""

    def __init__(self, settings: Settings, database_url: str | None = None) -> None:
        self.settings = settings
        self.url = database_url or settings.database_url
        self.engine: PostgresEngine | None = None
        self._pool: Pool | None = None
        self._server: ServerHandle | None = None
        self._coalescers: dict[str, Coalescer] = {}

    @property
    def pool(self) -> Pool:
        """The connection pool; only valid between :meth:`connect` and :meth:`close`."""
        assert self._pool is not None, "database not connected"
        return self._pool

    async def resolve_url(self) -> str:
        """The DSN to use: the configured one, or the embedded server's (started on demand)."""
        if self.url is None:
            log.info(
                "no WEGENT_DATABASE_URL: using the embedded PostgreSQL in %s",
                self.settings.data_dir / "pgdata",
            )
            self._server = await asyncio.to_thread(start_embedded, self.settings.data_dir)
            admin_url = self._server.get_uri()
            await ensure_database(admin_url, EMBEDDED_DATABASE)
            self.url = self._server.get_uri(database=EMBEDDED_DATABASE)
        return self.url

    async def connect(self) -> None:
        """Open the pool and bind the tables to this engine."""
        global _current_engine
        url = await self.resolve_url()
        options = self.connect_options()
        pool = Pool(
            lambda: asyncpg.connect(url, **options),
            min_size=self.settings.pool_min_size,
            max_size=self.settings.pool_max_size,
            prepare_statements=self.settings.db_prepared_statements,
        )
        try:
            await pool.open()
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            await pool.close(grace=0)
            raise DatabaseUnavailable(f"cannot connect to the database: {_describe(exc)}") from None
        self._pool = pool
        engine = PostgresEngine(
            config={"dsn": url, **self.engine_options()}, extensions=(), log_queries=False
        )
        self.engine = engine
        bound: tuple[type[Table], ...] = (*TABLES, Migration)
        for table in bound:  # Piccolo caches an engine per table; bind them to this one
            table._meta.db = engine
        _current_engine = engine

    def connect_options(self) -> dict[str, Any]:
        """``asyncpg.connect`` arguments: timeouts, the server-side statement timeout, and no
        named prepared statements when they are off (:meth:`engine_options`)."""
        return {
            "timeout": self.settings.db_connect_timeout_s,
            "command_timeout": self.settings.statement_timeout_ms / 1000 + 5,
            "server_settings": {
                "statement_timeout": str(self.settings.statement_timeout_ms),
                "application_name": "wegent",
            },
            **self.engine_options(),
        }

    def engine_options(self) -> dict[str, Any]:
        """What every connection needs, Piccolo's included: with
        ``WEGENT_DB_PREPARED_STATEMENTS=false`` (PgBouncer in transaction mode, where a named
        statement prepared through one server connection is unknown to the next) asyncpg
        keeps no statement cache, so it sends every query as an unnamed statement."""
        return {} if self.settings.db_prepared_statements else {"statement_cache_size": 0}

    async def close(self, *, keep_server: bool = False) -> None:
        """Close the pool, then release the embedded server unless asked to keep it."""
        global _current_engine
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if _current_engine is self.engine:
            _current_engine = None
        self.engine = None
        if not keep_server:
            await asyncio.to_thread(self.release_server)

    def release_server(self) -> None:
        """Drop this process's handle on the embedded server (the last handle stops it)."""
        if self._server is not None:
            stop_embedded(self._server)
            self._server = None

    def acquire(self) -> Lease:
        """A pooled connection, waiting at most ``pool_acquire_timeout_s`` (then TimeoutError,
        answered 503): an exhausted pool refuses instead of queueing forever."""
        return self.pool.acquire(self.settings.pool_acquire_timeout_s)

    def coalesced(
        self, sql: str, *, max_batch: int = 64, another_reader_at: int | None = None
    ) -> Coalescer:
        """The coalescer of a statement reading rows by key (``wegent.db.coalesce``): its
        readers hold at most a quarter of the pool. One per statement, for the first
        :data:`MAX_COALESCED` statements; past them (list statements vary with selectors and
        filters), a fresh one per call: still correct, a batch of one."""
        coalescer = self._coalescers.get(sql)
        if coalescer is None:
            coalescer = Coalescer(
                lambda columns: self.read(sql, *columns),
                readers=self.settings.pool_max_size // 4,
                max_batch=max_batch,
                another_reader_at=another_reader_at,
            )
            if len(self._coalescers) < MAX_COALESCED:
                self._coalescers[sql] = coalescer
        return coalescer

    async def read(self, sql: str, *params: Any) -> list[asyncpg.Record]:
        """One read-only statement, prepared once per connection (unless prepared statements
        are off), retried once if the connection
        it got had just been killed by the server (restart, ``pg_terminate_backend``) or the
        schema changed under the prepared statement: the caller gets its rows, or a connection
        error when the database really is gone."""
        pool, wait_s = self.pool, self.settings.pool_acquire_timeout_s
        for attempt in (1, 2):
            # the hottest path: no context manager object, no coroutine unless it must wait
            conn = pool.take_idle() or await pool.take(wait_s)
            try:
                return await pool.fetch(conn, sql, *params)
            except Exception as exc:
                pool.forget_prepared(conn, sql)
                if attempt == 2 or not isinstance(exc, RETRY_READ):
                    raise
            finally:
                if not pool.give_back(conn):
                    await pool.release(conn)
        raise AssertionError("unreachable")

    async def write(self, sql: str, *params: Any) -> list[asyncpg.Record]:
        """One statement that writes, on a pooled connection (prepared once per connection),
        never retried: if the connection fails, whether it committed is unknown."""
        pool, wait_s = self.pool, self.settings.pool_acquire_timeout_s
        conn = pool.take_idle() or await pool.take(wait_s)
        try:
            return await pool.fetch(conn, sql, *params)
        except Exception:
            pool.forget_prepared(conn, sql)
            raise
        finally:
            if not pool.give_back(conn):
                await pool.release(conn)

    async def ping(self) -> bool:
        """True when the database answers a trivial query within the connect timeout."""
        try:
            async with asyncio.timeout(self.settings.db_connect_timeout_s):
                async with self.pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return False
        return True


async def ensure_database(admin_url: str, name: str) -> None:
    """Create database ``name`` on the server behind ``admin_url`` if it does not exist."""
    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # another worker may create it first
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
