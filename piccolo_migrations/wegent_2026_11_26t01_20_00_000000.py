"""What Piccolo cannot express: the resource-version sequence, byte-order names, partial
unique indexes, listing and GIN indexes, the members' unique pair, and the ``public`` namespace.
"""

from wegent.db.raw_steps import raw_migration

ID = "2026-11-26T01:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "indexes, sequence, byte-order names and the public namespace"

FORWARDS = [
    "CREATE SEQUENCE IF NOT EXISTS resource_version_seq AS bigint",
    'ALTER TABLE kinds ALTER COLUMN name TYPE varchar(63) COLLATE "C"',
    'ALTER TABLE tasks ALTER COLUMN name TYPE varchar(63) COLLATE "C"',
    # Uniqueness of live names, and the index that lists one kind of one namespace in name order.
    "CREATE UNIQUE INDEX kinds_live_name ON kinds (kind, namespace, name) WHERE deleted_at IS NULL",
    "CREATE INDEX kinds_trash ON kinds (kind, namespace, name, uid) WHERE deleted_at IS NOT NULL",
    "CREATE INDEX kinds_live_all ON kinds (kind, name, uid) WHERE deleted_at IS NULL",
    "CREATE INDEX kinds_labels ON kinds USING gin (labels)",
    "CREATE UNIQUE INDEX tasks_live_name ON tasks (namespace, name) WHERE deleted_at IS NULL",
    "CREATE INDEX tasks_trash ON tasks (namespace, name, uid) WHERE deleted_at IS NOT NULL",
    "CREATE INDEX tasks_live_all ON tasks (name, uid) WHERE deleted_at IS NULL",
    "CREATE INDEX tasks_phase ON tasks (namespace, phase, name) WHERE deleted_at IS NULL",
    "CREATE INDEX tasks_team ON tasks (team_namespace, team_name) WHERE deleted_at IS NULL",
    "CREATE INDEX tasks_labels ON tasks USING gin (labels)",
    "ALTER TABLE namespace_members ADD CONSTRAINT namespace_members_pair "
    "UNIQUE (namespace, member)",
    "CREATE INDEX namespace_members_member ON namespace_members (member)",
    "ALTER TABLE users ADD CONSTRAINT users_role CHECK (role IN ('admin', 'user'))",
    "ALTER TABLE namespace_members ADD CONSTRAINT namespace_members_role "
    "CHECK (role IN ('view', 'edit', 'admin'))",
    "INSERT INTO namespaces (name, owner, personal, created_at) "
    "VALUES ('public', NULL, false, now()) ON CONFLICT (name) DO NOTHING",
]

BACKWARDS = [
    "DELETE FROM namespaces WHERE name = 'public'",
    "ALTER TABLE namespace_members DROP CONSTRAINT IF EXISTS namespace_members_role",
    "ALTER TABLE users DROP CONSTRAINT IF EXISTS users_role",
    "DROP INDEX IF EXISTS namespace_members_member",
    "ALTER TABLE namespace_members DROP CONSTRAINT IF EXISTS namespace_members_pair",
    "DROP INDEX IF EXISTS tasks_labels",
    "DROP INDEX IF EXISTS tasks_team",
    "DROP INDEX IF EXISTS tasks_phase",
    "DROP INDEX IF EXISTS tasks_live_all",
    "DROP INDEX IF EXISTS tasks_trash",
    "DROP INDEX IF EXISTS tasks_live_name",
    "DROP INDEX IF EXISTS kinds_labels",
    "DROP INDEX IF EXISTS kinds_live_all",
    "DROP INDEX IF EXISTS kinds_trash",
    "DROP INDEX IF EXISTS kinds_live_name",
    "ALTER TABLE tasks ALTER COLUMN name TYPE varchar(63)",
    "ALTER TABLE kinds ALTER COLUMN name TYPE varchar(63)",
    "DROP SEQUENCE IF EXISTS resource_version_seq",
]


forwards = raw_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
