"""GIN indexes without a pending list: a burst of writes must not slow every later lookup.

With ``fastupdate`` on, fresh entries wait in a pending list that every ``refs @>`` and label
lookup scans; after a burst of creates, a delete's referrer check took 40 times longer.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.table import Table

ID = "2026-11-26T02:45:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "GIN indexes with fastupdate off"

INDEXES = ("kinds_refs", "tasks_refs", "kinds_labels", "tasks_labels")
FORWARDS = [f"ALTER INDEX {name} SET (fastupdate = off)" for name in INDEXES]
BACKWARDS = [f"ALTER INDEX {name} RESET (fastupdate)" for name in INDEXES]


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
