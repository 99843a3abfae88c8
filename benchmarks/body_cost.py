"""What the stored wire form costs writes and storage (issue #14, docs/decisions.md).

One command: ``python benchmarks/body_cost.py``. It starts its own embedded PostgreSQL and
``wegent serve``, seeds Ghosts through the API (the rows the service writes), and then, in SQL,
copies them into two scratch tables made like ``kinds`` (its columns, defaults and indexes):
one with ``body``, the column PostgreSQL generates with ``wegent_render`` on every write, and
one without it. Alternating between the two (A B B A ...), it inserts ``--copies`` copies of
every seeded row and then updates each row's spec once (every update renders ``body`` again),
and reads PostgreSQL's CPU time for each statement from ``/proc`` (the backend's utime +
stime). Storage is each table's size (heap, TOAST and indexes) per row. Results go to
``benchmarks/results/body_cost.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

import asyncpg
from run import RESULTS, Stack, tree_cpu
from stand import stand_up

TABLES = ("cost_with_body", "cost_without_body")


async def columns(conn: asyncpg.Connection) -> list[str]:
    """``kinds``' written columns: every one but the generated ones (``body``) and the serial
    ``id`` (its default numbers the copies)."""
    names = await conn.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'kinds'::regclass AND attnum > 0 "
        "AND NOT attisdropped AND attgenerated = '' AND attname <> 'id' ORDER BY attnum"
    )
    return [row["attname"] for row in names]


#: What a copy of a seeded row writes in the columns that must differ from row to row.
_COPIED = {
    "uid": "gen_random_uuid()",
    "name": "k.name || '-' || c",
    "resource_version": "nextval('resource_version_seq')",
}


async def timed(conn: asyncpg.Connection, pid: int, statement: str) -> tuple[float, float]:
    """(backend CPU s, wall s) of one statement."""
    cpu, wall = tree_cpu(pid), time.perf_counter()
    await conn.execute(statement)
    return tree_cpu(pid) - cpu, time.perf_counter() - wall


async def measure(url: str, copies: int, rounds: int) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET statement_timeout = 0")
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        written = await columns(conn)
        for table in TABLES:
            await conn.execute(f"DROP TABLE IF EXISTS {table}")
            await conn.execute(f"CREATE TABLE {table} (LIKE kinds INCLUDING ALL)")
        await conn.execute(f"ALTER TABLE {TABLES[1]} DROP COLUMN body")
        seeded = await conn.fetchval(
            "SELECT count(*) FROM kinds WHERE kind = 'Ghost' AND deleted_at IS NULL"
        )
        rows = seeded * copies
        values = ", ".join(_COPIED.get(column, f"k.{column}") for column in written)
        insert = (
            f"INSERT INTO {{table}} ({', '.join(written)}) SELECT {values} FROM kinds k, "
            f"generate_series(1, {copies}) AS c WHERE k.kind = 'Ghost' AND k.deleted_at IS NULL"
        )
        update = (
            "UPDATE {table} SET spec = jsonb_set(spec, '{{systemPrompt}}', "
            "to_jsonb(spec ->> 'systemPrompt' || '!')), generation = generation + 1, "
            "updated_at = now()"
        )
        found: dict[str, dict[str, list[float]]] = {
            table: {"insert_cpu": [], "insert_wall": [], "update_cpu": [], "update_wall": []}
            for table in TABLES
        }
        sizes: dict[str, int] = {}
        for round_ in range(rounds):
            for table in TABLES if round_ % 2 == 0 else TABLES[::-1]:
                await conn.execute(f"TRUNCATE {table}")
                await conn.execute("CHECKPOINT")
                cpu, wall = await timed(conn, pid, insert.format(table=table))
                found[table]["insert_cpu"].append(cpu)
                found[table]["insert_wall"].append(wall)
                cpu, wall = await timed(conn, pid, update.format(table=table))
                found[table]["update_cpu"].append(cpu)
                found[table]["update_wall"].append(wall)
                await conn.execute(f"VACUUM FULL {table}")
                sizes[table] = await conn.fetchval(f"SELECT pg_total_relation_size('{table}')")
        body = await conn.fetchval(f"SELECT avg(octet_length(body))::int FROM {TABLES[0]}")
        for table in TABLES:
            await conn.execute(f"DROP TABLE {table}")
    finally:
        await conn.close()
    result: dict[str, Any] = {"rows": rows, "body_bytes": body}
    for table in TABLES:
        short = "with" if table == TABLES[0] else "without"
        for key, timings in found[table].items():
            result[f"{key}_us_per_row_{short}"] = round(statistics.median(timings) / rows * 1e6, 1)
        result[f"bytes_per_row_{short}"] = round(sizes[table] / rows)
    return result


def report(result: dict[str, Any]) -> None:
    print(f"{result['rows']:,} rows; body {result['body_bytes']} bytes on average")
    for what in ("insert", "update"):
        for measure_ in ("cpu", "wall"):
            with_ = result[f"{what}_{measure_}_us_per_row_with"]
            without = result[f"{what}_{measure_}_us_per_row_without"]
            print(
                f"{what} {measure_:4s} µs per row: with body {with_:7.1f}  without {without:7.1f}"
                f"  (+{with_ - without:.1f}, ×{with_ / without:.2f})"
            )
    with_, without = result["bytes_per_row_with"], result["bytes_per_row_without"]
    print(f"storage bytes per row (table, TOAST, indexes): with body {with_}  without {without}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000, help="Ghosts seeded through the API")
    parser.add_argument("--copies", type=int, default=20, help="copies of each in a round")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds")
    args = parser.parse_args(argv)
    stack = Stack()
    try:
        stand = stand_up(stack, "body_cost", args.seeds)
        result = asyncio.run(measure(stand.url, args.copies, args.rounds))
    finally:
        stack.close()
    report(result)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "body_cost.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
