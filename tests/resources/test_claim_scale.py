"""A claim costs its batch, not the table: 1,000,000 finished tasks vs 1,000 (API.md §17).

Executors claim in a loop, and the tasks table only grows: every task ever run stays in it,
finished. The claim must not read them. The proof is the plan of the service's own claim
statement (``claim_query``, as ``TaskService.claim`` builds it), under ``EXPLAIN (ANALYZE,
BUFFERS)`` in a transaction that is rolled back: the candidates come from the partial indexes
``tasks_pending`` and ``tasks_leased`` only (no sequential scan of ``tasks``; the rows they
point to are then updated through the primary key), and the rows and buffers it touches are the
same with a million finished tasks as with a thousand. The databases are filled in bulk, the
way ``test_list_scale`` fills its own (the same helper).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pytest

from tests.resources.test_list_scale import filled, nodes
from wegent.db.engine import Database
from wegent.resources.claims import ClaimRequest
from wegent.resources.tasks import claim_query

#: Finished tasks ``$1`` to ``$2`` over ``$3`` namespaces, oldest first, as a claim left them.
FINISHED = """
INSERT INTO tasks (uid, kind, namespace, name, labels, annotations, spec, status, refs,
                   resource_version, generation, created_by, updated_by, created_at, updated_at)
SELECT gen_random_uuid(), 'Task', 'ns-' || (i % $3), 't-' || lpad(i::text, 7, '0'), '{}', '{}',
       jsonb_build_object('title', 'task ' || i, 'prompt', 'Please do it.',
                          'teamRef', jsonb_build_object('name', 't', 'namespace', 'ns-' || (i % $3))),
       jsonb_build_object('phase', 'COMPLETED', 'progress', 100, 'result', NULL,
                          'errorMessage', NULL, 'startedAt', '2026-01-01T00:00:00Z',
                          'completedAt', '2026-01-01T00:01:00Z', 'executor', 'ex-' || (i % 16),
                          'attempt', 1),
       jsonb_build_array('Team/ns-' || (i % $3) || '/t'), nextval('resource_version_seq'), 1,
       'fill', 'fill', now() - make_interval(secs => $2 - i + 3600), now()
FROM generate_series($1::int, $2::int) AS i
"""
#: ``$4`` tasks ``$2-1`` … in namespace ``$1`` with status ``$3``, written the ordinary way.
CLAIMABLE = """
INSERT INTO tasks (kind, namespace, name, spec, status, refs, created_by, updated_by)
SELECT 'Task', $1::text, $2::text || '-' || i,
       jsonb_build_object('title', 'task', 'prompt', 'Please do it.',
                          'teamRef', jsonb_build_object('name', 't', 'namespace', $1::text)),
       $3::jsonb, jsonb_build_array('Team/' || $1::text || '/t'), 'fill', 'fill'
FROM generate_series(1, $4::int) AS i
"""
RUNNING = {"phase": "RUNNING", "progress": 0, "startedAt": "2026-01-01T00:00:00Z"}
#: In each claimable namespace: what a claim may take (PENDING, expired leases), what it must
#: fail (expired leases out of attempts), and running leases it must leave alone.
ARRANGED = [
    ("pending", {"phase": "PENDING", "progress": 0}, 20),
    ("lapsed", {**RUNNING, "executor": "gone", "attempt": 1, "leaseExpiresAt": "2000-01-01T00:00:00Z"}, 10),
    ("spent", {**RUNNING, "executor": "gone", "attempt": 3, "leaseExpiresAt": "2000-01-01T00:00:00Z"}, 5),
    ("live", {**RUNNING, "executor": "busy", "attempt": 1, "leaseExpiresAt": "2100-01-01T00:00:00Z"}, 200),
]  # fmt: skip
CLAIMABLE_IN = ("ns-5", "ns-7")
BATCH = 10
CANDIDATE_INDEXES = {"tasks_pending", "tasks_leased", "tasks_pending_ns", "tasks_leased_ns"}


async def arranged(db: Database) -> Database:
    async with db.pool.acquire() as conn:
        for namespace in CLAIMABLE_IN:
            for prefix, status, count in ARRANGED:
                await conn.execute(
                    CLAIMABLE, namespace, prefix, msgspec.json.encode(status).decode(), count
                )
        await conn.execute("ANALYZE tasks")
    return db


@pytest.fixture(scope="module")
async def small_and_large(
    make_database: Callable[[], Awaitable[str]], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Database, Database]]:
    tmp = tmp_path_factory.mktemp("claims")
    small = await filled(make_database, tmp, 1_000, 10, table="tasks", rows_sql=FINISHED)
    large = await filled(make_database, tmp, 1_000_000, 1_000, table="tasks", rows_sql=FINISHED)
    yield await arranged(small), await arranged(large)
    await small.close()
    await large.close()


async def explained(
    db: Database,
    namespaces: list[str] | None,
    *,
    generic: bool = False,
    backlog: int = 0,
    **request: Any,
) -> dict[str, Any]:
    """The plan of the service's claim (as run), in a transaction rolled back afterwards.

    ``generic``: the plan PostgreSQL keeps for a prepared statement after a few runs (asyncpg
    prepares every statement), made without the parameters' values. ``backlog``: that many
    PENDING tasks are first added to ns-5 in the same transaction, so that the statistics
    know nothing of them, as after a burst of new tasks that no ANALYZE has seen yet.
    """
    sql, args = claim_query(
        "Task", namespaces, ClaimRequest(executor="ex", max=BATCH, **request), "executor"
    )
    async with db.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            if generic:
                await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            if backlog:
                pending = msgspec.json.encode(ARRANGED[0][1]).decode()
                await conn.execute(CLAIMABLE, "ns-5", "burst", pending, backlog, timeout=600)
            text = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
        finally:
            await transaction.rollback()
        pending_now = "SELECT count(*) FROM tasks WHERE deleted_at IS NULL AND phase = 'PENDING'"
        assert await conn.fetchval(pending_now) == 20 * len(CLAIMABLE_IN)  # all rolled back
    plan: dict[str, Any] = msgspec.json.decode(text)[0]["Plan"]
    return plan


def table_scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node that reads the tasks table or one of its indexes."""
    return [n for n in nodes(plan) if n.get("Relation Name") == "tasks" or "Index Name" in n]


def read(plan: dict[str, Any]) -> int:
    """Rows (index entries, for bitmap index scans) the scans of ``tasks`` read, those their
    filters removed included, over all their loops."""
    return sum(
        (n["Actual Rows"] + n.get("Rows Removed by Filter", 0)) * n["Actual Loops"]
        for n in table_scans(plan)
        if n["Node Type"] != "ModifyTable"
    )


def buffers(plan: dict[str, Any]) -> int:
    """Buffers the whole statement touched: the scans, and the writes of the claimed rows."""
    return int(plan["Shared Hit Blocks"] + plan["Shared Read Blocks"])


PENDING_INDEXES = {"tasks_pending", "tasks_pending_ns"}
LEASED_INDEXES = {"tasks_leased", "tasks_leased_ns"}
#: What a claim may read (a few batches: its candidates, the expired leases its scans pass over,
#: the primary-key look-ups of the rows it updates), whatever the table holds.
MOST_ROWS = 20 * BATCH


def check(plan: dict[str, Any], *, candidates_only: bool = True) -> None:
    """Index scans only, and the batch claimed. ``candidates_only``: the claimable tasks come
    from the partial indexes of PENDING tasks and of leases (which hold no finished task), one
    of each, and the rows are then updated through the primary key."""
    kinds = {n["Node Type"] for n in nodes(plan)}
    assert not {"Seq Scan", "Parallel Seq Scan"} & kinds, kinds
    # The claim's UPDATE is a CTE; the statement answers its rows and the tasks it failed.
    claimed = [n for n in nodes(plan) if n["Node Type"] == "ModifyTable"]
    assert any(n["Actual Rows"] == BATCH for n in claimed), [n["Actual Rows"] for n in claimed]
    if candidates_only:
        indexes = {n["Index Name"] for n in table_scans(plan) if "Index Name" in n}
        assert indexes <= PENDING_INDEXES | LEASED_INDEXES | {"tasks_pkey"}, indexes
        assert indexes & PENDING_INDEXES and indexes & LEASED_INDEXES, indexes


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize(
    ("namespaces", "request_"),
    [(["ns-5"], {}), (["ns-5"], {"team": "t"}), (list(CLAIMABLE_IN), {}), (None, {})],
    ids=["one-namespace", "one-namespace-team", "two-namespaces", "every-namespace"],
)
async def test_a_claim_reads_its_batch_however_many_tasks_finished(
    small_and_large: tuple[Database, Database],
    namespaces: list[str] | None,
    request_: dict[str, Any],
    generic: bool,
) -> None:
    """The same claim with 1,000 and with 1,000,000 finished tasks. With a thousand the
    planner may read a namespace's 20 PENDING tasks through ``tasks_phase`` and sort them (it
    knows they are few); with a million, candidates come from the partial indexes only. The
    large one reads no more rows than the small one, and about as many buffers (its b-trees
    are a level deeper)."""
    small, large = [
        await explained(db, namespaces, generic=generic, **request_) for db in small_and_large
    ]
    check(small, candidates_only=False)
    check(large)
    assert read(large) <= min(read(small), MOST_ROWS), (read(small), read(large))
    assert buffers(large) <= 2 * buffers(small), (buffers(small), buffers(large))


async def test_a_burst_of_new_tasks_the_statistics_never_saw_costs_a_claim_nothing(
    small_and_large: tuple[Database, Database],
) -> None:
    """5,000 PENDING tasks arrive in ns-5 and no ANALYZE has seen them (the planner believes
    there are 20): the claim still reads its batch, not the burst (without
    ``tasks_pending_ns`` it read all 5,020 through ``tasks_phase``, 3,229 buffers)."""
    _, large = small_and_large
    plan = await explained(large, ["ns-5"], backlog=5_000)
    check(plan)
    assert read(plan) <= MOST_ROWS, read(plan)
    assert buffers(plan) <= 1_000, buffers(plan)
