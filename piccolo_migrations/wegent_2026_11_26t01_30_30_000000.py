"""GIN indexes on ``refs`` so "who references this object?" is an index lookup; tasks' live
names keyed like kinds' (kind, namespace, name) so one set of statements serves both tables."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.table import Table

ID = "2026-11-26T01:30:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "GIN indexes on refs; tasks keyed by kind"

FORWARDS = [
    "CREATE INDEX kinds_refs ON kinds USING gin (refs jsonb_path_ops) WHERE deleted_at IS NULL",
    "CREATE INDEX tasks_refs ON tasks USING gin (refs jsonb_path_ops) WHERE deleted_at IS NULL",
    "ALTER TABLE tasks ADD CONSTRAINT tasks_kind CHECK (kind = 'Task')",
    "DROP INDEX tasks_live_name",
    "CREATE UNIQUE INDEX tasks_live_name ON tasks (kind, namespace, name) WHERE deleted_at IS NULL",
    "DROP INDEX tasks_trash",
    "CREATE INDEX tasks_trash ON tasks (kind, namespace, name, uid) WHERE deleted_at IS NOT NULL",
]
BACKWARDS = [
    "DROP INDEX tasks_trash",
    "CREATE INDEX tasks_trash ON tasks (namespace, name, uid) WHERE deleted_at IS NOT NULL",
    "DROP INDEX tasks_live_name",
    "CREATE UNIQUE INDEX tasks_live_name ON tasks (namespace, name) WHERE deleted_at IS NULL",
    "ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_kind",
    "DROP INDEX IF EXISTS tasks_refs",
    "DROP INDEX IF EXISTS kinds_refs",
]


class _Raw(Table):
    """A table-less handle for raw statements; they run in the migration's transaction."""


async def _run(statements: list[str]) -> None:
    _Raw._meta.db = engine_finder()
    for statement in statements:
        await _Raw.raw(statement)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="wegent", description=DESCRIPTION)

    async def run_forwards() -> None:
        await _run(FORWARDS)

    async def run_backwards() -> None:
        await _run(BACKWARDS)

    manager.add_raw(run_forwards)
    manager.add_raw_backwards(run_backwards)
    return manager
