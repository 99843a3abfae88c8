"""Seed the ``public`` namespace with the built-in Shells (API.md §3)."""

from wegent.db.raw_steps import raw_migration

ID = "2026-11-26T01:35:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "built-in public Shells"

SHELLS = {
    "Chat": "direct_chat",
    "ClaudeCode": "local_engine",
    "Agno": "local_engine",
    "Dify": "external_api",
}
# No braces in the SQL text: Piccolo's raw queries read "{}" as a placeholder.
INSERT = (
    "INSERT INTO kinds (uid, kind, namespace, name, labels, annotations, spec, status, refs, "
    "resource_version, generation, created_by, updated_by, created_at, updated_at) "
    "VALUES (gen_random_uuid(), 'Shell', 'public', '%(name)s', "
    "jsonb_build_object('type', '%(label)s'), jsonb_build_object(), "
    "jsonb_build_object('shellType', '%(name)s'), "
    "jsonb_build_object('state', 'Available', 'message', null), jsonb_build_array(), "
    "nextval('resource_version_seq'), 1, 'system', 'system', now(), now()) "
    "ON CONFLICT DO NOTHING"
)
FORWARDS = [INSERT % {"name": name, "label": label} for name, label in SHELLS.items()]
BACKWARDS = [
    "DELETE FROM kinds WHERE kind = 'Shell' AND namespace = 'public' AND created_by = 'system' "
    "AND name IN ('Chat', 'ClaudeCode', 'Agno', 'Dify')"
]


forwards = raw_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
