"""At most one live default Device per namespace, enforced by the database (API.md §2), and the
``system`` namespace (§3), seeded empty."""

from wegent.db.raw_steps import raw_migration

ID = "2026-11-29T22:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "one default Device per namespace; the system namespace"

FORWARDS = [
    "CREATE UNIQUE INDEX kinds_one_device_isdefault ON kinds (namespace) "
    "WHERE kind = 'Device' AND deleted_at IS NULL AND (spec ->> 'isDefault') = 'true'",
    "INSERT INTO namespaces (name, owner, personal, created_at) "
    "VALUES ('system', NULL, false, now()) ON CONFLICT (name) DO NOTHING",
]
BACKWARDS = [
    "DELETE FROM namespaces WHERE name = 'system'",
    "DROP INDEX IF EXISTS kinds_one_device_isdefault",
]

forwards = raw_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
