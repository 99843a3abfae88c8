"""Migrations made of raw SQL: what Piccolo cannot express (partial and GIN indexes, sequences,
generated columns, constraints between tables), run in the migrating engine's transaction."""

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


def raw_migration(
    migration_id: str, description: str, forwards: Sequence[str], backwards: Sequence[str]
) -> Callable[[], Awaitable[MigrationManager]]:
    """The ``forwards`` coroutine function of a migration module made of raw statements only.

    Statements are plain SQL with no braces: Piccolo's raw queries read "{}" as a placeholder.
    """

    async def build() -> MigrationManager:
        manager = MigrationManager(
            migration_id=migration_id, app_name="wegent", description=description
        )

        async def run_forwards() -> None:
            await run(forwards)

        async def run_backwards() -> None:
            await run(backwards)

        manager.add_raw(run_forwards)
        manager.add_raw_backwards(run_backwards)
        return manager

    return build
