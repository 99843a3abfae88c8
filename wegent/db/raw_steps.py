"""Migrations made of raw SQL: what Piccolo cannot express (partial and GIN indexes, sequences,
generated columns, constraints between tables), run in the migrating engine's transaction.

Piccolo knows the schema only from the operations its migrations record (``add_table``,
``add_column`` …): its schema snapshot adds them up, and ``piccolo migrations new --auto``
compares the snapshot with the tables. A raw migration that changes the tables Piccolo knows
(``wegent/db/tables.py``) also records what its SQL did, with ``schema``: those operations feed
the snapshot and are never run (:class:`RawMigrationManager`), so the SQL stays the one thing
that changes the database. tests/db/test_migrations.py checks both sides: Piccolo's own
autogenerator finds no difference between the tables and the migrations, and the database has
exactly the tables' columns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.table import Table


class _Raw(Table):
    """A table-less handle for raw statements; they run in the migration's transaction."""


async def run(statements: Sequence[str]) -> None:
    engine = engine_finder()  # the engine migrating now, whose transaction we join
    assert engine is not None, "no Piccolo engine is configured"
    _Raw._meta.db = engine
    for statement in statements:
        await _Raw.raw(statement)


class RawMigrationManager(MigrationManager):
    """A migration whose SQL is its raw steps. The table operations it holds describe what
    that SQL does, for Piccolo's schema snapshot only: running it (either way) runs the raw
    steps and nothing else, in Piccolo's transaction."""

    async def run(self, backwards: bool = False) -> None:
        steps_only = MigrationManager(
            migration_id=self.migration_id,
            app_name=self.app_name,
            description=self.description,
            preview=self.preview,
            raw=self.raw,
            raw_backwards=self.raw_backwards,
        )
        await steps_only.run(backwards=backwards)


def raw_migration(
    migration_id: str,
    description: str,
    forwards: Sequence[str],
    backwards: Sequence[str],
    schema: Callable[[MigrationManager], None] | None = None,
) -> Callable[[], Awaitable[MigrationManager]]:
    """The ``forwards`` coroutine function of a migration module made of raw statements only.

    ``schema`` records on the manager, as Piccolo operations, what ``forwards`` does to the
    tables Piccolo knows (see the module docstring); they are not run.

    Statements are plain SQL with no braces: Piccolo's raw queries read "{}" as a placeholder.
    """

    async def build() -> MigrationManager:
        manager = RawMigrationManager(
            migration_id=migration_id, app_name="wegent", description=description
        )

        async def run_forwards() -> None:
            await run(forwards)

        async def run_backwards() -> None:
            await run(backwards)

        manager.add_raw(run_forwards)
        manager.add_raw_backwards(run_backwards)
        if schema is not None:
            schema(manager)
        return manager

    return build
