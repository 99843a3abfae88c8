"""GIN indexes on ``refs`` so "who references this object?" is an index lookup; tasks' live
names keyed like kinds' (kind, namespace, name) so one set of statements serves both tables."""

from wegent.db.raw_steps import raw_migration

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


forwards = raw_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
