"""One row of failed logins per (account, client address): the key the throttle counts by."""

from wegent.db.raw_steps import raw_migration

ID = "2026-11-29T20:37:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "login failures: unique per account and address"

FORWARDS = [
    "ALTER TABLE login_failures ADD CONSTRAINT login_failures_pair UNIQUE (account, address)",
]
BACKWARDS = [
    "ALTER TABLE login_failures DROP CONSTRAINT IF EXISTS login_failures_pair",
]

forwards = raw_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
