"""List cost independent of table size: list-100 with 1,000,000 stored objects vs 1,000.

One command: ``python benchmarks/list_scale.py``. It starts its own embedded PostgreSQL and
``wegent serve``, seeds 1,000 Ghosts in one user's namespace through the API, measures listing a
page of 100 with wrk, then adds 999,000 objects spread over 999 other namespaces with SQL (the
row triggers off: ``session_replication_role = replica``) and measures the same page again.
Each measurement alternates slices (A B B A) so a load that drifts on a shared machine falls on
both. Target: the large table keeps at least 0.9 of the small table's req/s. Results go to
``benchmarks/results/list_scale.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import asyncpg
from run import (
    BY_KEY,
    RESULTS,
    Bench,
    Stack,
    combine,
    ensure_wrk,
    run_wrk,
)
from stand import stand_up

TARGET = 0.9
SPACES = """
INSERT INTO namespaces (name, personal, created_at)
SELECT 'fill-' || i, false, now() FROM generate_series(0, 998) AS i ON CONFLICT DO NOTHING
"""
FILL = """
INSERT INTO kinds (uid, kind, namespace, name, labels, annotations, spec, status, refs,
                   resource_version, generation, created_by, updated_by, created_at, updated_at)
SELECT gen_random_uuid(), 'Ghost', 'fill-' || (i % 999), 'g-' || lpad(i::text, 7, '0'),
       jsonb_build_object('team', 't' || (i % 7)), '{}',
       jsonb_build_object('systemPrompt', 'prompt ' || i), '{"state":"Available","message":null}',
       '[]', nextval('resource_version_seq'), 1, 'fill', 'fill', now(), now()
FROM generate_series(1, $1) AS i
"""


async def sql(url: str, statement: str, *args: Any, bulk: bool = False) -> None:
    """One statement on its own connection. ``bulk``: a fill, with the row triggers off
    (``session_replication_role = replica``): the fill takes its versions with ``nextval``
    itself, and its objects are not changes any watch is owed (no ``watch_changes`` rows)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET statement_timeout = 0")
        if bulk:
            await conn.execute("SET session_replication_role = replica")
        await conn.execute(statement, *args, timeout=1800)
    finally:
        await conn.close()


def measure(bench: Bench, seconds: int, connections: int) -> dict[str, Any]:
    op = BY_KEY["list"]
    run_wrk(bench, "service", op, connections, 1)  # warm-up
    half = max(1, seconds // 2)
    result = combine([run_wrk(bench, "service", op, connections, half) for _ in range(2)])
    return {
        "rps": round(result.rps, 1),
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "non2xx": result.non2xx,
        "app_cpu_us": round(result.app_cpu_us, 1),
        "db_cpu_us": round(result.db_cpu_us, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rows", type=int, default=999_000, help="objects added for the large run")
    args = parser.parse_args(argv)
    wrk = ensure_wrk()
    stack = Stack()
    try:
        return run(args, wrk, stack)
    finally:
        stack.close()


def run(args: argparse.Namespace, wrk: str, stack: Stack) -> int:
    stand = stand_up(stack, "scale", 1000)
    url = stand.url
    asyncio.run(sql(url, "VACUUM ANALYZE"))
    bench = stand.bench(wrk, 1000)
    print("1,000 objects: measuring list-100", flush=True)
    small = measure(bench, args.duration, args.connections)
    print(f"  {small}", flush=True)
    print(f"adding {args.rows:,} objects in 999 other namespaces", flush=True)
    asyncio.run(sql(url, SPACES, bulk=True))
    asyncio.run(sql(url, FILL, args.rows, bulk=True))
    asyncio.run(sql(url, "VACUUM ANALYZE"))
    print(f"{args.rows + 1000:,} objects: measuring list-100", flush=True)
    large = measure(bench, args.duration, args.connections)
    print(f"  {large}", flush=True)
    ratio = large["rps"] / small["rps"] if small["rps"] else 0.0
    verdict = "PASS" if ratio >= TARGET else "FAIL"
    print(
        f"list-100 with {args.rows + 1000:,} objects / with 1,000: {ratio:.2f} "
        f"(target ≥ {TARGET}) {verdict}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "small": small,
        "large": large,
        "rows": args.rows + 1000,
        "ratio": round(ratio, 3),
        "target": TARGET,
        "connections": args.connections,
        "duration_s": args.duration,
    }
    (RESULTS / "list_scale.json").write_text(json.dumps(out, indent=2))
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
