"""Faults against a real PostgreSQL and a real ``wegent serve`` process (issue item 2).

Each test has its own embedded PostgreSQL (stopped and started with ``pg_ctl``) and its own
service process, which reaches the database through ``WEGENT_DATABASE_URL``: the test controls
the database and the process separately.

(a) the database stops while requests are in flight: 503s, quickly; the same process recovers;
(b) SIGKILL right after a 201: the object is there after a restart;
(c) SIGTERM during a slow request: it completes, new connections are refused, the process exits
    within the grace period and closes its pool;
(d) no partial writes: a failed atomic batch or single write leaves nothing behind, also when
    the database connection dies halfway through the batch;
(a') found by the soak: an idle pooled connection killed by the server is never a 500 (reads
    retry once on a fresh connection; anything else is a 503).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from tests.helpers import PASSWORD, Account
from tests.reliability.harness import (
    API,
    Postgres,
    Service,
    bot,
    ghost,
    is_unavailable,
    register,
    skill,
    unhandled_errors,
)

ANSWER_BOUND_S = 10.0  # every answer, even during an outage, arrives within this
RECOVERY_BOUND_S = 15.0  # the same process serves again this soon after the database is back
GRACE_PERIOD_S = 30.0  # timeout_graceful_shutdown in wegent/cli.py

LOCK_ROW = (
    "SELECT id FROM kinds WHERE kind = $1 AND namespace = $2 AND name = $3 "
    "AND deleted_at IS NULL FOR UPDATE"
)
WAITING_ON_LOCK = (
    "SELECT pid FROM pg_stat_activity WHERE application_name = 'wegent' "
    "AND wait_event_type = 'Lock'"
)
SERVICE_CONNECTIONS = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'wegent'"


@dataclass(frozen=True)
class Outcome:
    """One request of a load loop: when it started, how long it took, what came back."""

    what: str
    started: float
    elapsed: float
    status: int | None
    unavailable: bool = False
    error: str | None = None
    body: str = ""


async def eventually(check: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    """Poll ``check`` until it is true; the seconds it took. Fails after ``within`` seconds."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        if await check():
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {within}s: {what}")


def objects(account: Account, plural: str = "ghosts") -> str:
    return f"{API}/{account.username}/{plural}"


# -- (a) ---------------------------------------------------------------------------------------


async def test_database_outage_is_fast_503s_and_the_same_process_recovers(
    pg: Postgres, service: Service, http: httpx.AsyncClient
) -> None:
    account = await register(http)
    h = account.headers
    base = objects(account)
    assert (await http.post(base, json=ghost("seed"), headers=h)).status_code == 201
    pid = service.pid
    outcomes: list[Outcome] = []
    stop_load = asyncio.Event()

    async def timed(what: str, call: Awaitable[httpx.Response]) -> Outcome:
        started = time.monotonic()
        try:
            async with asyncio.timeout(ANSWER_BOUND_S):
                response = await call
        except (TimeoutError, httpx.TransportError) as exc:
            failed = Outcome(what, started, time.monotonic() - started, None, error=repr(exc))
            outcomes.append(failed)
            return failed
        outcome = Outcome(
            what,
            started,
            time.monotonic() - started,
            response.status_code,
            unavailable=is_unavailable(response),
            body=response.text[:300] if response.status_code >= 300 else "",
        )
        outcomes.append(outcome)
        return outcome

    async def load(worker: int) -> None:
        n = 0
        while not stop_load.is_set():
            n += 1
            op = (n + worker) % 5
            if op == 0:
                call = http.get(f"{base}/seed", headers=h)
            elif op == 1:
                call = http.get(base, headers=h, params={"limit": 10})
            elif op == 2:
                call = http.post(base, json=ghost(f"w{worker}-{n}"), headers=h)
            elif op == 3:
                call = http.put(f"{base}/seed", json=ghost("seed", f"v{worker}-{n}"), headers=h)
            else:
                call = http.get("/api/v1/users/me", headers=h)
            await timed(f"load {op}", call)
            await asyncio.sleep(0.005)

    workers = [asyncio.create_task(load(i)) for i in range(8)]
    try:
        await asyncio.sleep(0.5)
        down_at = time.monotonic()
        await pg.stop("fast")  # kills the backends of the requests in flight
        await asyncio.sleep(1.0)

        # While the database is down: probes, and one request of each family.
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
        assert is_unavailable(ready), ready.text
        during = [
            await timed("get", http.get(f"{base}/seed", headers=h)),
            await timed("list", http.get(base, headers=h)),
            await timed("create", http.post(base, json=ghost("while-down"), headers=h)),
            await timed("replace", http.put(f"{base}/seed", json=ghost("seed", "x"), headers=h)),
            await timed("patch", http.patch(f"{base}/seed", json={"spec": {}}, headers=h)),
            await timed("delete", http.delete(f"{base}/seed", headers=h)),
            await timed(
                "apply", http.post(f"{API}/{account.username}/apply", json=[ghost("a")], headers=h)
            ),
            await timed(
                "login",
                http.post(
                    "/api/v1/auth/login",
                    json={"username": account.username, "password": PASSWORD},
                ),
            ),
            await timed(
                "register",
                http.post(
                    "/api/v1/auth/register",
                    json={"username": "during-outage", "password": PASSWORD},
                ),
            ),
        ]
        for outcome in during:
            assert outcome.unavailable, outcome

        await pg.start()
        up_at = time.monotonic()

        async def serves() -> bool:
            response = await http.get(f"{base}/seed", headers=h)
            return response.status_code == 200

        recovery = await eventually(serves, RECOVERY_BOUND_S, "the service serves again")
        await asyncio.sleep(0.5)
    finally:
        stop_load.set()
        await asyncio.gather(*workers)

    # Same process, never restarted, ready again, and writes work.
    assert service.proc is not None and service.proc.poll() is None
    assert service.pid == pid
    assert (await http.get("/readyz")).status_code == 200
    assert (await http.post(base, json=ghost("after"), headers=h)).status_code == 201

    errors = [o for o in outcomes if o.error is not None]
    assert not errors, errors[:5]
    assert unhandled_errors(service.stderr()) == []
    bad = [
        o
        for o in outcomes
        if o.status not in (200, 201, 503) or (o.status == 503 and not o.unavailable)
    ]
    assert not bad, (bad[:5], service.stderr()[-3000:])
    slowest = max(o.elapsed for o in outcomes)
    assert slowest < ANSWER_BOUND_S
    unavailable = [o for o in outcomes if o.status == 503]
    assert len(unavailable) >= len(during)
    # 503s only around the outage; everything sent after recovery succeeded.
    settled = up_at + recovery
    assert all(o.started + o.elapsed >= down_at and o.started <= settled for o in unavailable)
    assert all(o.status in (200, 201) for o in outcomes if o.started > settled)
    print(
        f"\n(a) {len(outcomes)} requests, {len(unavailable)} x 503, slowest answer "
        f"{slowest:.2f}s, recovered {recovery:.2f}s after the database was back"
    )


# -- (b) ---------------------------------------------------------------------------------------


async def test_sigkill_right_after_a_201_loses_nothing(
    pg: Postgres, service: Service, http: httpx.AsyncClient
) -> None:
    account = await register(http)
    h = account.headers
    base = objects(account)

    # Acknowledged writes of every kind first: a create, a replace, a create then a delete.
    kept = await http.post(base, json=ghost("kept", "first"), headers=h)
    assert kept.status_code == 201
    replaced = await http.put(f"{base}/kept", json=ghost("kept", "second"), headers=h)
    assert replaced.status_code == 200
    assert (await http.post(base, json=ghost("gone"), headers=h)).status_code == 201
    assert (await http.delete(f"{base}/gone", headers=h)).status_code == 204

    # Then a burst of creates; the process is killed as soon as the first 201 is read.
    acknowledged: dict[str, str] = {}
    unanswered: list[str] = []

    async def create(i: int) -> None:
        name = f"k-{i}"
        try:
            response = await http.post(base, json=ghost(name, f"prompt {i}"), headers=h)
        except httpx.TransportError:
            unanswered.append(name)
            return
        if response.status_code == 201:
            acknowledged[name] = response.json()["metadata"]["uid"]
            if service.proc is not None and service.proc.poll() is None:
                service.signal(signal.SIGKILL)

    await asyncio.gather(*(create(i) for i in range(24)))
    assert await service.wait(10) == -signal.SIGKILL
    assert acknowledged

    await service.start()
    async with service.client(timeout=30) as fresh:
        for name, uid in acknowledged.items():
            got = await fresh.get(f"{base}/{name}", headers=h)
            assert got.status_code == 200, (name, got.text)
            assert got.json()["metadata"]["uid"] == uid
            assert got.json()["spec"]["systemPrompt"] == f"prompt {name.removeprefix('k-')}"
        got = await fresh.get(f"{base}/kept", headers=h)
        assert got.status_code == 200
        assert got.json()["metadata"]["uid"] == kept.json()["metadata"]["uid"]
        assert (
            got.json()["metadata"]["resourceVersion"]
            == (replaced.json()["metadata"]["resourceVersion"])
        )
        assert got.json()["spec"]["systemPrompt"] == "second"
        assert (await fresh.get(f"{base}/gone", headers=h)).status_code == 404
    stored = await pg.fetchval(
        "SELECT count(*) FROM kinds WHERE namespace = $1 AND name = ANY($2::text[]) "
        "AND deleted_at IS NULL",
        account.username,
        list(acknowledged),
    )
    assert stored == len(acknowledged)
    maybe = await pg.fetchval(
        "SELECT count(*) FROM kinds WHERE namespace = $1 AND name = ANY($2::text[])",
        account.username,
        unanswered,
    )
    print(
        f"\n(b) {len(acknowledged)} acknowledged before SIGKILL, all kept; "
        f"{len(unanswered)} cut off, of which {maybe} had committed"
    )


# -- (c) ---------------------------------------------------------------------------------------


async def test_sigterm_lets_a_slow_request_finish_then_exits_and_closes_the_pool(
    pg: Postgres, service: Service, http: httpx.AsyncClient
) -> None:
    account = await register(http)
    h = account.headers
    base = objects(account)
    assert (await http.post(base, json=ghost("slow", "before"), headers=h)).status_code == 201

    locker = await pg.connect()
    try:
        hold = locker.transaction()
        await hold.start()
        assert await locker.fetchval(LOCK_ROW, "Ghost", account.username, "slow") is not None
        put = asyncio.create_task(http.put(f"{base}/slow", json=ghost("slow", "after"), headers=h))

        async def put_waits() -> bool:
            return bool(await locker.fetch(WAITING_ON_LOCK))

        await eventually(put_waits, 10, "the PUT waits for the row lock")

        term_at = time.monotonic()
        service.signal(signal.SIGTERM)

        async def refused() -> bool:
            try:
                async with service.client(timeout=1) as fresh:
                    await fresh.get("/healthz")
            except httpx.ConnectError:
                return True  # the listening socket is closed
            except httpx.TransportError:
                # Accepted just before the listener closed, then closed unanswered by uvicorn's
                # shutdown (it had not read the request yet): not refused yet, try again.
                return False
            return False

        await eventually(refused, 5, "new connections are refused once shutdown starts")
        await asyncio.sleep(0.3)
        assert not put.done(), "the slow request ended before its lock was released"
        assert service.proc is not None and service.proc.poll() is None
        await hold.rollback()
    finally:
        await locker.close()

    answer = await asyncio.wait_for(put, ANSWER_BOUND_S)
    assert answer.status_code == 200, answer.text
    assert answer.json()["spec"]["systemPrompt"] == "after"
    code = await service.wait(GRACE_PERIOD_S - (time.monotonic() - term_at))
    exited_after = time.monotonic() - term_at
    err = service.stderr()
    # uvicorn re-raises the signal after a clean shutdown, the conventional way to report it.
    assert code in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err, err  # the lifespan ran: the pool was closed
    assert "unhandled error" not in err, err

    async def pool_closed() -> bool:
        return int(await pg.fetchval(SERVICE_CONNECTIONS)) == 0

    await eventually(pool_closed, 5, "no connection of the service is left")
    stored = await pg.fetchval(
        "SELECT spec->>'systemPrompt' FROM kinds WHERE kind = 'Ghost' AND namespace = $1 "
        "AND name = 'slow' AND deleted_at IS NULL",
        account.username,
    )
    assert stored == "after"
    print(f"\n(c) exited {exited_after:.2f}s after SIGTERM (grace period {GRACE_PERIOD_S:.0f}s)")


# -- (d) ---------------------------------------------------------------------------------------

COUNT_ALL = "SELECT count(*) FROM kinds WHERE namespace = $1"


async def test_failed_atomic_batch_and_failed_single_write_leave_nothing(
    pg: Postgres, http: httpx.AsyncClient
) -> None:
    account = await register(http)
    h = account.headers
    ns = account.username

    # Applied in dependency order: the Skill and the Ghost are written, then the Bot fails.
    batch = [bot("b-bad", "g-ok", "no-such-shell"), ghost("g-ok", skills=["s-ok"]), skill("s-ok")]
    answer = await http.post(f"{API}/{ns}/apply", params={"atomic": "true"}, json=batch, headers=h)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is False
    assert [r["success"] for r in body["results"]] == [False, False, False]
    assert "no-such-shell" in (body["results"][0]["error"] or "")
    assert await pg.fetchval(COUNT_ALL, ns) == 0

    # A single write that fails its reference check writes nothing either.
    single = await http.post(
        objects(account, "bots"), json=bot("b-single", "no-such-ghost", "ClaudeCode"), headers=h
    )
    assert single.status_code == 422, single.text
    assert single.json()["reason"] == "Invalid"
    assert single.json()["details"]["causes"][0]["field"] == "spec.ghostRef"
    lone = await http.post(objects(account), json=ghost("g-lone", skills=["missing"]), headers=h)
    assert lone.status_code == 422, lone.text
    assert await pg.fetchval(COUNT_ALL, ns) == 0

    # The control: the same batch without the failing item is written, so the count sees it.
    good = await http.post(
        f"{API}/{ns}/apply", params={"atomic": "true"}, json=batch[1:], headers=h
    )
    assert good.status_code == 200 and good.json()["success"] is True, good.text
    assert await pg.fetchval(COUNT_ALL, ns) == 2


async def test_atomic_batch_cut_off_by_a_dead_connection_leaves_nothing(
    pg: Postgres, service: Service, http: httpx.AsyncClient
) -> None:
    account = await register(http)
    h = account.headers
    ns = account.username
    created = await http.post(objects(account), json=ghost("held", "before"), headers=h)
    assert created.status_code == 201
    version = created.json()["metadata"]["resourceVersion"]

    # The two Skills are written first; the Ghost then waits for the row lock the test holds,
    # and its database connection is terminated while it waits.
    batch = [ghost("held", "after"), skill("s-one"), skill("s-two")]
    locker = await pg.connect()
    try:
        hold = locker.transaction()
        await hold.start()
        await locker.fetchval(LOCK_ROW, "Ghost", ns, "held")
        apply = asyncio.create_task(
            http.post(f"{API}/{ns}/apply", params={"atomic": "true"}, json=batch, headers=h)
        )
        waiting: list[asyncpg.Record] = []

        async def batch_waits() -> bool:
            waiting[:] = await locker.fetch(WAITING_ON_LOCK)
            return bool(waiting)

        await eventually(batch_waits, 10, "the batch waits for the row lock")
        assert await locker.fetchval("SELECT pg_terminate_backend($1)", waiting[0]["pid"])
        answer = await asyncio.wait_for(apply, ANSWER_BOUND_S)
        await hold.rollback()
    finally:
        await locker.close()

    assert is_unavailable(answer), (answer.status_code, answer.text, service.stderr()[-3000:])
    assert await pg.fetchval(COUNT_ALL + " AND kind = 'Skill'", ns) == 0
    got = await http.get(f"{objects(account)}/held", headers=h)
    assert got.status_code == 200
    assert got.json()["spec"]["systemPrompt"] == "before"
    assert got.json()["metadata"]["resourceVersion"] == version


# -- (a') found by the soak --------------------------------------------------------------------


async def test_an_idle_connection_killed_by_the_server_is_never_a_500(
    pg: Postgres, service: Service, http: httpx.AsyncClient
) -> None:
    account = await register(http)
    h = account.headers
    url = f"{objects(account)}/seed"
    assert (await http.post(objects(account), json=ghost("seed"), headers=h)).status_code == 201
    answers: list[httpx.Response] = []
    stop_load = asyncio.Event()

    async def load() -> None:
        while not stop_load.is_set():
            answers.append(await http.get(url, headers=h))

    workers = [asyncio.create_task(load()) for _ in range(16)]
    killer = await pg.connect()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(a.status_code == 500 for a in answers):
            await killer.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'wegent' AND state = 'idle' "
                "AND datname = current_database()"
            )
            await asyncio.sleep(0.05)
    finally:
        stop_load.set()
        await asyncio.gather(*workers)
        await killer.close()
    # The database never went away: a dropped connection may cost a 503, never a 500.
    wrong = [a for a in answers if a.status_code != 200 and not is_unavailable(a)]
    assert not wrong, (wrong[0].status_code, wrong[0].text, unhandled_errors(service.stderr()))


async def test_a_database_restart_ends_watch_streams_and_resuming_misses_nothing(
    pg: Postgres, service: Service, http: httpx.AsyncClient
) -> None:
    """API.md §15: a restart of PostgreSQL ends every open watch (an ERROR event or the end of
    the stream, never silence); the hub reconnects by itself, and a client resuming from the
    last version it received gets every change made since — also those written while it was
    away."""
    account = await register(http)
    h = account.headers
    base = f"{objects(account)}"
    first = (await http.post(base, json=ghost("first"), headers=h)).json()
    events: list[dict[str, Any]] = []

    async def read() -> None:
        params = {"watch": "true", "resourceVersion": first["metadata"]["resourceVersion"]}
        async with http.stream("GET", base, params=params, headers=h) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line:
                    events.append(json.loads(line))

    reader = asyncio.create_task(read())
    second = (await http.post(base, json=ghost("second"), headers=h)).json()

    async def delivered() -> bool:
        return len(events) == 1

    await eventually(delivered, ANSWER_BOUND_S, "the second ghost's event")
    await pg.stop()
    await asyncio.wait_for(reader, ANSWER_BOUND_S)  # the stream ended
    assert events[0] == {"type": "ADDED", "object": second}
    assert [e["type"] for e in events[1:]] in ([], ["ERROR"])
    if events[1:]:
        assert events[1]["object"]["code"] == 503
    await pg.start()

    async def writes() -> bool:
        made = await http.post(base, json=ghost("third"), headers=h)
        return made.status_code == 201

    await eventually(writes, RECOVERY_BOUND_S, "a write after the restart")
    third = (await http.get(f"{base}/third", headers=h)).json()
    resumed: list[dict[str, Any]] = []

    async def resume() -> bool:
        params = {
            "watch": "true",
            "resourceVersion": second["metadata"]["resourceVersion"],
            "timeoutSeconds": "2",
        }
        resumed.clear()
        async with http.stream("GET", base, params=params, headers=h) as response:
            if response.status_code != 200:
                return False
            async for line in response.aiter_lines():
                if line:
                    resumed.append(json.loads(line))
        return True

    await eventually(resume, RECOVERY_BOUND_S, "a watch after the restart")
    assert resumed == [{"type": "ADDED", "object": third}]
    assert unhandled_errors(service.stderr()) == []
