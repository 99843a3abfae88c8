"""Tasks' filter columns derived by the database from the envelope, so they can never drift:
phase and progress from ``status``, the team from ``spec.teamRef``; indexes for the filters."""

from wegent.db.raw_steps import raw_migration

ID = "2026-11-26T01:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "tasks: generated phase, progress and team columns, filter indexes"

FORWARDS = [
    "DROP INDEX IF EXISTS tasks_phase",
    "DROP INDEX IF EXISTS tasks_team",
    "ALTER TABLE tasks DROP COLUMN phase, DROP COLUMN progress, "
    "DROP COLUMN team_namespace, DROP COLUMN team_name",
    "ALTER TABLE tasks "
    "ADD COLUMN phase varchar(16) GENERATED ALWAYS AS (status ->> 'phase') STORED, "
    "ADD COLUMN progress integer GENERATED ALWAYS AS ((status ->> 'progress')::integer) STORED, "
    "ADD COLUMN team_namespace varchar(63) "
    "GENERATED ALWAYS AS (spec -> 'teamRef' ->> 'namespace') STORED, "
    "ADD COLUMN team_name varchar(63) GENERATED ALWAYS AS (spec -> 'teamRef' ->> 'name') STORED",
    "CREATE INDEX tasks_phase ON tasks (kind, namespace, phase, name) WHERE deleted_at IS NULL",
    "CREATE INDEX tasks_team ON tasks (kind, namespace, team_name, name) WHERE deleted_at IS NULL",
]
BACKWARDS = [
    "DROP INDEX IF EXISTS tasks_phase",
    "DROP INDEX IF EXISTS tasks_team",
    "ALTER TABLE tasks DROP COLUMN phase, DROP COLUMN progress, "
    "DROP COLUMN team_namespace, DROP COLUMN team_name",
    "ALTER TABLE tasks ADD COLUMN phase varchar(16) NOT NULL DEFAULT 'PENDING', "
    "ADD COLUMN progress integer NOT NULL DEFAULT 0, "
    "ADD COLUMN team_namespace varchar(63) NOT NULL DEFAULT '', "
    "ADD COLUMN team_name varchar(63) NOT NULL DEFAULT ''",
    "CREATE INDEX tasks_phase ON tasks (namespace, phase, name) WHERE deleted_at IS NULL",
    "CREATE INDEX tasks_team ON tasks (team_namespace, team_name) WHERE deleted_at IS NULL",
]


forwards = raw_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
