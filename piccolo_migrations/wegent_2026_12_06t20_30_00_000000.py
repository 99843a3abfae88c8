"""Namespaces as the core ``v1`` ``Namespace`` resource (API.md §14): a ``uid`` and a
``resourceVersion`` from the store's one sequence, for the existing rows too."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import UUID, BigInt

from wegent.db.raw_steps import raw_migration

ID = "2026-12-06T20:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "namespaces get a uid and a resource version"

FORWARDS = [
    "ALTER TABLE namespaces ADD COLUMN uid uuid NOT NULL DEFAULT gen_random_uuid()",
    "ALTER TABLE namespaces ADD CONSTRAINT namespaces_uid_key UNIQUE (uid)",
    "ALTER TABLE namespaces ADD COLUMN resource_version bigint NOT NULL "
    "DEFAULT nextval('resource_version_seq')",
]
BACKWARDS = [
    "ALTER TABLE namespaces DROP COLUMN resource_version",
    "ALTER TABLE namespaces DROP COLUMN uid",
]


def schema(manager: MigrationManager) -> None:
    """What FORWARDS does to the tables, for Piccolo's schema snapshot (not run)."""
    for name, column_class, params in (
        ("uid", UUID, {"unique": True}),
        ("resource_version", BigInt, {}),
    ):
        manager.add_column(
            table_class_name="Namespace",
            tablename="namespaces",
            column_name=name,
            column_class=column_class,
            params=params,
        )


forwards = raw_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS, schema)
