"""Benchmark Wegent against its ceiling, on this machine, in one run.

    python benchmarks/run.py [--quick] [--duration S] [--connections 16,64] [--workers N]

Starts its own embedded PostgreSQL in a temp dir, migrates it, starts the service
(``wegent serve``) and two ceilings (``benchmarks/ceiling.py``, bare ASGI + asyncpg): the
same-SQL ceiling (the service's statements and JSON) and the stored-bytes ceiling (GET one and
list answered from a minimal table of the answers' bytes), all under uvicorn with the same
settings; registers a user, logs in, seeds data, checks that they answer the same JSON, then
measures each operation with wrk at each connection count against the service and the
same-SQL ceiling, and the reads against the stored-bytes ceiling too, in alternating slices. A
read is judged against the faster ceiling of its row. GET one and list also run through the
Kubernetes path family C (``get_c``, ``list_c``: same answers, same ceilings, same targets), and
GET one with an API token instead of a login JWT (``get_t``); these variants' rows measure the
service the plain way (family B, a JWT) too, in the same slices, for the variant/B ratio.
Prints a table, writes ``benchmarks/results/latest.json`` and the "Last results" section of
``docs/performance.md``.
Everything it started is stopped and removed at the end, also on Ctrl-C or failure. See
docs/performance.md for the method.
"""

# This script starts servers, wrk, apt-get and py-spy by design, from fixed argument lists.

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import http.client
import importlib.metadata
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

HERE = Path(__file__).resolve().parent
LUA = HERE / "lua"
RESULTS = HERE / "results"
DOCS = HERE.parent / "docs" / "performance.md"
USER = "bench"
PASSWORD = "bench-password-0123"
MODEL = "bench-model"
FAMILY_C = "/apis/agent.wecode.io/v1"  # the Kubernetes path family's prefix
READ_TARGETS = {"get": 0.85, "list": 0.80}  # of the best ceiling's req/s
WRITE_TARGET = 0.75
P99_FACTOR = 1.5
P99_CONNECTIONS = 16
MAX_ERROR_SHARE = 0.01
BUSY_LOAD = 0.5  # 1-minute load average above which the run warns that the machine is busy


@dataclass(frozen=True)
class Op:
    key: str
    title: str
    script: str
    write: bool
    #: the family-B operation with the same answers (for family C's): its target, and the
    #: row a C/B ratio is taken against
    same_as: str | None = None


OPS = [
    Op("get", "GET one Ghost", "get.lua", False),
    Op("get_c", "GET one Ghost (family C)", "get_c.lua", False, same_as="get"),
    Op("get_t", "GET one Ghost (API token)", "get_t.lua", False, same_as="get"),
    Op("list", "list 100 Ghosts", "list.lua", False),
    Op("list_c", "list 100 Ghosts (family C)", "list_c.lua", False, same_as="list"),
    Op("create_ghost", "create Ghost", "create_ghost.lua", True),
    Op("create_bot", "create Bot (3 refs)", "create_bot.lua", True),
    Op("replace", "replace Ghost (PUT)", "replace.lua", True),
    Op("patch", "merge-patch Ghost", "patch.lua", True),
    Op("delete_create", "delete + create", "delete_create.lua", True),
]
BY_KEY = {op.key: op for op in OPS}


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    non2xx: int
    socket_errors: int
    app_cpu_us: float  # CPU time of the server process(es) per request, microseconds
    db_cpu_us: float  # CPU time of PostgreSQL per request
    rounds: list[dict[str, Any]] = field(repr=False)


#: the servers: ours, the same-SQL ceiling, the stored-bytes ceiling (reads only)
SERVERS = ("service", "ceiling", "stored")
#: a family-C row's fourth target: the service again, through family B's paths (same answers),
#: in the same alternating slices, so that C/B compares measurements of the same minutes
FAMILY_B = "service_b"
CEILINGS = ("ceiling", "stored")
CEILING_NAMES = {"ceiling": "same SQL", "stored": "stored bytes"}


@dataclass
class Row:
    op: str
    title: str
    connections: int
    service: WrkResult
    ceiling: WrkResult  # the same-SQL ceiling
    stored: WrkResult | None  # the stored-bytes ceiling (reads only)
    judged_against: str  # "ceiling" or "stored": the ceiling with more req/s in this row
    ratio: float  # ours / the judged ceiling's req/s
    p99_ratio: float  # ours / the judged ceiling's p99
    cpu_ratio: float  # the judged ceiling's CPU per request (server + PostgreSQL) / ours
    ratios: dict[str, float]  # ours / each ceiling's req/s
    p99_ratios: dict[str, float]
    cpu_ratios: dict[str, float]
    target: float
    valid: bool
    invalid_reason: str
    rps_pass: bool
    p99_pass: bool | None
    family_b: WrkResult | None = None  # a family-C row: the service through family B


# -- processes ---------------------------------------------------------------------------------


class Stack:
    """Everything started, stopped in reverse order whatever happens."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.cleanups: list[Any] = []

    def spawn(
        self, args: list[str], env: dict[str, str], log: Path, *, append: bool = False
    ) -> subprocess.Popen[bytes]:
        with log.open("ab" if append else "wb") as out:
            proc = subprocess.Popen(
                args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        # a second Ctrl-C must not leave servers or temp dirs behind: finish the clean-up first
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for proc in reversed(self.procs):
            stop_process(proc)
        for cleanup in reversed(self.cleanups):
            with contextlib.suppress(Exception):
                cleanup()


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM to the process group we created (the server and its workers), then SIGKILL."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: installing it with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still missing after apt-get install")
    return found


def wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            status, _ = request(port, "GET", "/healthz")
            if status == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} not healthy after {timeout}s:\n{log.read_text()}")


# -- HTTP for set-up and checks ----------------------------------------------------------------


def request(
    port: int,
    method: str,
    path: str,
    body: object = None,
    token: str | None = None,
    content_type: str = "application/json",
    timeout: float = 30,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": content_type}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def responsive(port: int, path: str) -> bool:
    """Whether a server still answers a probe within a few seconds."""
    try:
        status, _ = request(port, "GET", path, timeout=5)
    except OSError:
        return False
    return status == 200


def expect(status: int, body: bytes, wanted: int, what: str) -> bytes:
    if status != wanted:
        raise SystemExit(f"{what}: expected {wanted}, got {status}: {body[:500]!r}")
    return body


def ghost(name: str, prompt: str) -> dict[str, Any]:
    return {
        "apiVersion": "agent.wecode.io/v1",
        "kind": "Ghost",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"systemPrompt": prompt, "mcpServers": {}},
    }


def bot(name: str) -> dict[str, Any]:
    return {
        "kind": "Bot",
        "metadata": {"name": name},
        "spec": {
            "ghostRef": {"name": "seed-0000"},
            "shellRef": {"name": "ClaudeCode"},
            "modelRef": {"name": MODEL},
        },
    }


def seed(port: int, seeds: int) -> tuple[str, str]:
    """Register, log in, make an API token, create the Model and the Ghosts; returns the login
    token and the API token."""
    status, body = request(
        port, "POST", "/api/v1/auth/register", {"username": USER, "password": PASSWORD}
    )
    expect(status, body, 201, "register")
    status, body = request(
        port, "POST", "/api/v1/auth/login", {"username": USER, "password": PASSWORD}
    )
    token: str = json.loads(expect(status, body, 200, "login"))["access_token"]
    status, body = request(port, "POST", "/api/v1/tokens", {"name": "bench"}, token)
    api_token: str = json.loads(expect(status, body, 201, "make an API token"))["token"]
    base = f"/api/v1/namespaces/{USER}"
    model = {
        "kind": "Model",
        "metadata": {"name": MODEL},
        "spec": {"modelConfig": {"env": {"model": "claude", "base_url": "http://127.0.0.1"}}},
    }
    status, body = request(port, "POST", f"{base}/models", model, token)
    expect(status, body, 201, "create Model")
    for i in range(seeds):
        name = f"seed-{i:04d}"
        status, body = request(port, "POST", f"{base}/ghosts", ghost(name, f"Seed {i}."), token)
        expect(status, body, 201, f"create Ghost {name}")
    return token, api_token


_VOLATILE = {"uid", "resourceVersion", "creationTimestamp", "updateTimestamp", "name"}


def _normal(body: bytes) -> object:
    value = json.loads(body)
    if isinstance(value, dict) and isinstance(value.get("metadata"), dict):
        value["metadata"] = {k: v for k, v in value["metadata"].items() if k not in _VOLATILE}
    return value


#: A list envelope's own resourceVersion: the service's is its watch watermark (API.md §15, held
#: in the process's memory), the ceilings' the highest version of the page; the rest of the
#: bytes must be identical.
_LIST_VERSION = re.compile(
    rb'^(\{"apiVersion":"[^"]*","kind":"\w+List","metadata":\{"resourceVersion":")\d+"'
)


def _list_version_aside(body: bytes) -> bytes:
    return _LIST_VERSION.sub(rb'\1"', body, count=1)


def check_same_output(service: int, ceiling: int, stored: int, token: str) -> dict[str, str]:
    """The ceilings must answer what the service answers: byte for byte for reads (both
    ceilings: ``get``, ``list`` for the same-SQL one, ``get_stored``, ``list_stored`` for the
    stored-bytes one; the same through family C's paths, ``get_c``, ``list_c``,
    ``get_c_stored``, ``list_c_stored``, and the service's family C answers must be its family B
    ones, ``get_c_vs_b``, ``list_c_vs_b``), up to ids and times for writes (the same-SQL
    ceiling). A list of the service against a ceiling's: byte for byte but the envelope's
    resourceVersion (the service's watch watermark, which no ceiling keeps)."""
    base = f"/api/v1/namespaces/{USER}"
    out: dict[str, str] = {}

    def compare(label: str, a: tuple[int, bytes], b: tuple[int, bytes], exact: bool) -> None:
        if a[0] != b[0]:
            out[label] = f"DIFFERENT status: {a[0]}, {b[0]}"
        elif a[0] != 200 and exact:
            out[label] = f"FAILED: both answered {a[0]}"
        elif exact and label.startswith("list") and not label.endswith("_vs_b"):
            same = _list_version_aside(a[1]) == _list_version_aside(b[1])
            out[label] = "identical bytes (list version aside)" if same else "DIFFERENT bytes"
        elif exact:
            out[label] = "identical bytes" if a[1] == b[1] else "DIFFERENT bytes"
        else:
            same = _normal(a[1]) == _normal(b[1]) if a[1] or b[1] else True
            out[label] = "same (ids, times aside)" if same else "DIFFERENT content"

    def both(
        method: str, path: str, body: Any = None, ct: str = "application/json"
    ) -> tuple[tuple[int, bytes], tuple[int, bytes]]:
        return (
            request(service, method, path, body, token, ct),
            request(ceiling, method, path, body, token, ct),
        )

    base_c = f"{FAMILY_C}/namespaces/{USER}"
    for label, path in (("get", "/ghosts/seed-0000"), ("list", "/ghosts?limit=100")):
        a, b = both("GET", base + path)
        compare(label, a, b, exact=True)
        compare(f"{label}_stored", a, request(stored, "GET", base + path, None, token), exact=True)
        # family C: the same answers as family B's, from the service and from both ceilings
        c, d = both("GET", base_c + path)
        compare(f"{label}_c_vs_b", a, c, exact=True)
        compare(f"{label}_c", c, d, exact=True)
        compare(f"{label}_c_stored", c, request(stored, "GET", base_c + path, None, token), True)
    a = request(service, "POST", f"{base}/ghosts", ghost("check-svc", "x"), token)
    b = request(ceiling, "POST", f"{base}/ghosts", ghost("check-ceil", "x"), token)
    compare("create_ghost", a, b, exact=False)
    a = request(service, "POST", f"{base}/bots", bot("check-svc"), token)
    b = request(ceiling, "POST", f"{base}/bots", bot("check-ceil"), token)
    compare("create_bot", a, b, exact=False)
    a = request(service, "PUT", f"{base}/ghosts/check-svc", ghost("check-svc", "y"), token)
    b = request(ceiling, "PUT", f"{base}/ghosts/check-ceil", ghost("check-ceil", "y"), token)
    compare("replace", a, b, exact=False)
    patch = {"metadata": {"labels": {"p": "1"}}, "spec": {"systemPrompt": "z"}}
    ct = "application/merge-patch+json"
    a = request(service, "PATCH", f"{base}/ghosts/check-svc", patch, token, ct)
    b = request(ceiling, "PATCH", f"{base}/ghosts/check-ceil", patch, token, ct)
    compare("patch", a, b, exact=False)
    a = request(service, "DELETE", f"{base}/ghosts/check-svc", None, token)
    b = request(ceiling, "DELETE", f"{base}/ghosts/check-ceil", None, token)
    compare("delete", a, b, exact=False)
    return out


def check_same_sql(env: dict[str, str]) -> dict[str, str]:
    """The same-SQL ceiling's SQL text must be the service's, statement by statement, and so
    must the list statements' parameters (kind, namespace, limit + 1, and the budget's share
    of one item for the quick statement, the byte budget for the budgeted one)."""
    import ceiling

    from wegent.resources import references
    from wegent.resources.selectors import parse_selector
    from wegent.resources.store import Statements, list_statement
    from wegent.settings import load_settings

    ours = Statements.for_table("kinds")
    budget = load_settings(env).list_budget_bytes  # the servers' environment
    theirs = ceiling.list_budget(env)
    lists = {}
    for quick, label, sql, bound in (
        (True, "list", ceiling.SQL_LIST, ceiling.quick_share(theirs, 100)),
        (False, "list_budgeted", ceiling.SQL_LIST_BUDGETED, theirs),
    ):
        list_sql, list_params = list_statement(
            "kinds",
            "Ghost",
            ["ns"],
            deleted=False,
            after=None,
            selector=parse_selector(""),
            filters=[],
            limit=101,
            budget=budget,
            quick=quick,
        )
        same_params = list_params == ["Ghost", "ns", 101, bound]
        lists[label] = (list_sql if same_params else "", sql)
    pairs = {
        "get": (ours.get, ceiling.SQL_GET),
        "get_for_update": (ours.get_for_update, ceiling.SQL_GET_FOR_UPDATE),
        **lists,
        "insert": (ours.insert, ceiling.SQL_INSERT),
        "replace": (ours.replace, ceiling.SQL_REPLACE),
        "lock_live": (ours.lock_live, ceiling.SQL_LOCK_LIVE),
        "soft_delete": (ours.soft_delete, ceiling.SQL_SOFT_DELETE),
        "referrers": (ours.referrers, ceiling.SQL_REFERRERS),
        "find": (references._FIND, ceiling.SQL_FIND),
    }
    return {k: "same" if a == b else "DIFFERENT" for k, (a, b) in pairs.items()}


# -- wrk ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bench:
    """What every wrk run needs: the tool, its threads and environment, who to watch."""

    wrk: str
    threads: int
    env: dict[str, str]
    ports: dict[str, int]
    pids: dict[str, int]  # "service", "ceiling", "stored", "db" (the postmaster)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by a process and its descendants, the exited
    ones included (a parent's cutime/cstime: PostgreSQL backends come and go)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        used = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        stats[int(entry.name)] = (int(fields[1]), used)
    wanted, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _) in stats.items() if ppid == parent]
        wanted.update(children)
        frontier.extend(children)
    return sum(stats[pid][1] for pid in wanted if pid in stats) / CLOCK_TICKS


def run_wrk(bench: Bench, target: str, op: Op, connections: int, seconds: int) -> dict[str, Any]:
    """One wrk run: its ``done()`` JSON (see lua/common.lua), plus the CPU seconds the server
    (``app_cpu_s``) and PostgreSQL (``db_cpu_s``) used meanwhile."""
    wrk, threads, env, port = bench.wrk, bench.threads, bench.env, bench.ports[target]
    threads = max(1, min(threads, connections))
    lag = 4 * -(-connections // threads) + 8
    run_env = {**env, "WB_RUN": secrets.token_hex(4), "WB_LAG": str(lag)}
    args = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA / op.script),
        f"http://127.0.0.1:{port}/api/v1/namespaces/{USER}/ghosts",
    ]
    app_before, db_before = tree_cpu(bench.pids[target]), tree_cpu(bench.pids["db"])
    started = time.time()  # kept with the run: a stall in one slice can be placed in time
    done = subprocess.run(args, env=run_env, capture_output=True, text=True, check=False)
    app_after, db_after = tree_cpu(bench.pids[target]), tree_cpu(bench.pids["db"])
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    raw["app_cpu_s"] = round(app_after - app_before, 3)
    raw["started"] = round(started, 3)
    raw["db_cpu_s"] = round(db_after - db_before, 3)
    return raw


# the percentiles of lua/common.lua's "quantiles" list, in percent
QUANTILE_POINTS = [k / 10 for k in range(1, 990)] + [k / 100 for k in range(9900, 10000)] + [100.0]


def percentile(runs: list[dict[str, Any]], p: float) -> float:
    """The p-th percentile (µs) of several runs together, from each run's quantiles: the
    smallest latency at which the request-weighted mix of their distributions reaches p."""
    total = sum(r["requests"] for r in runs) or 1

    def cdf(x: float) -> float:
        share = 0.0
        for r in runs:
            below = bisect.bisect_right(r["quantiles"], x)
            share += r["requests"] * (QUANTILE_POINTS[below - 1] if below else 0.0)
        return share / total

    candidates = sorted({x for r in runs for x in r["quantiles"]})
    lo, hi = 0, len(candidates) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cdf(candidates[mid]) >= p:
            hi = mid
        else:
            lo = mid + 1
    return float(candidates[lo]) if candidates else 0.0


def combine(runs: list[dict[str, Any]]) -> WrkResult:
    """Several runs (the rounds of one measurement) as one result."""
    requests = sum(r["requests"] for r in runs)
    seconds = sum(r["duration_us"] for r in runs) / 1e6
    errors = Counter[str]()
    for r in runs:
        errors.update(r["errors"])
    mean = sum(r["latency_us"]["mean"] * r["requests"] for r in runs) / max(requests, 1)
    per_request = 1e6 / requests if requests else 0.0  # no answers: no per-request figure
    return WrkResult(
        requests=requests,
        duration_s=round(seconds, 3),
        rps=requests / seconds if seconds else 0.0,
        p50_ms=percentile(runs, 50) / 1000,
        p99_ms=percentile(runs, 99) / 1000,
        mean_ms=mean / 1000,
        max_ms=max(r["latency_us"]["max"] for r in runs) / 1000,
        non2xx=errors["status"],
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        app_cpu_us=sum(r["app_cpu_s"] for r in runs) * per_request,
        db_cpu_us=sum(r["db_cpu_s"] for r in runs) * per_request,
        rounds=[{k: v for k, v in r.items() if k != "quantiles"} for r in runs],
    )


# Before each measurement: vacuum away the dead row versions the slices before it left (a
# write slice leaves thousands: a soft delete or a replace is an UPDATE), so that autovacuum
# does not start in the middle of the next server's slice and each slice starts clean.
VACUUM = "VACUUM"
# Then merge the GIN indexes' pending lists (fastupdate) into the indexes, and write out dirty
# buffers. Otherwise a run inherits the pending entries of the runs before it, and every
# referrers check (``refs @>``) scans them: the same run measured 0.3x or 2x.
SAME_START = (
    "SELECT gin_clean_pending_list(c.oid::regclass) FROM pg_class c "
    "JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'gin' AND c.relkind = 'i' "
    "AND c.relnamespace = 'public'::regnamespace; CHECKPOINT"
)


async def sql_execute(url: str, *statements: str) -> None:
    """Each statement on its own (so VACUUM and DDL run outside a transaction)."""
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def create_stored(url: str) -> None:
    """The stored-bytes ceiling's table, empty."""
    import ceiling

    asyncio.run(sql_execute(url, *ceiling.STORED_SCHEMA))


def copy_stored(url: str) -> None:
    """Fill the stored-bytes ceiling's table with the service's current answers."""
    import ceiling

    vacuum = f"VACUUM ANALYZE {ceiling.STORED_TABLE}"
    asyncio.run(sql_execute(url, *ceiling.STORED_COPY, vacuum))


async def sql_value(url: str, query: str) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


# -- profile -----------------------------------------------------------------------------------

# py-spy's raw format: "func (path/file.py:line);..." with paths relative to sys.path entries.
COMPONENTS = [
    ("auth guard + JWT (wegent/auth, jwt)", ("wegent/auth/", "jwt/")),
    ("body decode (wegent decode.py, bodies.py)", ("wegent/resources/decode.py", "wegent/api/b")),
    ("resource service (wegent/resources)", ("wegent/resources/",)),
    ("wegent api handlers", ("wegent/api/",)),
    ("asyncpg (driver, pool)", ("asyncpg/",)),
    ("litestar (framework)", ("litestar/",)),
    ("uvicorn + httptools", ("uvicorn/", "httptools/")),
    ("asyncio", ("asyncio/",)),
]
# (label, function name prefixes, file prefixes): inclusive share of samples with such a frame
MARKERS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("PolicyGuard (auth, JWT, role cache)", ("PolicyGuard",), ("wegent/auth/policy.py",)),
    ("JWT decode (pyjwt)", ("",), ("jwt/",)),
    ("body decode (DTO + msgspec)", ("StrictBody", "MergePatchBody"), ("wegent/api/bodies.py",)),
    ("CRDService (the operation)", ("",), ("wegent/resources/crd.py",)),
    ("SQL round trips (asyncpg fetch*/execute)", ("Connection.",), ("asyncpg/connection.py",)),
    ("pool acquire", ("Pool",), ("asyncpg/pool.py",)),
    ("pool release: reset query", ("PoolConnectionHolder.release",), ("asyncpg/pool.py",)),
    ("response encode (store.py)", ("",), ("wegent/resources/store.py",)),
    ("litestar (all under it)", ("",), ("litestar/",)),
    ("litestar response/send path", ("",), ("litestar/response/",)),
    ("litestar kwargs/signature", ("",), ("litestar/_kwargs/", "litestar/_signature/")),
]
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame(text: str) -> tuple[str, str]:
    match = _FRAME.match(text)
    return (match["func"], match["file"]) if match else (text, "")


def _component(file: str) -> str:
    for name, prefixes in COMPONENTS:
        if file.startswith(prefixes):
            return name
    return "other (stdlib, libraries)"


def summarize_profile(path: Path) -> dict[str, Any]:
    """Self time by component (innermost Python frame; C code counts for its caller) and the
    inclusive time of a few markers, as shares of the samples where the worker was busy."""
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";")]
        total += count
        leaves[_component(frames[-1][1])] += count
        for label, funcs, files in MARKERS:
            if any(f[1].startswith(files) and f[0].startswith(funcs) for f in frames):
                inclusive[label] += count
    if not total:
        return {"samples": 0, "self_pct": {}, "inclusive_pct": {}}
    return {
        "samples": total,
        "self_pct": {k: round(100 * v / total, 1) for k, v in leaves.most_common()},
        "inclusive_pct": {k: round(100 * v / total, 1) for k, v in inclusive.most_common()},
    }


def ensure_py_spy() -> str:
    exe = Path(sys.executable).parent / "py-spy"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)
    return str(exe)


# -- reporting ---------------------------------------------------------------------------------


def machine(url: str, workers: int, threads: int) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    versions = {}
    for package in ("litestar", "uvicorn", "uvloop", "httptools", "asyncpg", "msgspec"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "python": platform.python_version(),
        "postgresql": asyncio.run(sql_value(url, "SHOW server_version")),
        "wrk": (wrk_version.stdout or wrk_version.stderr).split("[")[0].strip(),
        "workers": workers,
        "wrk_threads": threads,
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "packages": versions,
    }


def table(rows: list[Row]) -> str:
    head = (
        "| operation | conns | ours req/s | same-SQL ceiling req/s | stored-bytes ceiling req/s "
        "| ratio | judged against | ours p50 / p99 ms | same-SQL p50 / p99 ms "
        "| stored-bytes p50 / p99 ms | p99 ratio | non-2xx ours / same SQL / stored "
        "| CPU µs/req server ours / same SQL / stored "
        "| CPU µs/req PostgreSQL ours / same SQL / stored | CPU ratio | target |\n"
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
    )
    lines = []
    for r in rows:
        verdicts = [f"{'PASS' if r.rps_pass else 'FAIL'} ≥{r.target:.2f}"]
        if not r.valid:
            verdicts.insert(0, f"INVALID: {r.invalid_reason}")
        if r.p99_pass is not None:
            verdicts.append(f"p99 {'PASS' if r.p99_pass else 'FAIL'}")
        measured = [r.service, r.ceiling, r.stored]
        errors = " / ".join("—" if m is None else str(m.non2xx) for m in measured)
        if any(m is not None and m.socket_errors for m in measured):
            errors += " (socket " + " / ".join(
                "—" if m is None else str(m.socket_errors) for m in measured
            )
            errors += ")"
        stored_rps = "—" if r.stored is None else f"{r.stored.rps:,.0f}"
        app = " / ".join("—" if m is None else _us(m.app_cpu_us) for m in measured)
        db = " / ".join("—" if m is None else _us(m.db_cpu_us) for m in measured)
        lines.append(
            f"| {r.title} | {r.connections} | {r.service.rps:,.0f} | {r.ceiling.rps:,.0f} "
            f"| {stored_rps} | {r.ratio:.2f} | {CEILING_NAMES[r.judged_against]} "
            f"| {_latency(r.service)} | {_latency(r.ceiling)} | {_latency(r.stored)} "
            f"| {r.p99_ratio:.2f} | {errors} | {app} | {db} | {r.cpu_ratio:.2f} "
            f"| {', '.join(verdicts)} |"
        )
    return head + "\n".join(lines) + "\n"


def family_pairs(rows: list[Row]) -> list[dict[str, Any]]:
    """Each variant (family C, an API token) against the plain way (family B, a login JWT),
    from each variant's row: there the service is measured both ways in the same alternating
    slices (with the ceilings between them), so ``c_over_b`` (req/s of the variant over B)
    compares the same minutes of the machine. Its value per
    slice pair (``c_over_b_slices``: the first slice of C with the first of B, ...) shows how
    much it moves from one slice to the next: the noise it is judged against."""
    pairs = []
    for c in rows:
        b = c.family_b
        op = BY_KEY[c.op]
        if b is None or op.same_as is None:
            continue
        judged = getattr(c, c.judged_against)
        slices = [
            _slice_rps(x) / _slice_rps(y) if _slice_rps(y) else 0.0
            for x, y in zip(c.service.rounds, b.rounds, strict=False)
        ]
        pairs.append(
            {
                "op": op.key,
                "title": op.title,
                "connections": c.connections,
                "rps": {"C": c.service.rps, "B": b.rps},
                "c_over_b": c.service.rps / b.rps if b.rps else 0.0,
                "c_over_b_slices": slices,
                "ratio": {"C": c.ratio, "B": b.rps / judged.rps if judged.rps else 0.0},
                "against": c.judged_against,
                "p99_ms": {"C": c.service.p99_ms, "B": b.p99_ms},
                "app_cpu_us": {"C": c.service.app_cpu_us, "B": b.app_cpu_us},
                "db_cpu_us": {"C": c.service.db_cpu_us, "B": b.db_cpu_us},
                "cpu_c_over_b": (c.service.app_cpu_us / b.app_cpu_us if b.app_cpu_us else 0.0),
            }
        )
    return pairs


def _slice_rps(run: dict[str, Any]) -> float:
    seconds = run["duration_us"] / 1e6
    return run["requests"] / seconds if seconds else 0.0


def family_table(pairs: list[dict[str, Any]]) -> str:
    """Family C against family B (see :func:`family_pairs`)."""
    if not pairs:
        return ""
    head = (
        "| variant | conns | req/s V / B | **V/B** | V/B per slice pair "
        "| ratio to the row's best ceiling V / B | p99 ms V / B "
        "| server CPU µs/req V / B | server CPU V/B |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for x in pairs:
        slices = ", ".join(f"{v:.2f}" for v in x["c_over_b_slices"])
        lines.append(
            f"| {x['title']} | {x['connections']} "
            f"| {x['rps']['C']:,.0f} / {x['rps']['B']:,.0f} | **{x['c_over_b']:.2f}** "
            f"| {slices} | {x['ratio']['C']:.2f} / {x['ratio']['B']:.2f} "
            f"({CEILING_NAMES[x['against']]}) "
            f"| {x['p99_ms']['C']:.1f} / {x['p99_ms']['B']:.1f} "
            f"| {x['app_cpu_us']['C']:,.0f} / {x['app_cpu_us']['B']:,.0f} "
            f"| {x['cpu_c_over_b']:.2f} |"
        )
    return head + "\n".join(lines) + "\n"


def _latency(result: WrkResult | None) -> str:
    return "—" if result is None else f"{result.p50_ms:.1f} / {result.p99_ms:.1f}"


def _us(value: float) -> str:
    return f"{value:,.0f}" if value else "—"


def machine_line(info: dict[str, Any], args: argparse.Namespace) -> str:
    return (
        f"{info['date']}; {info['nproc']} CPUs ({info['cpu']}); Python {info['python']}; "
        f"PostgreSQL {info['postgresql']}; {info['wrk']}; uvicorn workers {info['workers']}; "
        f"wrk threads {info['wrk_threads']}; per row and server {args.rounds} alternating "
        f"slices of {max(1, round(args.duration / args.rounds))} s; "
        f"connections {','.join(map(str, args.connections))}; load average (1, 5, 15 min) "
        f"before {info['load_before']}, after {info.get('load_after', '?')}."
    )


def replace_marked(begin: str, end: str, block: str, section: str | None = None) -> bool:
    """Put ``block`` (from ``begin`` to ``end``, both included) in place of the marked block of
    docs/performance.md; when there is none, append it under ``## {section}``, or, with no
    section, leave the file alone and answer False. The other benchmarks write through this."""
    doc = DOCS.read_text()
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        doc = head + block + rest.split(end, 1)[1]
    elif section is not None:
        doc = doc.rstrip("\n") + f"\n\n## {section}\n\n" + block + "\n"
    else:
        return False
    DOCS.write_text(doc)
    return True


def update_docs(text: str) -> None:
    """Replace the "## Last results" section of docs/performance.md (append it if absent)."""
    section = f"## Last results\n\n{text}\n"
    doc = DOCS.read_text() if DOCS.exists() else "# Performance\n\n"
    match = re.search(r"^## Last results\n.*?(?=^## |\Z)", doc, flags=re.M | re.S)
    if match:
        doc = (
            doc[: match.start()]
            + section
            + ("\n" if match.end() < len(doc) else "")
            + (doc[match.end() :])
        )
    else:
        doc = doc.rstrip("\n") + "\n\n" + section
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(doc)


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    # 20 s in 10 slices: with 10 s in 2, the same code's ratio in a row moved by up to 0.3 from
    # one run to the next on this shared machine, and with 4 slices of 5 s the machine's speed
    # still moved by up to 2x from one slice to the next (docs/performance.md, "Method")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per server, row (20)")
    parser.add_argument("--quick", action="store_true", help="3 s runs, short warm-up (dev)")
    parser.add_argument(
        "--connections",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[16, 64],
        help="comma-separated connection counts (16,64)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEGENT_WORKERS", "1")),
        help="uvicorn workers for both servers (WEGENT_WORKERS or 1)",
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=10,
        help="split each measurement into this many alternating slices per server (10)",
    )
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per op (1)")
    parser.add_argument(
        "--ops",
        type=lambda s: [x for x in s.split(",") if x],
        default=[op.key for op in OPS],
        help="comma-separated subset of: " + ",".join(op.key for op in OPS),
    )
    parser.add_argument("--seeds", type=int, default=150, help="Ghosts seeded (≥100; 150)")
    parser.add_argument(
        "--profile", action="store_true", help="also profile the service (py-spy) per op"
    )
    parser.add_argument(
        "--service-app",
        metavar="MODULE:FACTORY",
        help="measure this app factory (uvicorn --factory, same settings) instead of "
        "`wegent serve`, e.g. to try a change to the service before making it",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/performance.md")
    parser.add_argument("--keep-logs", action="store_true", help="print server log paths, keep")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = min(args.duration, 3.0)
        args.rounds = min(args.rounds, 2)
        args.warmup = min(args.warmup, 1.0)
    unknown = [k for k in args.ops if k not in BY_KEY]
    if unknown:
        parser.error(f"unknown operation(s): {', '.join(unknown)}")
    if args.seeds < 101:
        parser.error("--seeds must be at least 101 (a page of 100 and a next page)")
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
    from wegent.db.embedded import start_embedded, stop_embedded
    from wegent.db.engine import ensure_database

    tmp = Path(tempfile.mkdtemp(prefix="wegent-bench-"))
    if not args.keep_logs:
        stack.cleanups.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
    print(f"work dir {tmp}; starting embedded PostgreSQL", flush=True)
    server = start_embedded(tmp / "pg")
    stack.cleanups.append(lambda: stop_embedded(server))
    asyncio.run(ensure_database(server.get_uri(), "wegent_bench"))
    url = server.get_uri(database="wegent_bench")

    env = {
        **os.environ,
        "WEGENT_DATABASE_URL": url,
        "WEGENT_DATA_DIR": str(tmp / "data"),
        "WEGENT_JWT_SECRET": secrets.token_urlsafe(48),
        "WEGENT_SECRET_KEY": secrets.token_urlsafe(48),
        "WEGENT_WORKERS": str(args.workers),
        "WEGENT_ARGON2_PROFILE": "test",
        "WEGENT_ACCESS_LOG": "false",
        "PYTHONUNBUFFERED": "1",
    }
    migrated = subprocess.run(
        [sys.executable, "-m", "wegent.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if migrated.returncode != 0:
        raise SystemExit(f"wegent migrate failed:\n{migrated.stdout}{migrated.stderr}")
    create_stored(url)  # before the stored-bytes ceiling starts: it prepares statements on it

    ports = {name: free_port() for name in SERVERS}
    logs = {name: tmp / f"{name}.log" for name in ports}
    if args.service_app:
        service_cmd = [*uvicorn_cmd(args.service_app, ports["service"], args.workers), "--factory"]
    else:
        service_cmd = [sys.executable, "-m", "wegent.cli", "serve", "--port", str(ports["service"])]
    ceiling_env = {**env, "CEILING_USER": USER}
    launch = {
        "service": (service_cmd, env),
        "ceiling": (
            uvicorn_cmd("ceiling:app", ports["ceiling"], args.workers),
            {**ceiling_env, "CEILING_MODE": "sql"},
        ),
        "stored": (
            uvicorn_cmd("ceiling:app", ports["stored"], args.workers),
            {**ceiling_env, "CEILING_MODE": "stored"},
        ),
    }
    procs = {name: stack.spawn(cmd, e, logs[name]) for name, (cmd, e) in launch.items()}
    for name, proc in procs.items():
        wait_healthy(ports[name], proc, logs[name])
    if args.keep_logs:
        print("logs: " + " ".join(str(log) for log in logs.values()))

    token, api_token = seed(ports["service"], args.seeds)
    copy_stored(url)
    asyncio.run(sql_execute(url, "VACUUM ANALYZE"))
    checks = check_same_output(ports["service"], ports["ceiling"], ports["stored"], token)
    sql = check_same_sql(env)
    checks["sql"] = (
        "same statements"
        if all(v == "same" for v in sql.values())
        else "DIFFERENT: " + ", ".join(k for k, v in sql.items() if v != "same")
    )
    print("output check (service vs ceilings): " + ", ".join(f"{k} {v}" for k, v in checks.items()))
    info = machine(url, args.workers, args.threads)
    if info["load_before"][0] > BUSY_LOAD:
        print(
            f"warning: load average {info['load_before'][0]} before the run: something else "
            "is using this machine; absolute figures will be low and ratios noisy",
            flush=True,
        )
    print("machine: " + machine_line(info, args), flush=True)

    wrk_env = {
        **os.environ,
        "WB_TOKEN": token,
        "WB_API_TOKEN": api_token,
        "WB_NS": USER,
        "WB_SEEDS": str(args.seeds),
        "WB_MODEL": MODEL,
        "WB_LUA": str(LUA),
    }
    db_pid = server.get_pid()
    bench = Bench(
        wrk=wrk,
        threads=args.threads,
        env=wrk_env,
        ports=ports,
        pids={name: proc.pid for name, proc in procs.items()} | {"db": db_pid or 0},
    )
    rows: list[Row] = []
    notes: list[str] = []
    pair = 0
    slice_s = max(1, round(args.duration / args.rounds))
    stale = False  # writes were measured since the stored-bytes table was last copied
    for key in args.ops:
        op = BY_KEY[key]
        if op.write:
            stale = True
        elif stale:  # the stored answers must be the service's current ones
            copy_stored(url)
            stale = False
        servers = ("service", "ceiling") if op.write else SERVERS
        if op.same_as:  # a variant: the service the plain way too, in the same slices
            servers = (*servers, FAMILY_B)
        warmed: set[str] = set()
        for connections in args.connections:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
            order = servers[pair % len(servers) :] + servers[: pair % len(servers)]
            pair += 1
            # A B C C B A...: alternating slices cancel a load that drifts while we measure
            for round_ in range(args.rounds):
                for target in order if round_ % 2 == 0 else order[::-1]:
                    who, driven = measured(target, op)
                    if target not in warmed and args.warmup > 0:
                        warm = max(1, round(args.warmup))
                        run_wrk(bench, who, driven, connections, warm)
                        warmed.add(target)
                    asyncio.run(sql_execute(url, VACUUM, SAME_START))
                    runs[target].append(run_wrk(bench, who, driven, connections, slice_s))
            results = {name: combine(r) for name, r in runs.items()}
            row = make_row(op, connections, results)
            rows.append(row)
            # a server that stopped answering would fail every later row: note it, restart it
            for target in dict.fromkeys(measured(name, op)[0] for name in servers):
                probe = "/readyz" if target == "service" else "/healthz"
                if responsive(ports[target], probe):
                    continue
                note = (
                    f"{target} stopped answering {probe} after {op.title} at {connections} "
                    "connections; restarted"
                )
                print(f"warning: {note}", flush=True)
                notes.append(note)
                row.valid, row.invalid_reason = False, f"{target} hung"
                row.rps_pass = False
                row.p99_pass = False if row.p99_pass is not None else None
                stop_process(procs[target], timeout=5)
                cmd, target_env = launch[target]
                procs[target] = stack.spawn(cmd, target_env, logs[target], append=True)
                wait_healthy(ports[target], procs[target], logs[target])
                bench.pids[target] = procs[target].pid
            print(progress_line(row), flush=True)

    profile: dict[str, Any] = {}
    if args.profile:
        profile = run_profile(args, bench, tmp)

    info["load_after"] = [round(x, 2) for x in os.getloadavg()]
    report(args, info, checks, rows, profile, notes)
    failed = [r for r in rows if not r.rps_pass or r.p99_pass is False]
    return 1 if failed else 0


def measured(target: str, op: Op) -> tuple[str, Op]:
    """The server a row's target is and the operation it is driven with: the family-B target
    of a family-C row is the service driven with family B's script."""
    if target == FAMILY_B:
        assert op.same_as is not None
        return "service", BY_KEY[op.same_as]
    return target, op


def uvicorn_cmd(app: str, port: int, workers: int) -> list[str]:
    """uvicorn as ``wegent serve`` runs it: uvloop, httptools, no access log."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--app-dir",
        str(HERE),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
    ]


def make_row(op: Op, connections: int, results: dict[str, WrkResult]) -> Row:
    """One row: ours against each ceiling measured, judged against the faster one."""
    service = results["service"]
    ceilings = {name: results[name] for name in CEILINGS if name in results}
    judged = max(ceilings, key=lambda name: ceilings[name].rps)  # a tie: the same-SQL one
    ours_cpu = service.app_cpu_us + service.db_cpu_us
    ratios = {n: service.rps / c.rps if c.rps else 0.0 for n, c in ceilings.items()}
    p99_ratios = {n: service.p99_ms / c.p99_ms if c.p99_ms else 0.0 for n, c in ceilings.items()}
    cpu_ratios = {
        n: (c.app_cpu_us + c.db_cpu_us) / ours_cpu if ours_cpu else 0.0 for n, c in ceilings.items()
    }
    target = WRITE_TARGET if op.write else READ_TARGETS[op.same_as or op.key]
    # a run answering errors measures the errors, not the operation: it fails whatever its speed
    reason = ""
    if any(not r.requests for r in results.values()):
        reason = "no answers"
    elif any(r.non2xx + r.socket_errors > MAX_ERROR_SHARE * r.requests for r in results.values()):
        reason = "errors"
    valid = not reason
    p99_ratio = p99_ratios[judged]
    return Row(
        op=op.key,
        title=op.title,
        connections=connections,
        service=service,
        ceiling=results["ceiling"],
        stored=results.get("stored"),
        judged_against=judged,
        ratio=ratios[judged],
        p99_ratio=p99_ratio,
        cpu_ratio=cpu_ratios[judged],
        ratios=ratios,
        p99_ratios=p99_ratios,
        cpu_ratios=cpu_ratios,
        target=target,
        valid=valid,
        invalid_reason=reason,
        rps_pass=valid and ratios[judged] >= target,
        p99_pass=(valid and p99_ratio <= P99_FACTOR) if connections == P99_CONNECTIONS else None,
        family_b=results.get(FAMILY_B),
    )


def progress_line(row: Row) -> str:
    """A row as it is measured: ours / same SQL / stored bytes."""
    measured = [row.service, row.ceiling, row.stored]

    def each(value: Any) -> str:
        return "/".join("—" if r is None else value(r) for r in measured)

    return (
        f"{row.title:22} c={row.connections:<3} req/s {each(lambda r: f'{r.rps:.0f}')} "
        f"ratio {row.ratio:.2f} (vs {CEILING_NAMES[row.judged_against]}) "
        f"p99 {each(lambda r: f'{r.p99_ms:.1f}')} ms "
        f"CPU/req app {each(lambda r: f'{r.app_cpu_us:.0f}')} µs "
        f"db {each(lambda r: f'{r.db_cpu_us:.0f}')} µs "
        f"non-2xx {each(lambda r: str(r.non2xx))} (ours/same SQL/stored bytes)"
    )


def run_profile(args: argparse.Namespace, bench: Bench, tmp: Path) -> dict[str, Any]:
    """py-spy record (sampling, non-blocking) of the service under load, per operation."""
    py_spy = ensure_py_spy()
    connections = args.connections[0]
    out: dict[str, Any] = {}
    for key in args.ops:
        op = BY_KEY[key]
        raw = tmp / f"profile-{key}.txt"
        cmd = [py_spy, "record", "--nonblocking", "--rate", "250", "--format", "raw"]
        cmd += ["--duration", str(max(1, round(args.duration))), "-o", str(raw)]
        cmd += ["--pid", str(bench.pids["service"])]
        if args.workers > 1:
            cmd.append("--subprocesses")
        spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)
        run_wrk(bench, "service", op, connections, max(1, round(args.duration)))
        _, err = spy.communicate(timeout=args.duration + 60)
        if spy.returncode != 0 or not raw.exists():
            print(f"py-spy failed for {key}: {err.decode()[-500:]}", file=sys.stderr)
            continue
        out[key] = summarize_profile(raw)
        if args.keep_logs:
            print(f"profile {key}: {raw}")
        shown = ", ".join(f"{k} {v}%" for k, v in list(out[key]["inclusive_pct"].items()))
        print(f"profile {op.title}: {shown}", flush=True)
        print("   self: " + ", ".join(f"{k} {v}%" for k, v in out[key]["self_pct"].items()))
    return out


def report(
    args: argparse.Namespace,
    info: dict[str, Any],
    checks: dict[str, str],
    rows: list[Row],
    profile: dict[str, Any],
    notes: list[str],
) -> None:
    text = table(rows)
    pairs = family_pairs(rows)
    families = family_table(pairs)
    if families:
        families = (
            "Variants against the plain way B (family B `/api/v1/namespaces/{ns}/ghosts…` with a "
            "login JWT), same answers, measured in the variants' rows: the service both ways in "
            "the same alternating slices as the ceilings. Variants: family C "
            "(`/apis/agent.wecode.io/v1/namespaces/{ns}/ghosts…`) and an API token (`wg-…`, "
            "API.md §16). **V/B** is the variant's req/s over B's; per slice pair, how much it "
            "moves from one slice to the next (the noise).\n\n" + families
        )
    targets = (
        f"Targets: GET one ≥ {READ_TARGETS['get']:.2f} and list-100 ≥ {READ_TARGETS['list']:.2f} "
        "of the best ceiling's req/s (the faster of the same-SQL and the stored-bytes ceiling "
        f"in the row), writes ≥ {WRITE_TARGET:.2f} of the same-SQL ceiling's; p99 at "
        f"{P99_CONNECTIONS} connections ≤ {P99_FACTOR:g} times the p99 of the ceiling the row "
        "is judged against."
    )
    passed = sum(r.rps_pass for r in rows) + sum(bool(r.p99_pass) for r in rows)
    total = len(rows) + sum(r.p99_pass is not None for r in rows)
    verdict = f"{passed}/{total} target checks pass."
    if notes:
        verdict += "\n\n" + "\n".join(f"- {note}" for note in notes)
    print()
    print(text)
    if families:
        print(families)
    print(targets)
    print(verdict)
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": info,
        "settings": {
            "duration_s": args.duration,
            "connections": args.connections,
            "workers": args.workers,
            "wrk_threads": args.threads,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "seeds": args.seeds,
        },
        "targets": {
            "read_ratio": READ_TARGETS,
            "write_ratio": WRITE_TARGET,
            "p99_factor": P99_FACTOR,
            "p99_connections": P99_CONNECTIONS,
        },
        "ceilings": CEILING_NAMES,  # the keys of each result row's servers and ratios
        "output_check": checks,
        "notes": notes,
        "results": [asdict(r) for r in rows],
        "family_c_vs_b": pairs,
        "profile": profile,
    }
    latest = RESULTS / "latest.json"
    latest.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {latest}")
    if not args.no_docs:
        body = (
            f"Machine: {machine_line(info, args)}\n\n"
            f"Output check before measuring (service vs ceilings): "
            + ", ".join(f"{k}: {v}" for k, v in checks.items())
            + f".\n\n{text}\n"
            + (f"{families}\n" if families else "")
            + f"{targets} {verdict}\n"
        )
        update_docs(body)
        print(f"updated {DOCS}")


if __name__ == "__main__":
    sys.exit(main())
