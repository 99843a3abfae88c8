"""Apply or undo the Piccolo migrations, serialised across workers by an advisory lock."""

from __future__ import annotations

import contextlib
import io

import asyncpg
from piccolo.apps.migrations.commands.backwards import run_backwards
from piccolo.apps.migrations.commands.forwards import run_forwards

from wegent.db.engine import Database

APP_NAME = "wegent"
_LOCK_KEY = 0x57E6E47  # any constant shared by every worker


class MigrationError(Exception):
    """A migration failed; the message says which."""


async def migrate(db: Database, *, backwards: bool = False, quiet: bool = True) -> str:
    """Run pending migrations (or undo them all) and return Piccolo's report."""
    out = io.StringIO()
    # The lock lives on a connection of its own, outside the pool that Piccolo migrates with,
    # so even a pool of one connection can migrate.
    lock_conn = await asyncpg.connect(db.url, timeout=db.settings.db_connect_timeout_s)
    try:
        await lock_conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        with contextlib.redirect_stdout(out) if quiet else contextlib.nullcontext():
            if backwards:
                result = await run_backwards(APP_NAME, migration_id="all", auto_agree=True)
            else:
                result = await run_forwards(APP_NAME, migration_id="all")
    finally:
        await lock_conn.close()  # closing releases the advisory lock
    if not result.success:
        raise MigrationError(result.message or "migration failed")
    return out.getvalue()
