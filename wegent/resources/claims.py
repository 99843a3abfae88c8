"""Task dispatch (API.md §17): executors claim tasks with leases, in one statement per batch.

A claim takes the oldest claimable tasks — PENDING ones, and RUNNING ones whose lease has
expired — with ``FOR UPDATE SKIP LOCKED``: concurrent claimers lock disjoint rows and never wait
for each other, and a task is claimed once (its row is locked until the claim commits, and then
it is RUNNING under a live lease). The same statement fails, first, the tasks whose lease
expired ``spec.maxAttempts`` times, so no timer is needed: a task that can no longer be run is
FAILED at the latest when a claim would have taken it.

Every lease time is PostgreSQL's clock (``now()``), written and compared by the statements, so
the service's processes need no agreement on time.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from wegent.names import NAME_PATTERN, NAMESPACE_PATTERN

#: Printable ASCII without spaces: a host name, a pod name, ``pool-3/worker-12``...
Executor = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=253,
        pattern=r"^[!-~]+$",
        description="Who runs the task: any printable ASCII without spaces (a pod or host "
        "name, a worker id), 1-253 characters.",
    ),
]
NamespaceName = Annotated[str, msgspec.Meta(min_length=1, max_length=63, pattern=NAMESPACE_PATTERN)]
LeaseSeconds = Annotated[
    int,
    msgspec.Meta(ge=10, le=3600, description="How long the lease lasts without a heartbeat."),
]


class ClaimRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/v1/tasks/claim``: which tasks an executor takes, and for how long."""

    executor: Executor
    leaseSeconds: LeaseSeconds = 300
    max: Annotated[int, msgspec.Meta(ge=1, le=100, description="Tasks to take at most.")] = 1
    namespaces: (
        Annotated[
            list[
                Annotated[str, msgspec.Meta(min_length=1, max_length=63, pattern=NAMESPACE_PATTERN)]
            ],
            msgspec.Meta(
                min_length=1,
                max_length=100,
                description="Only these namespaces (default: every one the caller may edit).",
            ),
        ]
        | None
    ) = None
    labelSelector: (
        Annotated[str, msgspec.Meta(max_length=4096, description="Only tasks it selects.")] | None
    ) = None
    team: (
        Annotated[
            str,
            msgspec.Meta(
                min_length=1,
                max_length=63,
                pattern=NAME_PATTERN,
                description="Only the tasks of Teams of this name.",
            ),
        ]
        | None
    ) = None


class Heartbeat(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST …/tasks/{name}/heartbeat``: the lease holder extends its lease, and may report
    progress (which never goes down)."""

    executor: Executor
    leaseSeconds: LeaseSeconds = 300
    progress: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None


class ClaimedList(msgspec.Struct):
    """What a claim answers: the tasks taken, oldest first (possibly none)."""

    items: list[msgspec.Raw]


#: RFC 3339 UTC, to the second, as every time the server writes (``…Z``).
_INSTANT = """to_char({at} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
NOW = _INSTANT.format(at="now()")


def lease_until(seconds_param: str) -> str:
    """The SQL text of the end of a lease starting now, ``seconds_param`` seconds long."""
    return _INSTANT.format(at=f"(now() + make_interval(secs => {seconds_param}))")


def claim_statement(where: list[str], first_param: int) -> str:
    """One claim batch over the tasks matching ``where`` (the list filters' conditions and
    their parameters, numbered before ``first_param``). Parameters from ``first_param`` on:
    the executor, the lease seconds, the batch size, the caller's name. Rows: each task
    claimed (``body``; ``lapsed`` when its previous lease had expired), and each task failed
    for too many expired leases (``body`` NULL)."""
    executor, seconds, batch, by = (f"${first_param + i}" for i in range(4))
    matching = " AND ".join(where)
    expired = f"{matching} AND phase = 'RUNNING' AND lease_expires_at < now()"
    return f"""
WITH exhausted AS (
    SELECT id FROM tasks WHERE {expired} AND attempt >= max_attempts
    ORDER BY lease_expires_at, id LIMIT 100 FOR UPDATE SKIP LOCKED
), failed AS (
    UPDATE tasks t SET status = (t.status - 'leaseExpiresAt') || jsonb_build_object(
        'phase', 'FAILED', 'completedAt', {NOW},
        'errorMessage', format('the executor''s lease expired %s times (spec.maxAttempts is %s)',
            t.attempt, t.max_attempts)),
        updated_by = {by}, updated_at = now()
    FROM exhausted e WHERE t.id = e.id
    RETURNING t.id
), pending AS (
    SELECT id, created_at FROM tasks WHERE {matching} AND phase = 'PENDING'
    ORDER BY created_at, id LIMIT {batch} FOR UPDATE SKIP LOCKED
), lapsed AS (
    SELECT id, created_at FROM tasks WHERE {expired} AND attempt < max_attempts
    ORDER BY lease_expires_at, id LIMIT {batch} FOR UPDATE SKIP LOCKED
), chosen AS (
    SELECT id FROM (SELECT * FROM pending UNION ALL SELECT * FROM lapsed) c
    ORDER BY created_at, id LIMIT {batch}
), claimed AS (
    UPDATE tasks t SET status = t.status || jsonb_build_object(
            'phase', 'RUNNING', 'executor', {executor}::text,
            'leaseExpiresAt', {lease_until(f"{seconds}::int")}, 'attempt', t.attempt + 1,
            'startedAt', COALESCE(t.status ->> 'startedAt', {NOW})),
        updated_by = {by}, updated_at = now()
    FROM chosen c WHERE t.id = c.id
    RETURNING t.created_at, t.id, t.body, t.attempt
)
SELECT created_at, id, body, attempt > 1 AS lapsed FROM claimed
UNION ALL SELECT NULL, id, NULL, true FROM failed
"""
