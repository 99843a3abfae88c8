"""API tokens and service accounts (API.md §16).

- ``api_tokens``: a user's long-lived credentials. Only a SHA-256 digest of the secret is kept,
  under a unique index (the lookup); ``prefix`` (the secret's first 8 characters) lets people
  tell tokens apart. ``namespaces`` (NULL: every namespace its user may use) and ``role``
  (NULL: no cap) narrow what the token may do. Names are unique per user.
- ``users.service_account``: a user that cannot log in with a password.
- Revoking a token (deleting its row) moves the watch's access counter, so open watches made
  with it end (docs/watch.md).
"""

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

forwards = raw_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
