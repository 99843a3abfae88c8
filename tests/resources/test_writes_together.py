"""Writes coalesced (``CRDService._insert_many``, ``_replace_many``): concurrent creates and
replaces that need nothing but their INSERT or UPDATE share one statement and one commit, and
each answers what it would alone."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar

from tests.helpers import register, status_body
from tests.resources.api import Api, bot, ghost, shell
from wegent.errors import NotFound


@pytest.fixture
async def api(client: httpx.AsyncClient) -> Api:
    account = await register(client)
    return Api(client, account, account.username, "B")


def ghosts_of(app: Litestar) -> Any:
    return app.state.services.resources["Ghost"]


def row(namespace: str, name: str, prompt: str, by: str) -> tuple[Any, ...]:
    """One create's values as ``_insert_together`` queues them."""
    spec = f'{{"systemPrompt":"{prompt}"}}'
    status = '{"state":"Available","message":null}'
    return (namespace, name, None, "{}", "{}", spec, None, status, "[]", by)


def columns(*rows: tuple[Any, ...]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]


async def test_concurrent_creates_share_statements_and_each_answers_its_own_object(
    api: Api, app: Litestar
) -> None:
    inserts = ghosts_of(app)._inserts
    batches, keys = inserts.batches, inserts.keys
    names = [f"t-{i:02d}" for i in range(24)]
    answers = await asyncio.gather(
        *(api.create("ghosts", ghost(name, f"prompt {name}")) for name in names)
    )
    assert [answer.status_code for answer in answers] == [201] * len(names)
    for name, answer in zip(names, answers, strict=True):
        created = answer.json()
        assert (created["metadata"]["name"], created["spec"]) == (
            name,
            {"systemPrompt": f"prompt {name}"},
        )
        assert answer.content == (await api.get("ghosts", name)).content  # what was stored
    metadata = [answer.json()["metadata"] for answer in answers]
    assert len({meta["uid"] for meta in metadata}) == len(names)
    assert len({meta["resourceVersion"] for meta in metadata}) == len(names)
    assert inserts.keys - keys == len(names)
    assert inserts.batches - batches < len(names)  # some of them were inserted together


async def test_a_name_given_twice_in_one_statement_is_created_once(
    api: Api, app: Litestar, conn: asyncpg.Connection
) -> None:
    ns, by = api.namespace, api.account.username
    answered = await ghosts_of(app)._insert_many(
        columns(row(ns, "twice", "first", by), row(ns, "once", "x", by), row(ns, "twice", "2", by))
    )
    assert [position for position, _ in answered] == [1, 2]  # the third is taken: None
    stored = await api.get("ghosts", "twice")
    assert stored.json()["spec"] == {"systemPrompt": "first"}
    assert answered[0][1] == stored.content
    count = "SELECT count(*) FROM kinds WHERE namespace = $1 AND name = $2"
    assert await conn.fetchval(count, ns, "twice") == 1

    again = await asyncio.gather(
        api.create("ghosts", ghost("twice")), api.create("ghosts", ghost("new"))
    )
    assert [answer.status_code for answer in again] == [409, 201]
    assert again[0].json() == status_body(
        409,
        "AlreadyExists",
        f'Ghost "twice" already exists in namespace "{ns}"',
        details={"name": "twice", "kind": "Ghost"},
    )


async def test_a_statement_that_fails_is_retried_one_create_at_a_time(
    api: Api, app: Litestar, conn: asyncpg.Connection
) -> None:
    """A create into a namespace that is gone fails the statement of all of them: each is then
    inserted alone, so only that one fails (404), and nothing of the failed statement stays."""
    ns, by = api.namespace, api.account.username
    answered = dict(
        await ghosts_of(app)._insert_many(
            columns(
                row(ns, "kept-1", "a", by),
                row("gone-ns", "lost", "b", by),
                row(ns, "kept-2", "c", by),
            )
        )
    )
    assert sorted(answered) == [1, 2, 3]
    missing = answered[2]
    assert isinstance(missing, NotFound)
    assert str(missing) == 'namespace "gone-ns" not found'
    for position, name in ((1, "kept-1"), (3, "kept-2")):
        assert answered[position] == (await api.get("ghosts", name)).content
    assert await conn.fetchval("SELECT count(*) FROM kinds WHERE namespace = 'gone-ns'") == 0


async def test_a_lone_create_refused_by_the_database_answers_as_alone(
    api: Api, app: Litestar
) -> None:
    answered = await ghosts_of(app)._insert_many(
        columns(row("gone-ns", "lost", "b", api.account.username))
    )
    ((position, refused),) = answered
    assert position == 1 and isinstance(refused, NotFound)


async def test_concurrent_creates_with_references_share_statements_and_resolve_each(
    api: Api, app: Litestar, conn: asyncpg.Connection
) -> None:
    """Targets found without a lock by coalesced reads, locked by the insert statement."""
    ns = api.namespace
    await api.must_create("ghosts", ghost("g"))
    await api.must_create("shells", shell("ClaudeCode"))
    inserts = app.state.services.resources["Bot"]._inserts
    batches, keys = inserts.batches, inserts.keys
    names = [f"b-{i:02d}" for i in range(12)]
    answers = await asyncio.gather(*(api.create("bots", bot(name, "g")) for name in names))
    assert [answer.status_code for answer in answers] == [201] * len(names)
    for name, answer in zip(names, answers, strict=True):
        assert answer.json()["spec"] == {
            "ghostRef": {"name": "g", "namespace": ns},
            "shellRef": {"name": "ClaudeCode", "namespace": ns},
        }
        assert answer.content == (await api.get("bots", name)).content
    refs = await conn.fetch(
        "SELECT refs::text FROM kinds WHERE kind = 'Bot' AND namespace = $1 AND name LIKE 'b-%'",
        ns,
    )
    assert {row[0] for row in refs} == {f'["Ghost/{ns}/g", "Shell/{ns}/ClaudeCode"]'}
    assert inserts.keys - keys == len(names)
    assert inserts.batches - batches < len(names)


async def test_a_target_deleted_after_it_was_found_is_not_referenced(
    api: Api, app: Litestar, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Ghost goes between the lookup and the insert: the insert skips the Bot, which is
    created again alone, under the lock, and answers as a create after the delete would."""
    ns = api.namespace
    await api.must_create("ghosts", ghost("fleeting"))
    await api.must_create("shells", shell("ClaudeCode"))
    bots = app.state.services.resources["Bot"]
    found = bots._resolve_unlocked

    async def then_deleted(*args: Any) -> list[str]:
        keys = await found(*args)
        assert (await api.delete("ghosts", "fleeting")).status_code == api.deleted
        return keys

    monkeypatch.setattr(bots, "_resolve_unlocked", then_deleted)
    raced = await api.create("bots", bot("late", "fleeting"))
    monkeypatch.undo()
    after = await api.create("bots", bot("late", "fleeting"))
    assert raced.status_code == after.status_code == 422
    assert raced.json() == after.json()
    assert 'Ghost "fleeting" not found in namespace' in raced.json()["message"]
    gone = "SELECT count(*) FROM kinds WHERE kind = 'Bot' AND namespace = $1 AND name = 'late'"
    assert await conn.fetchval(gone, ns) == 0


async def test_a_create_racing_a_delete_of_its_target_never_leaves_a_dangling_reference(
    api: Api,
) -> None:
    """Either the Bot is created and the Ghost's delete is refused (referenced), or the Ghost
    is deleted and the Bot refused (target not found): never both succeed."""
    await api.must_create("shells", shell("ClaudeCode"))
    for i in range(10):
        await api.must_create("ghosts", ghost(f"target-{i}"))
        created, deleted = await asyncio.gather(
            api.create("bots", bot(f"racer-{i}", f"target-{i}")),
            api.delete("ghosts", f"target-{i}"),
        )
        outcome = (created.status_code, deleted.status_code)
        assert outcome in ((201, 409), (422, api.deleted)), (outcome, created.text, deleted.text)


def change(namespace: str, name: str, prompt: str, by: str, version: int | None) -> tuple[Any, ...]:
    """One replace's values as ``_replace_together`` queues them."""
    spec = f'{{"systemPrompt":"{prompt}"}}'
    return (namespace, name, None, "{}", "{}", spec, None, "[]", by, version)


async def test_concurrent_replaces_share_statements_and_each_answers_its_own_object(
    api: Api, app: Litestar
) -> None:
    names = [f"r-{i:02d}" for i in range(20)]
    for name in names:
        await api.must_create("ghosts", ghost(name, "before"))
    replaces = ghosts_of(app)._replaces
    batches, keys = replaces.batches, replaces.keys
    answers = await asyncio.gather(
        *(api.replace("ghosts", name, ghost(name, f"after {name}")) for name in names)
    )
    assert [answer.status_code for answer in answers] == [200] * len(names)
    for name, answer in zip(names, answers, strict=True):
        assert answer.json()["spec"] == {"systemPrompt": f"after {name}"}
        assert answer.json()["metadata"]["generation"] == 2
        assert answer.content == (await api.get("ghosts", name)).content
    assert replaces.keys - keys == len(names)
    assert replaces.batches - batches < len(names)


async def test_a_name_replaced_twice_at_once_is_replaced_one_after_the_other(
    api: Api, app: Litestar
) -> None:
    ns, by = api.namespace, api.account.username
    created = await api.must_create("ghosts", ghost("twice", "0"))
    version = int(created["metadata"]["resourceVersion"])
    await api.must_create("ghosts", ghost("same", "kept"))
    answered = dict(
        await ghosts_of(app)._replace_many(
            columns(
                change(ns, "twice", "1", by, None),
                change(ns, "same", "kept", by, None),  # nothing changes
                change(ns, "twice", "2", by, None),
                change(ns, "twice", "3", by, version),  # written after "1": stale
                change(ns, "never", "x", by, None),  # no such object
            )
        )
    )
    assert sorted(answered) == [1, 2, 3, 4]  # the fifth has no live object: 404
    outcomes = {position: row["outcome"] for position, row in answered.items()}
    assert outcomes == {1: "updated", 2: "unchanged", 3: "updated", 4: "conflict"}
    first, second = (json.loads(answered[p]["body"]) for p in (1, 3))
    assert first["spec"] == {"systemPrompt": "1"} and second["spec"] == {"systemPrompt": "2"}
    assert (
        version
        < int(first["metadata"]["resourceVersion"])
        < int(second["metadata"]["resourceVersion"])
    )
    stored = await api.get("ghosts", "twice")
    assert stored.content == answered[3]["body"] == answered[4]["body"]
    assert answered[2]["body"] == (await api.get("ghosts", "same")).content


async def test_concurrent_patches_of_one_object_are_each_applied(api: Api) -> None:
    """Merge patches without a resourceVersion, at once, each adding its own label: the
    optimistic writes go through the coalesced replace; none is lost."""
    await api.must_create("ghosts", ghost("patched"))
    answers = await asyncio.gather(
        *(
            api.patch("ghosts", "patched", {"metadata": {"labels": {f"k{i}": "v"}}})
            for i in range(12)
        )
    )
    assert [answer.status_code for answer in answers] == [200] * 12
    labels = (await api.get("ghosts", "patched")).json()["metadata"]["labels"]
    assert labels == {f"k{i}": "v" for i in range(12)}
