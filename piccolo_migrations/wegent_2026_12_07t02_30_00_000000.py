"""API tokens and service accounts (API.md §16).

- ``api_tokens``: a user's long-lived credentials. Only a SHA-256 digest of the secret is kept,
  under a unique index (the lookup); ``prefix`` (the secret's first 8 characters) lets people
  tell tokens apart. ``namespaces`` (NULL: every namespace its user may use) and ``role``
  (NULL: no cap) narrow what the token may do. Names are unique per user.
- ``users.service_account``: a user that cannot log in with a password.
- Revoking a token (deleting its row) moves the watch's access counter, so open watches made
  with it end (docs/watch.md).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import OnDelete
from piccolo.columns.column_types import (
    Array,
    BigSerial,
    Boolean,
    Bytea,
    ForeignKey,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from wegent.db.raw_steps import raw_migration

ID = "2026-12-07T02:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "API tokens and service accounts"

FORWARDS = [
    "ALTER TABLE users ADD COLUMN service_account boolean NOT NULL DEFAULT false",
    "CREATE TABLE api_tokens ("
    "id bigserial PRIMARY KEY, "
    "owner integer NOT NULL REFERENCES users (id) ON DELETE CASCADE, "
    "name varchar(63) NOT NULL, "
    "prefix varchar(8) NOT NULL, "
    "secret_hash bytea NOT NULL, "
    "namespaces text[], "
    "role varchar(8), "
    "created_at timestamptz NOT NULL, "
    "expires_at timestamptz, "
    "last_used_at timestamptz)",
    "CREATE UNIQUE INDEX api_tokens_owner_name ON api_tokens (owner, name)",
    "CREATE UNIQUE INDEX api_tokens_secret_hash ON api_tokens (secret_hash)",
    "CREATE TRIGGER api_tokens_access AFTER DELETE ON api_tokens "
    "FOR EACH STATEMENT EXECUTE FUNCTION wegent_access_changed()",
]
BACKWARDS = [
    "DROP TABLE api_tokens",
    "ALTER TABLE users DROP COLUMN service_account",
]


class User(Table, tablename="users"):
    """The referenced table as it was here (only its key matters)."""

    id = Serial(primary_key=True)


API_TOKEN_COLUMNS = (
    ("id", BigSerial, {"primary_key": True}),
    ("owner", ForeignKey, {"references": User, "null": False, "on_delete": OnDelete.cascade}),
    ("name", Varchar, {"length": 63}),
    ("prefix", Varchar, {"length": 8}),
    ("secret_hash", Bytea, {"unique": True}),
    ("namespaces", Array, {"base_column": Text(), "null": True, "default": None}),
    ("role", Varchar, {"length": 8, "null": True, "default": None}),
    ("created_at", Timestamptz, {}),
    ("expires_at", Timestamptz, {"null": True, "default": None}),
    ("last_used_at", Timestamptz, {"null": True, "default": None}),
)


def schema(manager: MigrationManager) -> None:
    """What FORWARDS does to the tables, for Piccolo's schema snapshot (not run)."""
    manager.add_column(
        table_class_name="User",
        tablename="users",
        column_name="service_account",
        column_class=Boolean,
        params={"default": False},
    )
    manager.add_table(class_name="ApiToken", tablename="api_tokens")
    for name, column_class, params in API_TOKEN_COLUMNS:
        manager.add_column(
            table_class_name="ApiToken",
            tablename="api_tokens",
            column_name=name,
            column_class=column_class,
            params=params,
        )


forwards = raw_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS, schema)
