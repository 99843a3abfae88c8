"""The hub and the watermark in process: bounds and ordering that a stream cannot show."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest
from litestar import Litestar

from tests.helpers import Account
from tests.resources.api import ghost
from wegent.auth.access import Principal
from wegent.resources.registry import BY_KIND
from wegent.resources.selectors import parse_selector
from wegent.watch import hub as hub_module
from wegent.watch.changes import Change, Filed, Interest
from wegent.watch.stream import Options
from wegent.watch.watermark import MAX_MARKS, Watermark


async def test_a_watch_that_does_not_read_is_dropped_not_waited_for(
    app: Litestar, client: httpx.AsyncClient, alice: Account, conn: asyncpg.Connection
) -> None:
    hub = app.state.services.watch
    user_id = await conn.fetchval("SELECT id FROM users WHERE username = $1", alice.username)
    namespace = alice.username
    watch = hub.open(
        BY_KIND["Ghost"],
        Interest("Ghost", frozenset({namespace}), parse_selector("")),
        Principal(user_id, alice.username, "user"),
        namespace,
        Options(start=None, initial=False, initial_end=False, bookmarks=False, timeout_s=60),
    )
    watch.bound = 3
    watching = hub.watching
    for i in range(5):  # nobody reads the stream meanwhile
        created = await client.post(
            f"/api/v1/namespaces/{namespace}/ghosts", json=ghost(f"g{i}"), headers=alice.headers
        )
        assert created.status_code == 201, created.text
    await hub.settle()
    assert hub.watching == watching - 1
    assert [chunk async for chunk in watch.chunks()] == []  # it ends; its client resumes
    watch.close()
    assert hub.watching == watching - 1


def test_the_watermark_waits_for_every_transaction_that_could_hold_a_lower_version() -> None:
    mark = Watermark()
    assert mark.advance(10, frozenset()) == 10  # nothing running: everything up to 10
    assert mark.advance(20, frozenset({7})) == 10  # 7 may hold a version <= 20
    assert mark.advance(30, frozenset({7, 8})) == 10
    assert mark.advance(40, frozenset({8})) == 20  # 7 is done: the mark it held settles
    assert mark.advance(50, frozenset({8})) == 20
    assert mark.advance(45, frozenset()) == 50  # it never goes back
    assert mark.pending == 0


def test_a_long_transaction_keeps_a_bounded_number_of_marks() -> None:
    mark = Watermark()
    for version in range(1, 10 * MAX_MARKS):
        assert mark.advance(version, frozenset({1})) == 0
        assert mark.pending <= MAX_MARKS
    assert mark.advance(10 * MAX_MARKS, frozenset()) == 10 * MAX_MARKS


async def test_pruning_deletes_every_expired_change_in_batches(
    app: Litestar,
    client: httpx.AsyncClient,
    alice: Account,
    conn: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub = app.state.services.watch
    for i in range(5):
        created = await client.post(
            f"/api/v1/namespaces/{alice.username}/ghosts",
            json=ghost(f"p{i}"),
            headers=alice.headers,
        )
        assert created.status_code == 201, created.text
    upto = await hub.settle()
    monkeypatch.setattr(hub_module, "PRUNE_BATCH", 2)
    monkeypatch.setattr(hub_module, "PRUNE_PAUSE_S", 0)  # thousands of batches of 2 here
    monkeypatch.setattr(hub, "retention_s", 0)
    await hub._prune(upto)
    assert await conn.fetchval("SELECT count(*) FROM watch_changes WHERE rv <= $1", upto) == 0
    assert await conn.fetchval("SELECT horizon FROM watch_state") == await conn.fetchval(
        "SELECT max(resource_version) FROM kinds WHERE resource_version <= $1 AND namespace = $2",
        upto,
        alice.username,
    )


def test_a_change_is_checked_only_against_the_interests_it_can_concern() -> None:
    def interest(selector: str) -> Interest:
        return Interest("Ghost", frozenset({"ns"}), parse_selector(selector))

    def change(labels: dict[str, str], old: dict[str, str] | None) -> Change:
        return Change(
            1,
            "Ghost",
            "ns",
            "g",
            "uid",
            "MODIFIED",
            {"labels": labels},
            None if old is None else {"labels": old},
            b"{}",
        )

    filed = Filed()
    team_a, team_ab, tiered, everything = (
        interest("team=a,tier=1"),
        interest("team in (a,b)"),
        interest("tier=1"),
        interest("team!=c"),
    )
    for one in (team_a, team_ab, tiered, everything):
        filed.add(one, object())
    assert filed.concerned(change({"team": "b"}, None)) == {team_ab, everything}
    assert filed.concerned(change({"x": "y"}, {"team": "a"})) == {team_a, team_ab, everything}
    assert filed.concerned(change({"tier": "1"}, None)) == {tiered, everything}
    watch = next(iter(filed.watches[team_ab]))
    assert filed.remove(team_ab, watch)
    assert not filed.remove(team_ab, watch)
    assert filed.concerned(change({"team": "b"}, None)) == {everything}


async def test_a_hub_notifies_only_when_another_process_has_a_hub(
    app: Litestar, client: httpx.AsyncClient, alice: Account, database_url: str
) -> None:
    """A NOTIFY is a transaction with a commit to flush: a hub alone on its database (one
    worker) sends none; once another process's hub is connected, its writes are notified."""
    hub = app.state.services.watch
    heard: list[int] = []
    notified = asyncio.Event()

    def hear(_conn: object, pid: int, _channel: str, _payload: str) -> None:
        heard.append(pid)
        notified.set()

    listener = await asyncpg.connect(database_url)  # not a hub: it does not count
    other: asyncpg.Connection | None = None
    try:
        await listener.add_listener(hub_module.CHANNEL, hear)
        hubs = await listener.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = $1",
            hub_module.APPLICATION,
        )
        assert hubs == 1  # the app's own
        path = f"/api/v1/namespaces/{alice.username}/ghosts"
        created = await client.post(path, json=ghost("alone"), headers=alice.headers)
        assert created.status_code == 201, created.text
        await hub.settle()
        await asyncio.sleep(0.3)
        assert heard == []

        other = await asyncpg.connect(
            database_url, server_settings={"application_name": hub_module.APPLICATION}
        )
        await other.add_listener(hub_module.CHANNEL, lambda *_: None)
        created = await client.post(path, json=ghost("heard"), headers=alice.headers)
        assert created.status_code == 201, created.text
        async with asyncio.timeout(10):
            await notified.wait()
        assert set(heard) == {hub._pid}
    finally:
        await listener.close()
        if other is not None:
            await other.close()
