"""Task dispatch (API.md §17): the claimable tasks of one namespace, in claim order.

A claim by a caller who may edit one namespace (or who names one) reads ``namespace = $n``.
``tasks_pending (created_at, id)`` answers it only by reading past the other namespaces'
PENDING tasks, so the planner often took ``tasks_phase (kind, namespace, phase, name)``
instead: every PENDING task of the namespace, then a sort. That costs the namespace's backlog,
not the batch, and with statistics older than a burst of new tasks (autovacuum analyzes a
table after a tenth of it changed) it stayed the plan while the backlog grew: with 100,000
finished tasks and a burst of 100,000 new ones in the namespace, a claim of 10 read 100,020
rows and 34,847 buffers in 190 ms, against 10 rows and 1.6 ms once analyzed. With the
namespace first, one namespace's claim reads its oldest ``batch`` entries in order, whatever
the statistics say (the same burst over 1,000,000 finished tasks, statistics stale: 10 rows,
513 buffers, 3.9 ms; ``tests/resources/test_claim_scale.py`` keeps it so).

- ``tasks_pending_ns``: PENDING tasks of a namespace, oldest first.
- ``tasks_leased_ns``: RUNNING tasks of a namespace under a lease, soonest to expire first.

The global ``tasks_pending`` and ``tasks_leased`` stay for claims over every namespace.
"""

from wegent.db.raw_steps import raw_migration

ID = "2026-12-07T04:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "task dispatch: per-namespace claim indexes"

FORWARDS = [
    "CREATE INDEX tasks_pending_ns ON tasks (namespace, created_at, id) "
    "WHERE deleted_at IS NULL AND phase = 'PENDING'",
    "CREATE INDEX tasks_leased_ns ON tasks (namespace, lease_expires_at, id) "
    "WHERE deleted_at IS NULL AND phase = 'RUNNING' AND lease_expires_at IS NOT NULL",
]
BACKWARDS = [
    "DROP INDEX tasks_leased_ns",
    "DROP INDEX tasks_pending_ns",
]

forwards = raw_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
