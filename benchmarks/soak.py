"""Soak Wegent with mixed reads and writes through a database restart; lose nothing.

    python benchmarks/soak.py [--duration 300] [--users 20] [--concurrency 64]
                              [--outage-at S] [--outage S] [--json PATH]

Starts its own embedded PostgreSQL in a temp dir and its own ``wegent serve`` (one worker) that
reaches it through ``WEGENT_DATABASE_URL``, registers ``--users`` users, then runs
``--concurrency`` clients (httpx.AsyncClient) for ``--duration`` seconds. Halfway through (or at
``--outage-at``) the database is stopped (``pg_ctl stop -m fast``), kept down ``--outage``
seconds and started again; the service is not touched.

Each client owns the Ghosts it creates, so the last acknowledged write of every object is known:
201 on create and 200 on replace or merge patch (with the returned resourceVersion and content),
204 on delete. A write whose outcome is unknown (a 503, a dropped connection) is sent again as it
was until it gets a definite answer; a create answered 409 or a delete answered 404 on such a
retry means the first attempt had committed. At the end every acknowledged object must be stored
with its last acknowledged resourceVersion and content, and every acknowledged delete must be
gone — checked in SQL and through the API.

Prints total requests, counts by status, 5xx other than 503 (must be 0), 503s (only around the
outage), lost writes (must be 0) and latency percentiles; exits 1 if a check fails. Everything it
started is stopped and removed at the end, also on Ctrl-C or failure. Not run in CI.
"""

# Starts postgres and the service from fixed argument lists; random picks the next operation.

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import asyncpg
import httpx

# The database and the service are the fault tests' (tests/reliability/harness.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.reliability.harness import Postgres, Service, unhandled_errors

PASSWORD = "soak-password-0123"
MAX_OWNED = 25  # objects one client keeps alive at most
RESOLVE_S = 60.0  # how long an uncertain write is retried before it is given up as unresolved
RETRY_PAUSE_S = 0.25
AFTER_OUTAGE_S = 10.0  # 503s are expected from the stop until this long after the start
REQUEST_TIMEOUT_S = 30.0
PG_CTL_TIMEOUT_S = 60.0
SERVICE_READY_S = 90.0
SERVICE_STOP_S = 40.0  # SIGTERM, then SIGKILL after this long


# -- the ledger of acknowledged writes ---------------------------------------------------------


@dataclass
class Expected:
    """The last acknowledged state of one object, owned by one client."""

    namespace: str
    name: str
    state: Literal["present", "deleted", "unresolved"]
    uid: str | None = None
    resource_version: str | None = None
    prompt: str | None = None


@dataclass
class Sample:
    op: str
    started: float
    latency: float
    status: str  # the HTTP status, or "error:<exception>" when no answer came
    detail: str = ""  # for a 5xx other than 503: the request and the answer


@dataclass
class Outage:
    stop_at: float = 0.0
    stopped_at: float = 0.0
    start_at: float = 0.0
    started_at: float = 0.0


@dataclass
class Run:
    args: argparse.Namespace
    http: httpx.AsyncClient
    tokens: dict[str, str]
    t0: float
    deadline: float
    samples: list[Sample] = field(default_factory=list)
    ledger: dict[tuple[str, str], Expected] = field(default_factory=dict)
    acknowledged: Counter[str] = field(default_factory=Counter)
    resolved_by_retry: Counter[str] = field(default_factory=Counter)
    anomalies: list[str] = field(default_factory=list)
    stale_reads: int = 0
    loop_lags: list[float] = field(default_factory=list)
    outage: Outage = field(default_factory=Outage)

    async def send(
        self, op: str, method: str, url: str, token: str, body: Any = None, patch: bool = False
    ) -> httpx.Response | None:
        headers = {"Authorization": f"Bearer {token}"}
        if patch:
            headers["Content-Type"] = "application/merge-patch+json"
        started = time.monotonic()
        try:
            response = await self.http.request(
                method,
                url,
                headers=headers,
                content=None if body is None else json.dumps(body).encode(),
            )
        except httpx.HTTPError as exc:
            self.samples.append(
                Sample(op, started, time.monotonic() - started, f"error:{type(exc).__name__}")
            )
            return None
        sample = Sample(op, started, time.monotonic() - started, str(response.status_code))
        if response.status_code >= 500 and response.status_code != 503:
            sample.detail = f"{method} {url} -> {response.text[:300]}"
        self.samples.append(sample)
        return response

    async def write(
        self, op: str, method: str, url: str, token: str, body: Any = None, patch: bool = False
    ) -> tuple[httpx.Response | None, bool]:
        """Send a write, repeating it while its outcome is unknown; (answer, was retried)."""
        give_up = time.monotonic() + RESOLVE_S
        retried = False
        while True:
            response = await self.send(op, method, url, token, body, patch)
            if response is not None and response.status_code < 500:
                return response, retried
            if time.monotonic() > give_up:
                return None, retried
            retried = True
            await asyncio.sleep(RETRY_PAUSE_S)


def ghost(name: str, prompt: str) -> dict[str, Any]:
    return {
        "apiVersion": "agent.wecode.io/v1",
        "kind": "Ghost",
        "metadata": {"name": name, "labels": {"soak": "yes"}},
        "spec": {"systemPrompt": prompt},
    }


def acknowledge(expected: Expected, response: httpx.Response, prompt: str) -> None:
    meta = response.json()["metadata"]
    expected.state = "present"
    expected.uid = meta["uid"]
    expected.resource_version = meta["resourceVersion"]
    expected.prompt = prompt


async def client(run: Run, index: int, users: list[str]) -> None:
    """One client: a user, its own objects, a random mix of operations until the deadline."""
    rng = random.Random(run.args.seed * 1000 + index)
    user = users[index % len(users)]
    token = run.tokens[user]
    base = f"/api/v1/namespaces/{user}/ghosts"
    live: list[str] = []
    serial = 0
    while time.monotonic() < run.deadline:
        roll = rng.random()
        if roll < 0.25 and live:  # read one of mine: it must be what I last wrote
            name = rng.choice(live)
            response = await run.send("get", "GET", f"{base}/{name}", token)
            expected = run.ledger[(user, name)]
            if response is not None and response.status_code == 200:
                if response.json()["metadata"]["resourceVersion"] != expected.resource_version:
                    run.stale_reads += 1
            elif response is not None and response.status_code != 503:
                run.anomalies.append(f"GET {user}/{name}: {response.status_code}")
        elif roll < 0.5:
            await run.send("list", "GET", f"{base}?limit=50", token)
        elif roll < 0.68 or not live or (roll >= 0.9 and len(live) < 2):
            if len(live) >= MAX_OWNED:
                await delete(run, user, token, base, live, rng)
                continue
            serial += 1
            name = f"c{index:02d}-{serial}"
            prompt = f"{name} v0"
            expected = Expected(user, name, "unresolved")
            run.ledger[(user, name)] = expected
            response, retried = await run.write("create", "POST", base, token, ghost(name, prompt))
            if response is not None and response.status_code == 201:
                acknowledge(expected, response, prompt)
                run.acknowledged["create"] += 1
                live.append(name)
            elif response is not None and response.status_code == 409 and retried:
                got = await run.send("get", "GET", f"{base}/{name}", token)
                if got is not None and got.status_code == 200:
                    acknowledge(expected, got, prompt)
                    run.resolved_by_retry["create"] += 1
                    live.append(name)
            elif response is not None:
                run.anomalies.append(f"create {user}/{name}: {response.status_code}")
                expected.state = "deleted"  # refused: nothing may be stored
        elif roll < 0.9:
            name = rng.choice(live)
            expected = run.ledger[(user, name)]
            version = int((expected.prompt or "v0").rsplit("v", 1)[1]) + 1
            prompt = f"{name} v{version}"
            if roll < 0.8:
                op, method, body, patch = "replace", "PUT", ghost(name, prompt), False
            else:
                op, method, body, patch = "patch", "PATCH", {"spec": {"systemPrompt": prompt}}, True
            response, _ = await run.write(op, method, f"{base}/{name}", token, body, patch)
            if response is not None and response.status_code == 200:
                acknowledge(expected, response, prompt)
                run.acknowledged[op] += 1
            elif response is None:
                expected.state = "unresolved"
                live.remove(name)
            else:
                run.anomalies.append(f"{op} {user}/{name}: {response.status_code}")
        else:
            await delete(run, user, token, base, live, rng)


async def delete(
    run: Run, user: str, token: str, base: str, live: list[str], rng: random.Random
) -> None:
    name = rng.choice(live)
    expected = run.ledger[(user, name)]
    response, retried = await run.write("delete", "DELETE", f"{base}/{name}", token)
    live.remove(name)
    if response is not None and response.status_code == 204:
        expected.state = "deleted"
        run.acknowledged["delete"] += 1
    elif response is not None and response.status_code == 404 and retried:
        expected.state = "deleted"
        run.resolved_by_retry["delete"] += 1
    elif response is None:
        expected.state = "unresolved"
    else:
        run.anomalies.append(f"delete {user}/{name}: {response.status_code}")
        expected.state = "unresolved"


async def outage(run: Run, pg: Postgres) -> None:
    await asyncio.sleep(max(0.0, run.t0 + run.args.outage_at - time.monotonic()))
    run.outage.stop_at = time.monotonic()
    print(f"[{run.outage.stop_at - run.t0:6.1f}s] stopping PostgreSQL (pg_ctl stop -m fast)")
    await pg.stop()
    run.outage.stopped_at = time.monotonic()
    await asyncio.sleep(run.args.outage)
    run.outage.start_at = time.monotonic()
    await pg.start()
    run.outage.started_at = time.monotonic()
    print(f"[{run.outage.started_at - run.t0:6.1f}s] PostgreSQL started again")


async def loop_lag(run: Run) -> None:
    """How late this process's own event loop runs: the share of latency that is the client's."""
    while time.monotonic() < run.deadline:
        before = time.monotonic()
        await asyncio.sleep(0.05)
        run.loop_lags.append(time.monotonic() - before - 0.05)


async def progress(run: Run) -> None:
    while time.monotonic() < run.deadline:
        await asyncio.sleep(10)
        elapsed = time.monotonic() - run.t0
        done = len(run.samples)
        unavailable = sum(s.status == "503" for s in run.samples)
        print(f"[{elapsed:6.1f}s] {done} requests ({done / elapsed:.0f}/s), {unavailable} x 503")


# -- verification and report -------------------------------------------------------------------


async def verify(run: Run, pg: Postgres) -> dict[str, Any]:
    """Compare the ledger with what is stored (SQL) and with what the API answers."""
    conn = await asyncpg.connect(pg.url)
    try:
        rows = await conn.fetch(
            "SELECT namespace, name, uid::text AS uid, resource_version::text AS rv, "
            "spec->>'systemPrompt' AS prompt FROM kinds WHERE kind = 'Ghost' "
            "AND deleted_at IS NULL"
        )
    finally:
        await conn.close()
    stored = {(r["namespace"], r["name"]): r for r in rows}
    lost: list[str] = []
    for key, expected in run.ledger.items():
        row = stored.get(key)
        where = f"{key[0]}/{key[1]}"
        if expected.state == "present":
            if row is None:
                lost.append(f"{where}: acknowledged rv {expected.resource_version}, not stored")
            elif (row["uid"], row["rv"], row["prompt"]) != (
                expected.uid,
                expected.resource_version,
                expected.prompt,
            ):
                lost.append(
                    f"{where}: acknowledged rv {expected.resource_version} {expected.prompt!r}, "
                    f"stored rv {row['rv']} {row['prompt']!r}"
                )
        elif expected.state == "deleted" and row is not None:
            lost.append(f"{where}: acknowledged delete, still stored (rv {row['rv']})")
    unknown = [
        f"{k[0]}/{k[1]}"
        for k in stored
        if k not in run.ledger or run.ledger[k].state not in ("present", "unresolved")
    ]

    # The same through the API, as a client sees it.
    api_mismatches: list[str] = []
    semaphore = asyncio.Semaphore(16)

    async def check(expected: Expected) -> None:
        url = f"/api/v1/namespaces/{expected.namespace}/ghosts/{expected.name}"
        headers = {"Authorization": f"Bearer {run.tokens[expected.namespace]}"}
        async with semaphore:
            response = await run.http.get(url, headers=headers)
        where = f"{expected.namespace}/{expected.name}"
        if expected.state == "deleted":
            if response.status_code != 404:
                api_mismatches.append(f"{where}: deleted, GET {response.status_code}")
            return
        if response.status_code != 200:
            api_mismatches.append(f"{where}: GET {response.status_code}")
            return
        body = response.json()
        seen = (body["metadata"]["uid"], body["metadata"]["resourceVersion"])
        if seen != (expected.uid, expected.resource_version) or (
            body["spec"]["systemPrompt"] != expected.prompt
        ):
            api_mismatches.append(f"{where}: GET shows rv {seen[1]}")

    await asyncio.gather(
        *(check(e) for e in run.ledger.values() if e.state in ("present", "deleted"))
    )
    return {
        "objects_checked": sum(e.state in ("present", "deleted") for e in run.ledger.values()),
        "present": sum(e.state == "present" for e in run.ledger.values()),
        "deleted": sum(e.state == "deleted" for e in run.ledger.values()),
        "unresolved": sum(e.state == "unresolved" for e in run.ledger.values()),
        "lost_writes": lost,
        "api_mismatches": api_mismatches,
        "stored_without_acknowledgement": unknown,
    }


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def report(run: Run, checked: dict[str, Any], wall: float) -> dict[str, Any]:
    samples = run.samples
    by_status = Counter(s.status for s in samples)
    other_5xx = sum(n for s, n in by_status.items() if s.startswith("5") and s != "503")
    no_answer = sum(n for s, n in by_status.items() if s.startswith("error:"))
    window = (run.outage.stop_at, run.outage.started_at + AFTER_OUTAGE_S)
    unavailable = [s for s in samples if s.status == "503"]
    # In the window: the request was in flight at some point between the stop and the end.
    outside = [s for s in unavailable if s.started + s.latency < window[0] or s.started > window[1]]
    served_again = [
        s.started + s.latency
        for s in samples
        if s.status.startswith("2") and s.started >= run.outage.started_at and s.op != "list"
    ]
    recovery = (min(served_again) - run.outage.started_at) if served_again else None
    last_503 = max((s.started + s.latency for s in unavailable), default=None)

    slowest = max(samples, key=lambda s: s.latency, default=None)

    def in_window(s: Sample) -> bool:
        return s.started + s.latency >= window[0] and s.started <= window[1]

    def latencies(
        ops: set[str] | None = None, keep: Callable[[Sample], bool] = lambda s: True
    ) -> dict[str, float]:
        values = [s.latency for s in samples if (ops is None or s.op in ops) and keep(s)]
        return {
            "p50_ms": round(percentile(values, 50) * 1000, 1),
            "p99_ms": round(percentile(values, 99) * 1000, 1),
            "max_ms": round(max(values, default=0.0) * 1000, 1),
        }

    result: dict[str, Any] = {
        "duration_s": run.args.duration,
        "wall_s": round(wall, 1),
        "users": run.args.users,
        "concurrency": run.args.concurrency,
        "total_requests": len(samples),
        "requests_per_s": round(len(samples) / run.args.duration, 1),
        "by_status": dict(sorted(by_status.items())),
        "by_operation": dict(sorted(Counter(s.op for s in samples).items())),
        "5xx_other_than_503": other_5xx,
        "5xx_other_than_503_examples": [
            {"at_s": round(s.started - run.t0, 2), "op": s.op, "request": s.detail}
            for s in samples
            if s.detail
        ][:10],
        "no_answer": no_answer,
        "503": len(unavailable),
        "503_outside_outage_window": len(outside),
        "outage": {
            "stop_at_s": round(run.outage.stop_at - run.t0, 1),
            "down_s": round(run.outage.started_at - run.outage.stopped_at, 1),
            "first_success_after_start_s": None if recovery is None else round(recovery, 2),
            "last_503_after_start_s": None
            if last_503 is None
            else round(last_503 - run.outage.started_at, 2),
        },
        "acknowledged_writes": dict(run.acknowledged),
        "acknowledged_total": sum(run.acknowledged.values()),
        "resolved_by_retry": dict(run.resolved_by_retry),
        "stale_reads": run.stale_reads,
        "anomalies": run.anomalies[:20],
        "latency_all": latencies(),
        "latency_reads": latencies({"get", "list"}),
        "latency_writes": latencies({"create", "replace", "patch", "delete"}),
        "latency_outside_outage_window": latencies(keep=lambda s: not in_window(s)),
        "latency_in_outage_window": latencies(keep=in_window),
        "latency_of_503s": latencies(keep=lambda s: s.status == "503"),
        "client_loop_lag_ms": {
            "p50": round(percentile(run.loop_lags, 50) * 1000, 1),
            "p99": round(percentile(run.loop_lags, 99) * 1000, 1),
            "max": round(max(run.loop_lags, default=0.0) * 1000, 1),
        },
        "slowest": None
        if slowest is None
        else {
            "op": slowest.op,
            "status": slowest.status,
            "at_s": round(slowest.started - run.t0, 2),
            "ms": round(slowest.latency * 1000),
        },
        **{k: v for k, v in checked.items() if not isinstance(v, list)},
        "lost_writes": len(checked["lost_writes"]),
        "lost_write_examples": checked["lost_writes"][:20],
        "api_mismatches": len(checked["api_mismatches"]),
        "api_mismatch_examples": checked["api_mismatches"][:20],
        "stored_without_acknowledgement": len(checked["stored_without_acknowledgement"]),
    }
    failures = []
    if other_5xx:
        failures.append(f"{other_5xx} 5xx other than 503")
    if no_answer:
        failures.append(f"{no_answer} requests without an answer")
    if outside:
        failures.append(f"{len(outside)} 503s outside the outage window")
    if result["lost_writes"] or result["api_mismatches"]:
        failures.append(f"{result['lost_writes']} lost writes, {result['api_mismatches']} via API")
    if result["stored_without_acknowledgement"]:
        failures.append(f"{result['stored_without_acknowledgement']} unexpected stored objects")
    if run.stale_reads or run.anomalies:
        failures.append(f"{run.stale_reads} stale reads, {len(run.anomalies)} anomalies")
    if not run.outage.started_at:
        failures.append("the outage did not happen (duration too short?)")
    result["failures"] = failures
    result["passed"] = not failures
    return result


def print_report(result: dict[str, Any]) -> None:
    print("\n== soak results ==")
    for key, value in result.items():
        if key != "service_unhandled_error_traces":
            print(f"{key:32} {json.dumps(value)}")
    for trace in result.get("service_unhandled_error_traces", []):
        print(f"\n-- service stderr --\n{trace}")
    print("PASSED" if result["passed"] else "FAILED: " + "; ".join(result["failures"]))


# -- main --------------------------------------------------------------------------------------


async def register_users(http: httpx.AsyncClient, count: int) -> dict[str, str]:
    tokens: dict[str, str] = {}
    for i in range(count):
        username = f"soak-{i:02d}"
        created = await http.post(
            "/api/v1/auth/register", json={"username": username, "password": PASSWORD}
        )
        if created.status_code != 201:
            raise SystemExit(f"register {username}: {created.status_code} {created.text}")
        login = await http.post(
            "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
        )
        tokens[username] = login.json()["access_token"]
    return tokens


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    # SIGTERM (and SIGINT, even where a shell ignores it for background jobs) stop the run;
    # the cleanup below still runs.
    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
        loop.add_signal_handler(sig, main_task.cancel)
    folder = Path(tempfile.mkdtemp(prefix="wegent-soak-"))
    pg: Postgres | None = None
    service: Service | None = None
    try:
        print(f"starting PostgreSQL and wegent serve in {folder}")
        pg = await Postgres.start_new(folder / "db", pg_ctl_timeout=PG_CTL_TIMEOUT_S)
        service = Service(pg.url, folder)
        try:
            await service.start(within=SERVICE_READY_S)
        except AssertionError:
            what = "not ready" if service.alive() else "exited"
            raise SystemExit(f"wegent serve {what}:\n{service.stderr()[-3000:]}") from None
        limits = httpx.Limits(
            max_connections=args.concurrency, max_keepalive_connections=args.concurrency
        )
        async with httpx.AsyncClient(
            base_url=service.base_url, timeout=REQUEST_TIMEOUT_S, limits=limits
        ) as http:
            tokens = await register_users(http, args.users)
            t0 = time.monotonic()
            run = Run(args, http, tokens, t0, t0 + args.duration)
            print(
                f"{args.concurrency} clients, {args.users} users, {args.duration:.0f}s; "
                f"database down at {args.outage_at:.0f}s for {args.outage:.0f}s"
            )
            users = list(tokens)
            background = [
                asyncio.create_task(outage(run, pg)),
                asyncio.create_task(progress(run)),
                asyncio.create_task(loop_lag(run)),
            ]
            await asyncio.gather(*(client(run, i, users) for i in range(args.concurrency)))
            wall = time.monotonic() - t0
            await background[0]
            for task in background[1:]:
                task.cancel()
            if not service.alive():
                raise SystemExit(f"the service died:\n{service.stderr()[-3000:]}")
            print("verifying every acknowledged write ...")
            result = report(run, await verify(run, pg), wall)
        result["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
        result["cpus"] = os.cpu_count()
        errors = unhandled_errors(service.stderr())
        result["service_unhandled_errors"] = len(errors)
        result["service_unhandled_error_traces"] = errors[:5]
        if errors:
            result["failures"].append(f"{len(errors)} unhandled errors in the service log")
            result["passed"] = False
        if not result["passed"]:  # keep the service's log for the post-mortem
            kept = Path(tempfile.gettempdir()) / f"wegent-soak-serve-{int(time.time())}.log"
            shutil.copyfile(service.stderr_path, kept)
            result["service_log"] = str(kept)
        return result
    finally:
        if service is not None:
            await service.stop(within=SERVICE_STOP_S)
        if pg is not None:
            await pg.close()
        shutil.rmtree(folder, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent clients")
    parser.add_argument(
        "--outage-at", type=float, default=None, help="seconds in (default: half the duration)"
    )
    parser.add_argument("--outage", type=float, default=5.0, help="seconds the database is down")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.outage_at is None:
        args.outage_at = args.duration / 2
    if args.outage_at + args.outage >= args.duration:
        parser.error("the outage must end before the duration")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = asyncio.run(soak(args))
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("interrupted; everything started was stopped and removed", file=sys.stderr)
        return 130
    print_report(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
