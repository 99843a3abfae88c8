"""A page costs what it reads, not what the table holds: 1,000,000 objects vs 1,000 (§7).

The proof is the plan of the service's own list statement: index scans only, and the rows and
buffers a page touches are the same with a million stored objects as with a thousand.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.conftest import make_settings
from wegent.db.engine import Database
from wegent.db.migrate import migrate
from wegent.resources.selectors import parse_selector
from wegent.resources.store import Page, Statements, list_statement, many_pages, param_types

FILL = """
INSERT INTO kinds (uid, kind, namespace, name, labels, annotations, spec, status, refs,
                   resource_version, generation, created_by, updated_by, created_at, updated_at,
                   deleted_at)
SELECT gen_random_uuid(), 'Ghost', 'ns-' || (i % $3), 'g-' || lpad(i::text, 7, '0'),
       jsonb_build_object('team', 't' || (i % 7), 'tier', CASE WHEN i % 997 = 0 THEN 'gold' ELSE 'std' END),
       '{}', jsonb_build_object('systemPrompt', 'prompt ' || i), '{"state":"Available","message":null}',
       '[]', nextval('resource_version_seq'), 1, 'fill', 'fill', now(), now(),
       CASE WHEN i % 50 = 0 THEN now() END
FROM generate_series($1::int, $2::int) AS i
"""
SPACES = """
INSERT INTO namespaces (name, personal, created_at)
SELECT 'ns-' || i, false, now() FROM generate_series(0, $1 - 1) AS i ON CONFLICT DO NOTHING
"""
PAGE = 100
UID0 = "00000000-0000-0000-0000-000000000000"
#: A table's ($1) indexes that no constraint owns, as the migrations made them (a unique index is
#: one of them when no constraint declares it).
SECONDARY_INDEXES = """
SELECT i.relname, pg_get_indexdef(x.indexrelid)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = $1::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
ORDER BY i.relname
"""
FOREIGN_KEYS = """
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid = $1::regclass AND contype = 'f'
ORDER BY conname
"""
#: What the migrations declare on a table ($1): columns, indexes, constraints, triggers.
SCHEMA = """
SELECT 'column ' || attname || ' ' || format_type(atttypid, atttypmod) || ' ' || attnotnull::text
       || coalesce(' collate ' || collname, '')
FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation AND c.collname <> 'default'
WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
UNION ALL
SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = $1::regclass
UNION ALL
SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE conrelid = $1::regclass
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(oid) || ' ' || tgenabled::text
FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal
ORDER BY 1
"""


async def filled(
    make_database: Callable[[], Awaitable[str]],
    tmp: Path,
    rows: int,
    spaces: int,
    *,
    table: str = "kinds",
    rows_sql: str = FILL,
) -> Database:
    """A migrated database holding ``rows`` Ghosts spread over ``spaces`` namespaces (or the
    rows of ``rows_sql``, which inserts rows ``$1`` to ``$2`` over ``$3`` namespaces, in
    ``table``).

    The rows are the test's arrangement, not writes of the service, so they go in the bulk
    way (a million row by row took over a minute): the foreign keys and the indexes no
    constraint owns are dropped before the fill and made again after it from their own
    definitions (adding a foreign key checks every row at once), row triggers do not fire
    (``session_replication_role = replica``), and one connection per core inserts its share
    of the rows (most of an insert is PostgreSQL rendering the row's ``body``). The table is
    then checked to be exactly the migrated one.
    """
    db = Database(make_settings(await make_database(), tmp))
    await db.connect()
    await migrate(db)
    async with db.pool.acquire() as conn:
        migrated = await conn.fetch(SCHEMA, table)
        indexes = await conn.fetch(SECONDARY_INDEXES, table)
        foreign_keys = await conn.fetch(FOREIGN_KEYS, table)
        async with conn.transaction():
            for name, _ in foreign_keys:
                await conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            for name, _ in indexes:
                await conn.execute(f'DROP INDEX "{name}"')
            await conn.execute(SPACES, spaces)
    fillers = min(max(os.cpu_count() or 1, 2), 8)
    bounds = [rows * k // fillers for k in range(fillers + 1)]
    await asyncio.gather(
        *(fill(db, first + 1, last, spaces, rows_sql) for first, last in itertools.pairwise(bounds))
    )
    async with db.pool.acquire() as conn:
        await conn.execute("SET statement_timeout = 0")
        await conn.execute("SET maintenance_work_mem = '256MB'")
        async with conn.transaction():
            for _, definition in indexes:
                await conn.execute(definition, timeout=900)
            for name, definition in foreign_keys:
                await conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        assert await conn.fetch(SCHEMA, table) == migrated
        await conn.execute(f"VACUUM ANALYZE {table}", timeout=900)
    return db


async def fill(db: Database, first: int, last: int, spaces: int, rows_sql: str = FILL) -> None:
    """Rows ``first`` to ``last`` (Ghosts ``g-{first}`` to ``g-{last}``), on a connection of
    their own."""
    async with db.pool.acquire() as conn:
        await conn.execute("SET statement_timeout = 0")
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(rows_sql, first, last, spaces, timeout=900)


@pytest.fixture(scope="module")
async def small_and_large(
    make_database: Callable[[], Awaitable[str]], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Database, Database]]:
    tmp = tmp_path_factory.mktemp("scale")
    small = await filled(make_database, tmp, 1_000, 1)
    large = await filled(make_database, tmp, 1_000_000, 1_000)
    yield small, large
    await small.close()
    await large.close()


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += nodes(child)
    return found


async def explain(db: Database, sql: str, params: list[Any]) -> dict[str, Any]:
    async with db.pool.acquire() as conn:
        text = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *params)
    plan: dict[str, Any] = msgspec.json.decode(text)[0]["Plan"]
    return plan


def statement(
    namespace: str | None,
    *,
    after: tuple[str, str] | None = None,
    selector: str = "",
    deleted: bool = False,
) -> tuple[str, list[Any]]:
    return list_statement(
        "kinds",
        "Ghost",
        None if namespace is None else [namespace],
        deleted=deleted,
        after=after,
        selector=parse_selector(selector),
        filters=[],
        limit=PAGE + 1,
        budget=8 * 1024 * 1024,
    )


def scanned(plan: dict[str, Any]) -> tuple[set[str], int, int]:
    """Node types, rows read from tables by scans, and buffers touched (a subquery scan reads
    rows another node produced, not the table)."""
    types = {n["Node Type"] for n in nodes(plan)}
    rows = sum(
        n["Actual Rows"]
        for n in nodes(plan)
        if "Scan" in n["Node Type"]
        and "Bitmap Index" not in n["Node Type"]
        and n["Node Type"] != "Subquery Scan"
    )
    buffers = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
    return types, rows, buffers


async def compare(
    small: Database,
    large: Database,
    sql_small: tuple[str, list[Any]],
    sql_large: tuple[str, list[Any]],
    index: str,
) -> None:
    """Both plans read about one page with index scans; the large one through ``index``.

    Buffers are not compared: they measure how rows happen to lie on disk (here a namespace's
    rows are spread over the heap on purpose), not how much work the query does.
    """
    for db, sql, expected in ((small, sql_small, None), (large, sql_large, index)):
        plan = await explain(db, *sql)
        types, rows, _ = scanned(plan)
        assert "Seq Scan" not in types, types
        assert any("Index" in t for t in types), types
        if expected:
            assert any(n.get("Index Name") == expected for n in nodes(plan)), [
                n.get("Index Name") for n in nodes(plan)
            ]
        assert rows <= PAGE + 2, rows


async def test_first_page_of_a_namespace(small_and_large: tuple[Database, Database]) -> None:
    small, large = small_and_large
    await compare(small, large, statement("ns-0"), statement("ns-5"), "kinds_live_name")


async def test_a_later_page_of_a_namespace(small_and_large: tuple[Database, Database]) -> None:
    small, large = small_and_large
    after = ("g-0000500", "00000000-0000-0000-0000-000000000000")
    later = ("g-0500005", "00000000-0000-0000-0000-000000000000")
    await compare(
        small,
        large,
        statement("ns-0", after=after),
        statement("ns-5", after=later),
        "kinds_live_name",
    )


async def test_the_trash_of_a_namespace(small_and_large: tuple[Database, Database]) -> None:
    _, large = small_and_large
    plan = await explain(large, *statement("ns-0", deleted=True))
    types, rows, _ = scanned(plan)
    assert "Seq Scan" not in types
    assert any(n.get("Index Name") == "kinds_trash" for n in nodes(plan))
    assert rows <= PAGE + 2


async def test_every_namespace_for_an_admin(small_and_large: tuple[Database, Database]) -> None:
    small, large = small_and_large
    await compare(small, large, statement(None), statement(None), "kinds_live_all")


async def test_a_selective_label_uses_the_gin_index(
    small_and_large: tuple[Database, Database],
) -> None:
    _, large = small_and_large
    plan = await explain(large, *statement(None, selector="tier=gold"))
    types, _, _ = scanned(plan)
    assert "Seq Scan" not in types
    assert any(n.get("Index Name") == "kinds_labels" for n in nodes(plan))


async def test_a_common_label_within_a_namespace_stays_on_the_page(
    small_and_large: tuple[Database, Database],
) -> None:
    small, large = small_and_large
    plans = [
        await explain(db, *statement(ns, selector="team in (t1,t2,t3,t4,t5,t6)"))
        for db, ns in ((small, "ns-0"), (large, "ns-5"))
    ]
    for plan in plans:
        assert "Seq Scan" not in scanned(plan)[0]
    # Selective filters read past non-matching rows, but only within the one namespace.
    assert scanned(plans[1])[1] <= 1_000


@pytest.mark.parametrize("plans", ["auto", "force_generic_plan"])
async def test_coalesced_gets_read_their_rows_through_the_live_index(
    small_and_large: tuple[Database, Database], plans: str
) -> None:
    """A batch of 64 GETs (``wegent.db.coalesce``) reads 64 rows through the unique live index,
    with a million rows as with a thousand, and with the plan a prepared statement may keep."""
    sql = Statements.for_table("kinds").get_many
    for db, spaces, step in ((small_and_large[0], 1, 13), (small_and_large[1], 1_000, 15_601)):
        numbers = [1 + i * step for i in range(64)]
        keys = (
            ["Ghost"] * 64,
            [f"ns-{i % spaces}" for i in numbers],
            [f"g-{i:07d}" for i in numbers],
        )
        async with db.pool.acquire() as conn:
            await conn.execute(f"SET plan_cache_mode = {plans}")
            try:
                text = await conn.fetchval(
                    f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *map(list, keys)
                )
                found = await conn.fetch(sql, *map(list, keys))
            finally:
                await conn.execute("RESET plan_cache_mode")
        plan: dict[str, Any] = msgspec.json.decode(text)[0]["Plan"]
        types = {n["Node Type"] for n in nodes(plan)}
        assert "Seq Scan" not in types and "Bitmap Heap Scan" not in types, types
        assert any(n.get("Index Name") == "kinds_live_name" for n in nodes(plan))
        table_rows = sum(
            n["Actual Rows"] * n.get("Actual Loops", 1)
            for n in nodes(plan)
            if n.get("Index Name") == "kinds_live_name"
        )
        live = [i for i in numbers if i % 50]  # every 50th row is in the trash
        assert round(table_rows) == len(live)  # EXPLAIN gives the rows per loop, rounded
        assert sorted(row[0] for row in found) == [k + 1 for k, i in enumerate(numbers) if i % 50]


@pytest.mark.parametrize("plans", ["auto", "force_generic_plan"])
async def test_coalesced_lists_read_each_page_through_the_namespace_index(
    small_and_large: tuple[Database, Database], plans: str
) -> None:
    """A batch of 8 lists (``wegent.db.coalesce``), first and later pages of 8 namespaces,
    reads about a page per list, through the index a list alone uses, with a million rows as
    with a thousand, and with the plan a prepared statement may keep; each page is the page
    a list alone reads, in its order."""
    for db, spaces in ((small_and_large[0], 1), (small_and_large[1], 1_000)):
        asked = [
            statement(f"ns-{(k * 7) % spaces}", after=None if k % 2 else ("g-0000500", UID0))
            for k in range(8)
        ]
        sql = many_pages(asked[0][0], param_types(asked[0][1]))
        shapes = {many_pages(s, param_types(p)) for s, p in asked}
        columns = [list(column) for column in zip(*(p for _, p in asked[::2]), strict=True)]
        firsts = [list(column) for column in zip(*(p for _, p in asked[1::2]), strict=True)]
        assert len(shapes) == 2  # with and without a continue token
        async with db.pool.acquire() as conn:
            await conn.execute(f"SET plan_cache_mode = {plans}")
            try:
                for batch_sql, batch, singles in (
                    (sql, columns, asked[::2]),
                    (many_pages(asked[1][0], param_types(asked[1][1])), firsts, asked[1::2]),
                ):
                    text = await conn.fetchval(
                        f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {batch_sql}", *batch
                    )
                    pages = {i: Page(*page) for i, page in await conn.fetch(batch_sql, *batch)}
                    for i, (single_sql, params) in enumerate(singles, 1):
                        alone = [row[0] for row in await conn.fetch(single_sql, *params)]
                        page = pages[i]  # same rows, same order
                        assert (page.joined or b"") == b",".join(alone)
                        assert (page.read, page.with_body) == (len(alone), len(alone))
                        sizes = [len(body) for body in alone]
                        assert page.last_size == (sizes[PAGE - 1] if len(sizes) >= PAGE else None)
                        assert page.next_size == (sizes[PAGE] if len(sizes) > PAGE else None)
                    assert sum(page.read for page in pages.values()) > PAGE, db
                    plan: dict[str, Any] = msgspec.json.decode(text)[0]["Plan"]
                    types = {n["Node Type"] for n in nodes(plan)}
                    assert "Seq Scan" not in types and "Sort" not in types, types
                    if db is small_and_large[1]:
                        assert any(n.get("Index Name") == "kinds_live_name" for n in nodes(plan))
                    table_rows = sum(
                        n["Actual Rows"] * n.get("Actual Loops", 1)
                        for n in nodes(plan)
                        if "Index" in n["Node Type"]
                    )
                    assert table_rows <= len(singles) * (PAGE + 2), table_rows
            finally:
                await conn.execute("RESET plan_cache_mode")
