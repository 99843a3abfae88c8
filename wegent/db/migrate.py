"""Apply, check, list or undo the Piccolo migrations, serialised across processes by a lock.

Piccolo finds its engine through a configuration module named by ``PICCOLO_CONF``: the
service's is :mod:`wegent.db.piccolo_conf`, installed inside the package (the repository's
top-level ``piccolo_conf.py`` only hands it to Piccolo's own command line).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
from collections.abc import AsyncIterator
from typing import NamedTuple

import asyncpg
from piccolo.apps.migrations.commands.backwards import run_backwards
from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.conf.apps import ENVIRONMENT_VARIABLE

from wegent.db.engine import Database
from wegent.db.piccolo_app import APP_NAME, MIGRATIONS_FOLDER

CONF_MODULE = "wegent.db.piccolo_conf"
ZERO = "zero"  # ``--to zero``: before the first migration
_LOCK_KEY = 0x57E6E47  # any constant shared by every process


class MigrationError(Exception):
    """A migration failed or cannot be done; the message is one line for an operator."""


class SchemaBehind(MigrationError):
    """The database lacks migrations this code needs (``WEGENT_MIGRATE_ON_START=false``)."""

    def __init__(self, pending: list[str]) -> None:
        self.pending = pending
        super().__init__(
            f"the database schema is behind: run `wegent migrate` (pending: {', '.join(pending)})"
        )


class Known(NamedTuple):
    """A migration of this code: its ID and description."""

    id: str
    description: str


@functools.cache
def known_migrations() -> tuple[Known, ...]:
    """The migrations this code has, oldest first, found the way Piccolo finds them."""
    modules = BaseMigrationManager().get_migration_modules(str(MIGRATIONS_FOLDER))
    return tuple(
        Known(migration_id, str(getattr(modules[migration_id], "DESCRIPTION", "")))
        for migration_id in sorted(modules)
    )


async def applied_migrations(db: Database) -> list[str]:
    """The IDs recorded in Piccolo's ``migration`` table for this app, in the order they ran
    (Piccolo's order, which ``--backwards`` follows); none before the first migration."""
    async with db.pool.acquire() as conn:
        if await conn.fetchval("SELECT to_regclass('migration')") is None:
            return []
        rows = await conn.fetch(
            "SELECT name FROM migration WHERE app_name = $1 ORDER BY ran_on, id", APP_NAME
        )
    return [row["name"] for row in rows]


def pending(applied: list[str]) -> list[str]:
    """The migrations of this code not applied yet, oldest first."""
    done = set(applied)
    return [known.id for known in known_migrations() if known.id not in done]


async def check_schema(db: Database) -> None:
    """Raise :class:`SchemaBehind` when a migration of this code is not applied."""
    missing = pending(await applied_migrations(db))
    if missing:
        raise SchemaBehind(missing)


async def prepare_schema(db: Database) -> None:
    """At start: migrate, or with ``WEGENT_MIGRATE_ON_START=false`` only check the schema."""
    if db.settings.migrate_on_start:
        await migrate(db)
    else:
        await check_schema(db)


def undo_plan(applied: list[str], to: str) -> list[str]:
    """The migrations ``--backwards --to`` undoes, newest first: those applied after ``to``
    (``zero``: every one), ``to`` itself staying applied."""
    if to == ZERO:
        return applied[::-1]
    if to not in applied:
        raise MigrationError(
            f"--to {to} is not an applied migration (`wegent migrate --list` shows them; "
            f"--to {ZERO} undoes all)"
        )
    return applied[applied.index(to) + 1 :][::-1]


def use_service_config() -> None:
    """Point Piccolo at the service's configuration (its engine is the one connected)."""
    os.environ[ENVIRONMENT_VARIABLE] = CONF_MODULE


@contextlib.asynccontextmanager
async def _locked(db: Database) -> AsyncIterator[None]:
    """One migrating process at a time: a transaction-level advisory lock, held by a
    transaction left open on a connection of its own (outside the pool Piccolo migrates with,
    so even a pool of one connection can migrate). Ending the transaction or losing the
    connection releases it, also behind PgBouncer in transaction mode, where a session lock
    could stay with a server connection handed to another client."""
    conn = await asyncpg.connect(
        db.url, timeout=db.settings.db_connect_timeout_s, statement_cache_size=0
    )
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            yield
    finally:
        await conn.close()


async def migrate(db: Database, *, quiet: bool = True) -> str:
    """Run pending migrations and return Piccolo's report."""
    use_service_config()
    out = io.StringIO()
    async with _locked(db):
        with contextlib.redirect_stdout(out) if quiet else contextlib.nullcontext():
            result = await run_forwards(APP_NAME, migration_id="all")
    if not result.success:
        raise MigrationError(result.message or "migration failed")
    return out.getvalue()


async def undo(db: Database, to: str) -> str:
    """Undo the migrations applied after ``to`` (``zero``: all of them), newest first, and
    return Piccolo's report; ``to`` stays applied."""
    use_service_config()
    out = io.StringIO()
    async with _locked(db):
        plan = undo_plan(await applied_migrations(db), to)
        if not plan:
            if to == ZERO:
                return "nothing to undo: no migration is applied\n"
            return f"nothing to undo: {to} is the newest applied migration\n"
        with contextlib.redirect_stdout(out):
            result = await run_backwards(APP_NAME, migration_id=plan[-1], auto_agree=True)
    if not result.success:
        raise MigrationError(result.message or "undoing the migrations failed")
    return out.getvalue()
