"""Objects belong to a namespace that exists: a foreign key from ``kinds`` and ``tasks`` to
``namespaces.name``. A write into a namespace holds a share lock on its row (the key check) and
deleting the namespace takes the row's exclusive lock, so they cannot cross: no live object is
left in a deleted namespace, and a namespace created again under the same name starts empty
(its trash goes with it, by the cascade). The namespace indexes serve that cascade and the
delete's count of live objects, which scanned the whole table before.
"""

from wegent.db.raw_steps import raw_migration

ID = "2026-11-29T20:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "objects reference their namespace"

FORWARDS = [
    "DELETE FROM kinds k WHERE NOT EXISTS (SELECT 1 FROM namespaces n WHERE n.name = k.namespace)",
    "DELETE FROM tasks t WHERE NOT EXISTS (SELECT 1 FROM namespaces n WHERE n.name = t.namespace)",
    "CREATE INDEX kinds_namespace ON kinds (namespace)",
    "CREATE INDEX tasks_namespace ON tasks (namespace)",
    "ALTER TABLE kinds ADD CONSTRAINT kinds_namespace_fk FOREIGN KEY (namespace) "
    "REFERENCES namespaces (name) ON DELETE CASCADE",
    "ALTER TABLE tasks ADD CONSTRAINT tasks_namespace_fk FOREIGN KEY (namespace) "
    "REFERENCES namespaces (name) ON DELETE CASCADE",
]
BACKWARDS = [
    "ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_namespace_fk",
    "ALTER TABLE kinds DROP CONSTRAINT IF EXISTS kinds_namespace_fk",
    "DROP INDEX IF EXISTS tasks_namespace",
    "DROP INDEX IF EXISTS kinds_namespace",
]

forwards = raw_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
