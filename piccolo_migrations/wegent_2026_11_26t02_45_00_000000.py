"""GIN indexes without a pending list: a burst of writes must not slow every later lookup.

With ``fastupdate`` on, fresh entries wait in a pending list that every ``refs @>`` and label
lookup scans; after a burst of creates, a delete's referrer check took 40 times longer.
"""

from wegent.db.raw_steps import raw_migration

ID = "2026-11-26T02:45:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "GIN indexes with fastupdate off"

INDEXES = ("kinds_refs", "tasks_refs", "kinds_labels", "tasks_labels")
FORWARDS = [f"ALTER INDEX {name} SET (fastupdate = off)" for name in INDEXES]
BACKWARDS = [f"ALTER INDEX {name} RESET (fastupdate)" for name in INDEXES]


forwards = raw_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
