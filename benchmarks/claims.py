"""Task dispatch (API.md §17): tasks claimed and completed per second, against a ceiling.

    python benchmarks/claims.py [--quick] [--executors 16,64] [--batches 1,10] [--duration S]

Starts its own embedded PostgreSQL in a temp dir and ``wegent serve`` with one worker (the
helpers ``watch.py`` uses), registers a user, creates a Bot and a Team, and measures, for each
number of executors and batch size, how many tasks per second N executors get through when
each loops: claim up to B tasks, then complete each one it was given, one after the other:

- **service**: each executor is a coroutine of this process with a keep-alive HTTP/1.1
  connection of its own: ``POST /api/v1/tasks/claim`` ``{"executor", "max": B, "namespaces":
  [ns]}``, then ``PUT /api/v1/namespaces/{ns}/tasks/{name}/status`` ``{"phase": "COMPLETED",
  "executor"}`` per task.
- **ceiling**: the same N executors on raw asyncpg in this process (a pool of as many
  connections as the service's), issuing the service's own SQL: the claim statement as
  ``TaskService.claim`` builds it (``claim_query``), and the completing move as
  ``TaskService.move`` runs it (``_LOCK`` then ``_MOVE`` in one transaction, the new status
  made with the same Struct). No HTTP, no framework, no authentication: the fastest any server
  could do the same work on this database.

Both draw from one namespace's PENDING tasks, topped up in SQL before each slice (copies of a
Task created through the API). Slices alternate, A B B A, the order rotating from one row to the
next, as ``run.py`` does; before each slice the tasks table is vacuumed and a checkpoint taken.
The ratio is service / ceiling tasks per second; target ≥ 0.6. At the end every task
counted must be COMPLETED after exactly one claim (none RUNNING, none claimed twice).

Prints a table, writes ``benchmarks/results/claims-latest.json`` and the results block of the
"Task dispatch" section of ``docs/performance.md``. Everything it started is stopped and removed
at the end, also on Ctrl-C or failure. Exit status 0 when every row meets the target.
"""

# This script starts servers by design, from fixed argument lists.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from run import DOCS, RESULTS, USER, Stack, bot, expect, replace_marked, request, tree_cpu
from watch import Http, Server, load, machine, serve

from wegent.resources.claims import ClaimRequest
from wegent.resources.status import TaskStatus
from wegent.resources.tasks import _LOCK, _MOVE, _PENDING, claim_query

TARGET = 0.6
TEAM = "bench-team"
TEMPLATE = "template"
BOT = "bench-bot"
DOC_BEGIN = "<!-- claims.py results: begin -->"
DOC_END = "<!-- claims.py results: end -->"
TARGETS = ("service", "ceiling")
#: Copies of the template Task, PENDING: ``$4`` of them named ``$2-1`` … in namespace ``$1``.
TOP_UP = """
INSERT INTO tasks (kind, namespace, name, display_name, labels, annotations, spec, shown_spec,
                   status, refs, created_by, updated_by)
SELECT kind, namespace, $2 || '-' || i, display_name, labels, annotations, spec, shown_spec,
       $3::jsonb, refs, created_by, updated_by
FROM tasks, generate_series(1, $4::int) AS i
WHERE kind = 'Task' AND namespace = $1 AND name = 'template' AND deleted_at IS NULL
"""
PENDING_COUNT = (
    "SELECT count(*) FROM tasks WHERE namespace = $1 AND deleted_at IS NULL AND phase = 'PENDING'"
)


class Meta(msgspec.Struct):
    name: str


class Item(msgspec.Struct):
    metadata: Meta


class Claimed(msgspec.Struct):
    items: list[Item]


class Body(msgspec.Struct):
    """What the ceiling's executor reads of a claimed task, as the service's client does."""

    metadata: Meta


@dataclass
class Tally:
    """What the executors of one slice did."""

    tasks: int = 0  # completed
    claims: int = 0
    empty: int = 0  # claims that answered nothing: the slice ran dry
    errors: Counter[str] = field(default_factory=Counter)
    claim_ms: list[float] = field(default_factory=list)
    complete_ms: list[float] = field(default_factory=list)


# -- the executors -------------------------------------------------------------------------------


async def service_executor(
    server: Server, name: str, batch: int, start: asyncio.Event, until: list[float], tally: Tally
) -> None:
    http = Http(server.port, server.token)
    claim = json.dumps({"executor": name, "max": batch, "namespaces": [USER]}).encode()
    done = json.dumps({"phase": "COMPLETED", "executor": name}).encode()
    await start.wait()
    try:
        while time.perf_counter() < until[0]:
            began = time.perf_counter()
            status, body = await http.call("POST", "/api/v1/tasks/claim", claim)
            tally.claim_ms.append((time.perf_counter() - began) * 1000)
            tally.claims += 1
            if status != 200:
                tally.errors[f"claim {status}"] += 1
                continue
            items = msgspec.json.decode(body, type=Claimed).items
            if not items:
                tally.empty += 1
                continue
            for item in items:
                path = f"/api/v1/namespaces/{USER}/tasks/{item.metadata.name}/status"
                began = time.perf_counter()
                status, body = await http.call("PUT", path, done)
                tally.complete_ms.append((time.perf_counter() - began) * 1000)
                if status == 200:
                    tally.tasks += 1
                else:
                    tally.errors[f"complete {status}"] += 1
    finally:
        http.close()


def completed(current: TaskStatus, now: str) -> TaskStatus:
    """The status ``TaskService._moved`` makes for a move to COMPLETED that names the holder."""
    return TaskStatus(
        executor=current.executor,
        attempt=current.attempt,
        phase="COMPLETED",
        progress=100,
        result=current.result,
        errorMessage=current.errorMessage,
        startedAt=current.startedAt,
        completedAt=now,
    )


async def ceiling_executor(
    pool: asyncpg.Pool,
    name: str,
    batch: int,
    start: asyncio.Event,
    until: list[float],
    tally: Tally,
) -> None:
    sql, args = claim_query("Task", [USER], ClaimRequest(executor=name, max=batch), USER)
    await start.wait()
    while time.perf_counter() < until[0]:
        began = time.perf_counter()
        async with pool.acquire() as conn:
            rows = await conn.fetch(sql, *args)
        rows.sort(key=lambda r: (r["created_at"], r["id"]))
        answer = b'{"items":[' + b",".join(r["body"] for r in rows) + b"]}"
        tally.claim_ms.append((time.perf_counter() - began) * 1000)
        tally.claims += 1
        items = msgspec.json.decode(answer, type=Claimed).items
        if not items:
            tally.empty += 1
            continue
        for item in items:
            began = time.perf_counter()
            async with pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(_LOCK, USER, item.metadata.name)
                current = msgspec.json.decode(row["status"], type=TaskStatus)
                if current.executor != name or current.phase != "RUNNING":
                    tally.errors["complete: not held"] += 1
                    continue
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                status = msgspec.json.encode(completed(current, now)).decode()
                await conn.fetchrow(_MOVE, row["id"], status, USER)
            tally.complete_ms.append((time.perf_counter() - began) * 1000)
            tally.tasks += 1


# -- slices --------------------------------------------------------------------------------------


@dataclass
class Bench:
    server: Server
    pool: asyncpg.Pool
    rounds: int
    slice_s: float
    warmup_s: float
    batch_names: int = 0  # top-ups made so far (their tasks' names)
    completed: int = 0  # every task completed, warm-ups included
    rates: dict[str, float] = field(default_factory=dict)  # last tasks/s per target


async def top_up(bench: Bench, need: int) -> None:
    """At least ``need`` PENDING tasks, then a vacuum and a checkpoint: each slice starts
    from the same kind of table."""
    async with bench.pool.acquire() as conn:
        have = await conn.fetchval(PENDING_COUNT, USER)
        if have < need:
            bench.batch_names += 1
            await conn.execute(
                TOP_UP, USER, f"b{bench.batch_names}", _PENDING, need - have, timeout=600
            )
        await conn.execute("VACUUM ANALYZE tasks", timeout=600)
        await conn.execute("CHECKPOINT", timeout=600)


async def run_slice(
    bench: Bench, target: str, executors: int, batch: int, seconds: float
) -> dict[str, Any]:
    """N executors of ``target`` for ``seconds``; what they did, and the CPU it cost."""
    guess = bench.rates.get(target, 3000.0)
    await top_up(bench, round(guess * seconds * 1.5) + executors * batch * 2 + 1000)
    tally = Tally()
    start = asyncio.Event()
    until = [0.0]
    names = [f"{target}-{i}" for i in range(executors)]
    if target == "service":
        runs = [service_executor(bench.server, n, batch, start, until, tally) for n in names]
    else:
        runs = [ceiling_executor(bench.pool, n, batch, start, until, tally) for n in names]
    tasks = [asyncio.create_task(r) for r in runs]
    await asyncio.sleep(0.05)  # every executor waits at the start line
    cpu = (tree_cpu(bench.server.proc.pid), tree_cpu(bench.server.db_pid), time.process_time())
    began = time.perf_counter()
    until[0] = began + seconds
    start.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    used = (tree_cpu(bench.server.proc.pid), tree_cpu(bench.server.db_pid), time.process_time())
    bench.completed += tally.tasks
    rate = tally.tasks / elapsed
    bench.rates[target] = rate
    per_task = 1e6 / max(tally.tasks, 1)
    return {
        "target": target,
        "tasks": tally.tasks,
        "claims": tally.claims,
        "empty_claims": tally.empty,
        "errors": dict(tally.errors),
        "seconds": round(elapsed, 3),
        "tasks_per_s": round(rate, 1),
        "claim_ms": quantiles(tally.claim_ms),
        "complete_ms": quantiles(tally.complete_ms),
        "server_cpu_us_per_task": round((used[0] - cpu[0]) * per_task, 1),
        "db_cpu_us_per_task": round((used[1] - cpu[1]) * per_task, 1),
        "client_cpu_us_per_task": round((used[2] - cpu[2]) * per_task, 1),
        "load": load(),
    }


def quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p99": 0.0}
    ordered = sorted(values)
    return {
        "p50": round(ordered[len(ordered) // 2], 2),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
    }


async def measure_row(bench: Bench, executors: int, batch: int, row: int) -> dict[str, Any]:
    """One row: both targets in alternating slices (A B B A …), the order rotating by row."""
    order = list(TARGETS) if row % 2 == 0 else list(TARGETS)[::-1]
    slices: dict[str, list[dict[str, Any]]] = {t: [] for t in TARGETS}
    for round_ in range(bench.rounds):
        for target in order if round_ % 2 == 0 else order[::-1]:
            if not slices[target] and bench.warmup_s > 0:
                await run_slice(bench, target, executors, batch, bench.warmup_s)
            measured = await run_slice(bench, target, executors, batch, bench.slice_s)
            slices[target].append(measured)
            print(
                f"  {executors:3d} executors, max={batch:<3d} {target:8s} "
                f"{measured['tasks_per_s']:8,.0f} tasks/s  claim p50 "
                f"{measured['claim_ms']['p50']:.1f} ms  load {measured['load'][0]}",
                flush=True,
            )
    combined = {t: combine(s) for t, s in slices.items()}
    service, ceiling = combined["service"], combined["ceiling"]
    pairs = [
        a["tasks_per_s"] / b["tasks_per_s"]
        for a, b in zip(slices["service"], slices["ceiling"], strict=True)
        if b["tasks_per_s"]
    ]
    ratio = service["tasks_per_s"] / ceiling["tasks_per_s"] if ceiling["tasks_per_s"] else 0.0
    dry = [s for ss in slices.values() for s in ss if s["empty_claims"]]
    failed = [s for ss in slices.values() for s in ss if s["errors"]]
    return {
        "executors": executors,
        "batch": batch,
        "service": service,
        "ceiling": ceiling,
        "ratio": round(ratio, 3),
        "ratio_per_slice_pair": [round(x, 3) for x in pairs],
        "ratio_slice_pair_median": round(statistics.median(pairs), 3) if pairs else 0.0,
        "target": TARGET,
        "valid": not dry and not failed,
        "invalid_reason": "; ".join(
            (["a slice ran out of PENDING tasks"] if dry else [])
            + ([f"errors: {s['errors']}" for s in failed])
        ),
        "pass": ratio >= TARGET,
        "slices": slices,
    }


def combine(slices: list[dict[str, Any]]) -> dict[str, Any]:
    tasks = sum(s["tasks"] for s in slices)
    seconds = sum(s["seconds"] for s in slices)

    def weighted(key: str) -> float:
        return round(sum(s[key] * s["tasks"] for s in slices) / max(tasks, 1), 1)

    return {
        "tasks": tasks,
        "seconds": round(seconds, 3),
        "tasks_per_s": round(tasks / seconds, 1) if seconds else 0.0,
        "claims": sum(s["claims"] for s in slices),
        "claim_ms_p50_median": round(statistics.median(s["claim_ms"]["p50"] for s in slices), 2),
        "claim_ms_p99_max": max(s["claim_ms"]["p99"] for s in slices),
        "complete_ms_p50_median": round(
            statistics.median(s["complete_ms"]["p50"] for s in slices), 2
        ),
        "server_cpu_us_per_task": weighted("server_cpu_us_per_task"),
        "db_cpu_us_per_task": weighted("db_cpu_us_per_task"),
        "client_cpu_us_per_task": weighted("client_cpu_us_per_task"),
        "loads": [s["load"][0] for s in slices],
    }


# -- set-up and checks ---------------------------------------------------------------------------


def prepare(server: Server) -> None:
    """A Bot, a Team and the template Task (cancelled, so no claim takes it)."""
    base = f"/api/v1/namespaces/{USER}"
    status, body = request(server.port, "POST", f"{base}/bots", bot(BOT), server.token)
    expect(status, body, 201, "create Bot")
    team = {
        "kind": "Team",
        "metadata": {"name": TEAM},
        "spec": {"members": [{"botRef": {"name": BOT}}], "collaborationModel": "solo"},
    }
    status, body = request(server.port, "POST", f"{base}/teams", team, server.token)
    expect(status, body, 201, "create Team")
    task = {
        "kind": "Task",
        "metadata": {"name": TEMPLATE},
        "spec": {"title": "benchmark", "prompt": "Do it.", "teamRef": {"name": TEAM}},
    }
    status, body = request(server.port, "POST", f"{base}/tasks", task, server.token)
    expect(status, body, 201, "create Task")
    status, body = request(
        server.port, "POST", f"{base}/tasks/{TEMPLATE}/cancel", None, server.token
    )
    expect(status, body, 200, "cancel the template Task")


async def check_tasks(bench: Bench) -> dict[str, int]:
    """Every completion counted is a COMPLETED task claimed once; nothing is left RUNNING."""
    async with bench.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT phase, attempt, count(*) AS n FROM tasks WHERE namespace = $1 "
            "AND deleted_at IS NULL AND name <> $2 GROUP BY phase, attempt",
            USER,
            TEMPLATE,
        )
    found = {f"{r['phase']} attempt {r['attempt']}": r["n"] for r in rows}
    found["completions counted"] = bench.completed
    return found


# -- report --------------------------------------------------------------------------------------


def report_text(result: dict[str, Any]) -> str:
    info = result["machine"]
    s = result["settings"]
    lines = [
        f"Machine: {info['date']}; {info['nproc']} CPUs ({info['cpu']}); Python "
        f"{info['python']}; PostgreSQL {info['postgresql']}; one uvicorn worker, a pool of "
        f"{s['pool']} connections (the ceiling's too); {s['rounds']} alternating slices of "
        f"{s['slice_s']:g} s per target and row; load average (1, 5, 15 min) before "
        f"{info['load_before']}, after {info['load_after']}.",
        "",
        "| executors | max | service tasks/s | ceiling tasks/s | ratio (per slice pair) "
        "| claim p50 / p99 ms service, ceiling | CPU µs per task: service server + client "
        "+ PostgreSQL; ceiling process + PostgreSQL | load (1 min) | ≥ 0.60 |",
        "|---:|---:|---:|---:|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        a, b = r["service"], r["ceiling"]
        verdict = "PASS" if r["pass"] else "FAIL"
        if not r["valid"]:
            verdict = f"INVALID ({r['invalid_reason']}); {verdict}"
        loads = a["loads"] + b["loads"]
        lines.append(
            f"| {r['executors']} | {r['batch']} | {a['tasks_per_s']:,.0f} "
            f"| {b['tasks_per_s']:,.0f} | **{r['ratio']:.2f}** "
            f"({', '.join(f'{x:.2f}' for x in r['ratio_per_slice_pair'])}) "
            f"| {a['claim_ms_p50_median']:.1f} / {a['claim_ms_p99_max']:.1f}, "
            f"{b['claim_ms_p50_median']:.1f} / {b['claim_ms_p99_max']:.1f} "
            f"| {a['server_cpu_us_per_task']:.0f} + {a['client_cpu_us_per_task']:.0f} + "
            f"{a['db_cpu_us_per_task']:.0f}; {b['client_cpu_us_per_task']:.0f} + "
            f"{b['db_cpu_us_per_task']:.0f} "
            f"| {min(loads):.1f}–{max(loads):.1f} | {verdict} |"
        )
    checked = ", ".join(f"{k}: {v:,}" for k, v in result["tasks_check"].items())
    lines += ["", f"Tasks at the end (the template aside): {checked}."]
    return "\n".join(lines) + "\n"


def update_docs(text: str) -> None:
    """Replace the block between the markers in docs/performance.md's "Task dispatch"."""
    replace_marked(DOC_BEGIN, DOC_END, f"{DOC_BEGIN}\n\n{text}\n{DOC_END}", "Task dispatch")


# -- main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)

    def numbers(text: str) -> list[int]:
        return [int(x) for x in text.split(",") if x]

    parser.add_argument("--executors", type=numbers, default=[16, 64], help="(16,64)")
    parser.add_argument("--batches", type=numbers, default=[1, 10], help="claim max (1,10)")
    parser.add_argument(
        "--duration", type=float, default=10, help="seconds per target and row (10)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="slices per target and row (2)")
    parser.add_argument("--warmup", type=float, default=1, help="warm-up seconds (1)")
    parser.add_argument("--quick", action="store_true", help="short slices (development)")
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/performance.md")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temp dir")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = min(args.duration, 4)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stack = Stack()

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        return run(args, stack)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        stack.close()


def run(args: argparse.Namespace, stack: Stack) -> int:
    from wegent.db.embedded import start_embedded, stop_embedded
    from wegent.settings import load_settings

    tmp = Path(tempfile.mkdtemp(prefix="wegent-claimbench-"))
    if not args.keep_logs:
        stack.cleanups.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
    print(f"work dir {tmp}; starting embedded PostgreSQL", flush=True)
    pg = start_embedded(tmp / "pg")
    stack.cleanups.append(lambda: stop_embedded(pg))
    server = serve(stack, pg, tmp, "wegent_claims", {})
    prepare(server)
    info = machine(server.url)
    print(f"load average before: {info['load_before']}", flush=True)
    # the service's pool size, as its settings read it from the environment it was given
    pool_size = load_settings(
        {
            **os.environ,
            "WEGENT_DATABASE_URL": server.url,
            "WEGENT_DATA_DIR": str(tmp),
            "WEGENT_JWT_SECRET": "unused" * 8,
            "WEGENT_SECRET_KEY": "unused" * 8,
        }
    ).pool_max_size
    with contextlib.suppress(ImportError):  # the client's loop as the server's: uvloop
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    result = asyncio.run(measure_all(args, server, pool_size, info))
    info["load_after"] = load()
    text = report_text(result)
    print()
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "claims-latest.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    if not args.no_docs:
        update_docs(text)
        print(f"updated {DOCS}")
    if server.proc.poll() is not None:
        print(f"the service exited: {server.log.read_text()[-2000:]}", file=sys.stderr)
        return 1
    return 0 if all(r["pass"] and r["valid"] for r in result["rows"]) else 1


async def measure_all(
    args: argparse.Namespace, server: Server, pool_size: int, info: dict[str, Any]
) -> dict[str, Any]:
    slice_s = args.duration / args.rounds
    async with asyncpg.create_pool(server.url, min_size=pool_size, max_size=pool_size) as pool:
        bench = Bench(server, pool, args.rounds, slice_s, args.warmup)
        rows = []
        for executors in args.executors:
            for batch in args.batches:
                rows.append(await measure_row(bench, executors, batch, len(rows)))
        check = await check_tasks(bench)
    counted = check["completions counted"]
    unexpected = set(check) - {"COMPLETED attempt 1", "PENDING attempt 0", "completions counted"}
    if check.get("COMPLETED attempt 1") != counted or unexpected:
        raise SystemExit(f"the tasks are not what the executors counted: {check}")
    return {
        "machine": info,
        "settings": {
            "executors": args.executors,
            "batches": args.batches,
            "rounds": args.rounds,
            "slice_s": slice_s,
            "warmup_s": args.warmup,
            "pool": pool_size,
        },
        "rows": rows,
        "tasks_check": check,
    }


if __name__ == "__main__":
    sys.exit(main())
