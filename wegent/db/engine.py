"""The Piccolo engine and its asyncpg pool, with the embedded server when no URL is set."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
from piccolo.apps.migrations.tables import Migration
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

from wegent.db.embedded import ServerHandle, start_embedded, stop_embedded
from wegent.db.tables import TABLES
from wegent.settings import Settings

EMBEDDED_DATABASE = "wegent"
# What a pooled connection that the server has just terminated fails with.
DEAD_CONNECTION = (
    asyncpg.InternalClientError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.AdminShutdownError,
)

_current_engine: PostgresEngine | None = None


def current_engine() -> PostgresEngine | None:
    """The engine of the running database, for ``piccolo_conf`` and Piccolo's migrations."""
    return _current_engine


class DatabaseUnavailable(Exception):
    """The database could not be reached; the message is one line for an operator."""


class Database:
    """Owns the embedded server (if any), the Piccolo engine and its connection pool."""

    def __init__(self, settings: Settings, database_url: str | None = None) -> None:
        self.settings = settings
        self.url = database_url or settings.database_url
        self.engine: PostgresEngine | None = None
        self._server: ServerHandle | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        """The asyncpg pool; only valid between :meth:`connect` and :meth:`close`."""
        assert self.engine is not None and self.engine.pool is not None, "database not connected"
        pool: asyncpg.Pool = self.engine.pool
        return pool

    async def resolve_url(self) -> str:
        """The DSN to use: the configured one, or the embedded server's (started on demand)."""
        if self.url is None:
            self._server = await asyncio.to_thread(start_embedded, self.settings.data_dir)
            admin_url = self._server.get_uri()
            await ensure_database(admin_url, EMBEDDED_DATABASE)
            self.url = self._server.get_uri(database=EMBEDDED_DATABASE)
        return self.url

    async def connect(self) -> None:
        """Open the pool and bind the tables to this engine."""
        global _current_engine
        url = await self.resolve_url()
        engine = PostgresEngine(config={"dsn": url}, extensions=(), log_queries=False)
        try:
            await engine.start_connection_pool(**self.pool_options())
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            raise DatabaseUnavailable(f"cannot connect to the database: {_describe(exc)}") from None
        self.engine = engine
        bound: tuple[type[Table], ...] = (*TABLES, Migration)
        for table in bound:  # Piccolo caches an engine per table; bind them to this one
            table._meta.db = engine
        _current_engine = engine

    def pool_options(self) -> dict[str, Any]:
        """asyncpg pool arguments: sizes, timeouts, and the server-side statement timeout."""
        return {
            "min_size": min(self.settings.pool_min_size, self.settings.pool_max_size),
            "max_size": self.settings.pool_max_size,
            "timeout": self.settings.db_connect_timeout_s,
            "reset": rollback_if_open,
            "command_timeout": self.settings.statement_timeout_ms / 1000 + 5,
            "server_settings": {
                "statement_timeout": str(self.settings.statement_timeout_ms),
                "application_name": "wegent",
            },
        }

    async def close(self, *, keep_server: bool = False) -> None:
        """Close the pool, then release the embedded server unless asked to keep it."""
        global _current_engine
        if self.engine is not None and self.engine.pool is not None:
            await self.engine.close_connection_pool()
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

    def acquire(self) -> Any:
        """A pooled connection, waiting at most ``pool_acquire_timeout_s`` (then TimeoutError,
        answered 503): an exhausted pool refuses instead of queueing forever. With an idle
        connection at hand there is nothing to wait for, and no timer is armed (a timeout costs
        asyncpg a task per acquire)."""
        pool = self.pool
        if pool.get_idle_size():
            return pool.acquire()
        return pool.acquire(timeout=self.settings.pool_acquire_timeout_s)

    async def read(self, sql: str, *params: Any) -> list[asyncpg.Record]:
        """One read-only statement, retried once on a fresh connection if the one it got had
        just been killed by the server (restart, ``pg_terminate_backend``): the caller gets its
        rows, or a connection error when the database really is gone."""
        for attempt in (1, 2):
            try:
                async with self.acquire() as conn:
                    rows: list[asyncpg.Record] = await conn.fetch(sql, *params)
                    return rows
            except DEAD_CONNECTION:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def ping(self) -> bool:
        """True when the database answers a trivial query within the connect timeout."""
        try:
            async with asyncio.timeout(self.settings.db_connect_timeout_s):
                async with self.pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return False
        return True


async def rollback_if_open(conn: asyncpg.Connection) -> None:
    """Reset a connection returned to the pool only as far as this service can leave it dirty.

    asyncpg's default reset also runs RESET ALL, CLOSE ALL, UNLISTEN * and unlocks advisory
    locks: a round trip on every request for session state this service never changes.
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


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
