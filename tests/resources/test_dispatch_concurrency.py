"""Task dispatch under concurrency (API.md §17): many claimers, one owner per task.

Each test races many claimers (asyncio tasks on the session's app, whose pool holds eight real
PostgreSQL connections, so the claim statements really interleave in the database; and, in one
test, a second ``wegent serve`` process on the same database) over a few hundred tasks, then
checks what every claimer was answered against what the database holds: every task claimed
exactly once, none twice, none left behind. While they race, a separate connection watches
``pg_stat_activity``: a claim statement must never wait for a row lock another claim holds
(``FOR UPDATE SKIP LOCKED``: claimers pass over each other's rows instead of queueing on them).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import TEST_KEY, TEST_SECRET
from tests.helpers import status_body
from tests.reliability.harness import Service, unhandled_errors
from tests.resources.api import Api
from tests.resources.test_dispatch import CLAIM, api, claim, instant
from tests.resources.test_tasks import task
from wegent.settings import Settings

__all__ = ["api"]  # the fixture: a fresh user with a Team "t" in its namespace

TASKS = 200
CLAIMERS = 64
#: A claim statement waiting on another transaction's row lock: what SKIP LOCKED rules out.
ROW_LOCK_WAITS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'
  AND wait_event IN ('transactionid', 'tuple') AND query LIKE '%WITH exhausted AS%'
"""

Claimed = dict[str, Any]


async def create_tasks(api: Api, names: list[str], **spec: Any) -> None:
    """``names`` as PENDING tasks of Team "t", in one batch apply (API.md §9)."""
    for first in range(0, len(names), 500):
        chunk = names[first : first + 500]
        applied = await api.client.post(
            f"/api/v1/namespaces/{api.namespace}/apply",
            json=[task(name, **spec) for name in chunk],
            headers=api.account.headers,
        )
        assert applied.status_code == 200, applied.text
        assert applied.json()["message"] == f"Applied {len(chunk)}/{len(chunk)} resources"


def names(prefix: str, count: int = TASKS) -> list[str]:
    return [f"{prefix}-{i:03d}" for i in range(count)]


async def drain(
    client: httpx.AsyncClient,
    api: Api,
    executor: str,
    batch: int,
    start: asyncio.Event,
) -> list[Claimed]:
    """One executor: claim until a claim answers nothing; everything it was given."""
    await start.wait()
    taken: list[Claimed] = []
    while True:
        response = await client.post(
            CLAIM,
            json={"executor": executor, "namespaces": [api.namespace], "max": batch},
            headers=api.account.headers,
        )
        assert response.status_code == 200, response.text
        items: list[Claimed] = response.json()["items"]
        assert len(items) <= batch
        if not items:
            return taken
        taken += items


async def race(
    claimers: list[Awaitable[list[Claimed]]], start: asyncio.Event, url: str
) -> list[Claimed]:
    """Start every claimer at once; while they run, count claim statements waiting on a row
    lock (there must be none); everything they were given, in one list."""
    done = asyncio.Event()
    waits: list[int] = []

    async def watch() -> None:
        conn = await asyncpg.connect(url)
        try:
            while not done.is_set():
                waits.append(await conn.fetchval(ROW_LOCK_WAITS))
                with contextlib.suppress(TimeoutError):  # a reading every few milliseconds
                    await asyncio.wait_for(done.wait(), 0.002)
        finally:
            await conn.close()

    watcher = asyncio.create_task(watch())
    try:
        start.set()
        answers = await asyncio.wait_for(asyncio.gather(*claimers), timeout=120)
    finally:
        done.set()
        await watcher
    assert waits, "pg_stat_activity was never read while the claimers ran"
    assert max(waits) == 0, f"claim statements waited on row locks: {Counter(waits)}"
    return [item for answer in answers for item in answer]


def by_name(items: list[Claimed]) -> dict[str, Claimed]:
    counted = Counter(item["metadata"]["name"] for item in items)
    twice = sorted(name for name, n in counted.items() if n > 1)
    assert twice == [], f"claimed more than once: {twice}"
    return {item["metadata"]["name"]: item for item in items}


async def phases(conn: asyncpg.Connection, namespace: str) -> dict[str, tuple[str, int]]:
    """Every task of the namespace as stored: its phase and attempt."""
    rows = await conn.fetch(
        "SELECT name, phase, attempt FROM tasks WHERE namespace = $1 AND deleted_at IS NULL",
        namespace,
    )
    return {r["name"]: (r["phase"], r["attempt"]) for r in rows}


def assert_leased(item: Claimed, executor: str, attempt: int, now: datetime) -> None:
    status = item["status"]
    assert (status["phase"], status["executor"], status["attempt"]) == (
        "RUNNING",
        executor,
        attempt,
    ), status
    assert instant(status["leaseExpiresAt"]) > now  # a lease of 300 s, running


@pytest.mark.parametrize("batch", [1, 7])
async def test_64_claimers_take_200_tasks_each_exactly_once(
    api: Api, conn: asyncpg.Connection, settings: Settings, batch: int
) -> None:
    wanted = names("job")
    await create_tasks(api, wanted)
    start = asyncio.Event()
    before = datetime.now(UTC).replace(microsecond=0)
    claimers = [drain(api.client, api, f"ex-{i}", batch, start) for i in range(CLAIMERS)]
    taken = by_name(await race(claimers, start, str(settings.database_url)))
    assert sorted(taken) == wanted  # each once, none left
    for item in taken.values():
        assert_leased(item, item["status"]["executor"], 1, before)
    executors = Counter(item["status"]["executor"] for item in taken.values())
    assert len(executors) > 1, executors  # the work was shared, not taken by one claimer
    stored = await phases(conn, api.namespace)
    assert stored == {name: ("RUNNING", 1) for name in wanted}
    for name in wanted[::20]:  # what a claimer was answered is what is stored
        assert (await api.get("tasks", name)).json() == taken[name]


@pytest.fixture
async def second_process(
    settings: Settings, tmp_path: Path, client: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """A second ``wegent serve`` on the session's database, with the session app's secrets
    (its tokens are good there), and a client of it; its log is checked for unhandled
    errors at the end."""
    service = Service(
        str(settings.database_url),
        tmp_path / "second",
        env={"WEGENT_JWT_SECRET": TEST_SECRET, "WEGENT_SECRET_KEY": TEST_KEY},
    )
    await service.start()
    try:
        async with service.client(timeout=60) as http:
            yield http
    finally:
        await service.stop()
    assert unhandled_errors(service.stderr()) == []


async def test_two_service_processes_claim_200_tasks_each_exactly_once(
    api: Api, conn: asyncpg.Connection, settings: Settings, second_process: httpx.AsyncClient
) -> None:
    wanted = names("shared")
    await create_tasks(api, wanted)
    start = asyncio.Event()
    claimers = [drain(api.client, api, f"here-{i}", 1, start) for i in range(32)]
    claimers += [drain(second_process, api, f"there-{i}", 1, start) for i in range(32)]
    taken = by_name(await race(claimers, start, str(settings.database_url)))
    assert sorted(taken) == wanted
    processes = Counter(item["status"]["executor"].split("-")[0] for item in taken.values())
    assert set(processes) == {"here", "there"}, processes  # both processes took tasks
    assert {item["status"]["attempt"] for item in taken.values()} == {1}
    assert await phases(conn, api.namespace) == {name: ("RUNNING", 1) for name in wanted}


async def claim_all(api: Api, executor: str, count: int) -> list[Claimed]:
    """One executor takes ``count`` tasks, 100 a claim."""
    taken: list[Claimed] = []
    while len(taken) < count:
        response = await api.client.post(
            CLAIM,
            json={"executor": executor, "namespaces": [api.namespace], "max": 100},
            headers=api.account.headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["items"], f"only {len(taken)} of {count} to claim"
        taken += response.json()["items"]
    assert len(taken) == count
    return taken


async def expire_all(conn: asyncpg.Connection, api: Api) -> None:
    """Every running lease of the namespace ran out (the statement of ``test_dispatch.expire``,
    for all of them at once)."""
    await conn.execute(
        "UPDATE tasks SET status = jsonb_set(status, '{leaseExpiresAt}', "
        "'\"2000-01-01T00:00:00Z\"') WHERE namespace = $1 AND phase = 'RUNNING'",
        api.namespace,
    )


async def test_expired_leases_are_reclaimed_each_exactly_once(
    api: Api, conn: asyncpg.Connection, settings: Settings
) -> None:
    wanted = names("lapsed")
    await create_tasks(api, wanted)
    await claim_all(api, "first", TASKS)
    assert await claim(api, "nobody", max=100) == []  # every lease runs: nothing to claim
    await expire_all(conn, api)
    start = asyncio.Event()
    now = datetime.now(UTC).replace(microsecond=0)
    claimers = [drain(api.client, api, f"next-{i}", 3, start) for i in range(CLAIMERS)]
    taken = by_name(await race(claimers, start, str(settings.database_url)))
    assert sorted(taken) == wanted
    for item in taken.values():
        assert item["status"]["executor"].startswith("next-")
        assert_leased(item, item["status"]["executor"], 2, now)
    assert await phases(conn, api.namespace) == {name: ("RUNNING", 2) for name in wanted}
    late = await api.client.post(
        f"/api/v1/namespaces/{api.namespace}/tasks/lapsed-000/heartbeat",
        json={"executor": "first"},
        headers=api.account.headers,
    )
    holder = taken["lapsed-000"]["status"]["executor"]
    assert late.status_code == 409
    assert late.json() == status_body(
        409,
        "Conflict",
        f'Task "lapsed-000": executor "first" holds no lease on it: '
        f'executor "{holder}" holds its lease now',
        details={"name": "lapsed-000", "kind": "Task"},
    )


async def test_pending_lapsed_and_exhausted_tasks_under_concurrent_claims(
    api: Api, conn: asyncpg.Connection, settings: Settings
) -> None:
    """Both halves of the claim at once (PENDING tasks and expired leases, batches mixing
    them), and tasks out of attempts: each of those becomes FAILED once, is never claimed."""
    lapsed, spent, fresh = names("lapsed", 80), names("spent", 40), names("fresh", 80)
    await create_tasks(api, lapsed)
    await create_tasks(api, spent, maxAttempts=1)
    await claim_all(api, "first", 120)
    await expire_all(conn, api)
    await create_tasks(api, fresh)
    since = await conn.fetchval("SELECT max(resource_version) FROM tasks")
    start = asyncio.Event()
    claimers = [drain(api.client, api, f"next-{i}", 7, start) for i in range(CLAIMERS)]
    taken = by_name(await race(claimers, start, str(settings.database_url)))
    assert sorted(taken) == sorted(lapsed + fresh)  # never one out of attempts
    assert {n: t["status"]["attempt"] for n, t in taken.items()} == {
        **{n: 2 for n in lapsed},
        **{n: 1 for n in fresh},
    }
    assert await phases(conn, api.namespace) == {
        **{n: ("RUNNING", 2) for n in lapsed},
        **{n: ("RUNNING", 1) for n in fresh},
        **{n: ("FAILED", 1) for n in spent},
    }
    changes = await conn.fetch(
        "SELECT name, count(*) AS n FROM watch_changes WHERE namespace = $1 AND rv > $2 "
        "GROUP BY name",
        api.namespace,
        since,
    )
    # one write per task since the race began: its claim, or its failure, never two
    assert {r["name"]: r["n"] for r in changes} == {n: 1 for n in lapsed + fresh + spent}
    failed = (await api.get("tasks", "spent-000")).json()["status"]
    assert failed["errorMessage"] == "the executor's lease expired 1 times (spec.maxAttempts is 1)"


async def test_a_claim_racing_a_cancel_never_hands_out_a_cancelled_task(
    api: Api, conn: asyncpg.Connection, settings: Settings
) -> None:
    """Claimers and cancels of every task race; each cancel answers the task it cancelled. A
    task cancelled while PENDING (its answer names no executor) was given to no claimer; a
    task given to a claimer was cancelled after the claim (the cancel's answer names that
    claimer and is a later version), and its holder's heartbeat is then refused."""
    wanted = names("raced", 120)
    await create_tasks(api, wanted)
    start = asyncio.Event()
    order = random.Random(19).sample(wanted, len(wanted))
    cancelled: dict[str, Claimed] = {}

    async def canceller(share: list[str]) -> list[Claimed]:
        await start.wait()
        for name in share:
            response = await api.client.post(
                f"/api/v1/namespaces/{api.namespace}/tasks/{name}/cancel",
                headers=api.account.headers,
            )
            assert response.status_code == 200, response.text
            cancelled[name] = response.json()
        return []

    racers: list[Awaitable[list[Claimed]]] = [
        drain(api.client, api, f"ex-{i}", 2, start) for i in range(16)
    ]
    racers += [canceller(order[k::8]) for k in range(8)]
    taken = by_name(await race(racers, start, str(settings.database_url)))
    assert sorted(cancelled) == wanted
    for name, answer in cancelled.items():
        status = answer["status"]
        assert status["phase"] == "CANCELLED"
        if name not in taken:
            assert "executor" not in status, status  # cancelled while PENDING
            continue
        claim = taken[name]
        assert claim["status"]["phase"] == "RUNNING"
        assert status["executor"] == claim["status"]["executor"]
        assert int(answer["metadata"]["resourceVersion"]) > int(
            claim["metadata"]["resourceVersion"]
        )
    assert await phases(conn, api.namespace) == {
        name: ("CANCELLED", 1 if name in taken else 0) for name in wanted
    }
    for name, claim in list(taken.items())[:5]:
        executor = claim["status"]["executor"]
        late = await api.client.post(
            f"/api/v1/namespaces/{api.namespace}/tasks/{name}/heartbeat",
            json={"executor": executor},
            headers=api.account.headers,
        )
        assert late.status_code == 409
        assert late.json()["message"] == (
            f'Task "{name}": executor "{executor}" holds no lease on it: it is CANCELLED'
        )
