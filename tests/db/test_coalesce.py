"""Coalesced reads (``wegent.db.coalesce``): the queue's rules with a recording reader, then
GETs through the API against the real database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar

from tests.helpers import register, status_body
from tests.resources.api import Api, ghost
from wegent.db.coalesce import Coalescer


class Reader:
    """A statement stand-in: answers ``value-<key>`` for keys not in ``missing`` after a
    round trip (one loop turn), or fails once with ``fail``; records every batch."""

    def __init__(self, missing: frozenset[str] = frozenset()) -> None:
        self.batches: list[list[str]] = []
        self.missing = missing
        self.fail: Exception | None = None
        self.gate: asyncio.Event | None = None  # when set, each read waits for it

    async def __call__(self, columns: list[list[Any]]) -> list[tuple[int, str]]:
        (names,) = columns
        self.batches.append(names)
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        if self.fail is not None:
            failure, self.fail = self.fail, None
            raise failure
        return [(i, f"value-{n}") for i, n in enumerate(names, 1) if n not in self.missing]


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop turn until ``condition`` holds (a few turns at most)."""
    for _ in range(10):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("not reached in 10 turns of the loop")


async def test_keys_queued_together_are_read_in_one_statement_each_getting_its_row() -> None:
    reader = Reader(missing=frozenset({"b"}))
    coalescer = Coalescer(reader, readers=1)
    got = await asyncio.gather(*(coalescer.get((key,)) for key in ("a", "b", "c", "a")))
    assert got == ["value-a", None, "value-c", "value-a"]
    assert reader.batches == [["a", "b", "c", "a"]]
    assert (coalescer.batches, coalescer.keys) == (1, 4)


async def test_a_lone_read_is_a_batch_of_one_and_nothing_runs_after_it() -> None:
    reader = Reader()
    coalescer = Coalescer(reader, readers=2)
    assert await coalescer.get(("a",)) == "value-a"
    await asyncio.sleep(0)
    assert reader.batches == [["a"]]
    assert coalescer._running == 0 and not coalescer._tasks


async def test_keys_that_arrive_during_a_read_form_the_next_batch() -> None:
    reader = Reader()
    reader.gate = asyncio.Event()
    coalescer = Coalescer(reader, readers=1)
    first = coalescer.get(("a",))
    await until(lambda: len(reader.batches) == 1)  # the reader waits on "a"'s round trip
    later = [coalescer.get((key,)) for key in ("b", "c")]
    reader.gate.set()
    assert await asyncio.gather(first, *later) == ["value-a", "value-b", "value-c"]
    assert reader.batches == [["a"], ["b", "c"]]


async def test_keys_queued_in_the_next_turn_of_the_loop_join_the_batch() -> None:
    """A reader waits one turn before it takes a batch that is not full: requests that arrive
    in that turn (the same poll of the sockets) are read with it."""
    reader = Reader()
    coalescer = Coalescer(reader, readers=1)
    first = coalescer.get(("a",))

    async def arrives() -> Any:
        return await coalescer.get(("b",))

    late = asyncio.ensure_future(arrives())  # runs in the turn the reader waits
    assert await asyncio.gather(first, late) == ["value-a", "value-b"]
    assert reader.batches == [["a", "b"]]


async def test_at_most_readers_statements_run_at_once_and_batches_are_capped() -> None:
    reader = Reader()
    reader.gate = asyncio.Event()
    coalescer = Coalescer(reader, readers=2, max_batch=3)
    futures = [coalescer.get((str(i),)) for i in range(10)]
    await asyncio.sleep(0)
    assert reader.batches == [["0", "1", "2"], ["3", "4", "5"]]  # two readers, three keys each
    reader.gate.set()
    assert await asyncio.gather(*futures) == [f"value-{i}" for i in range(10)]
    assert [len(b) for b in reader.batches] == [3, 3, 3, 1]


async def test_a_second_reader_starts_only_when_a_full_batch_waits() -> None:
    """A reader is a task: while one reads, keys wait for it unless a whole batch is queued."""
    reader = Reader()
    reader.gate = asyncio.Event()
    coalescer = Coalescer(reader, readers=2, max_batch=3)
    first = coalescer.get(("a",))
    await until(lambda: len(reader.batches) == 1)  # the first reader waits on "a"
    waiting = [coalescer.get((key,)) for key in ("b", "c")]
    await asyncio.sleep(0)
    assert coalescer._running == 1 and reader.batches == [["a"]]  # two keys: no new reader
    waiting.append(coalescer.get(("d",)))  # three: a full batch waits
    await until(lambda: len(reader.batches) == 2)
    assert coalescer._running == 2 and reader.batches == [["a"], ["b", "c", "d"]]
    reader.gate.set()
    assert await asyncio.gather(first, *waiting) == ["value-a", "value-b", "value-c", "value-d"]


async def test_another_reader_at_one_reads_each_waiting_key_side_by_side() -> None:
    """List pages: PostgreSQL takes long over each, so every reader allowed runs at once."""
    reader = Reader()
    reader.gate = asyncio.Event()
    coalescer = Coalescer(reader, readers=3, max_batch=8, another_reader_at=1)
    futures = []
    for key in "abc":  # one key a turn: each starts a reader of its own
        futures.append(coalescer.get((key,)))
        await until(lambda: len(reader.batches) == len(futures))
    futures.append(coalescer.get(("d",)))  # all three readers are busy: d waits
    await asyncio.sleep(0)
    assert coalescer._running == 3 and reader.batches == [["a"], ["b"], ["c"]]
    reader.gate.set()
    assert await asyncio.gather(*futures) == [f"value-{k}" for k in "abcd"]
    assert reader.batches == [["a"], ["b"], ["c"], ["d"]]


async def test_a_failed_statement_fails_its_batch_and_the_next_batch_is_read() -> None:
    reader = Reader()
    reader.gate = asyncio.Event()
    coalescer = Coalescer(reader, readers=1)
    failing = [coalescer.get((key,)) for key in ("a", "b")]
    await until(lambda: len(reader.batches) == 1)
    reader.fail = ConnectionError("gone")
    later = coalescer.get(("c",))
    reader.gate.set()
    results = await asyncio.gather(*failing, return_exceptions=True)
    assert [str(r) for r in results] == ["gone", "gone"]
    assert await later == "value-c"
    assert reader.batches == [["a", "b"], ["c"]]


async def test_a_request_that_goes_away_does_not_disturb_its_batch() -> None:
    reader = Reader()
    reader.gate = asyncio.Event()
    coalescer = Coalescer(reader, readers=1)
    first = coalescer.get(("a",))
    await until(lambda: len(reader.batches) == 1)
    gone, kept = coalescer.get(("b",)), coalescer.get(("c",))
    gone.cancel()  # its client left while it waited
    reader.gate.set()
    assert await asyncio.gather(first, kept) == ["value-a", "value-c"]
    assert reader.batches == [["a"], ["c"]]  # a gone request's key is not even read


async def test_a_cancelled_reader_cancels_what_it_read_and_what_waits() -> None:
    reader = Reader()
    reader.gate = asyncio.Event()
    coalescer = Coalescer(reader, readers=1)
    reading = coalescer.get(("a",))
    await until(lambda: len(reader.batches) == 1)
    queued = coalescer.get(("b",))
    (task,) = coalescer._tasks
    task.cancel()  # as at shutdown
    with pytest.raises(asyncio.CancelledError):
        await reading
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert coalescer._running == 0 and not coalescer._queue


# -- through the API, on the real database ------------------------------------------------------


@pytest.fixture
async def api(client: httpx.AsyncClient) -> Api:
    account = await register(client)
    return Api(client, account, account.username, "B")


async def test_concurrent_gets_of_many_objects_answer_each_its_own(api: Api, app: Litestar) -> None:
    """Forty GETs at once — live objects, one deleted, one never made, one in a namespace the
    caller may not read — each get the answer a GET alone gets, in fewer statements."""
    names = [f"g-{i:02d}" for i in range(36)]
    for name in names:
        assert (await api.create("ghosts", ghost(name, f"prompt {name}"))).status_code == 201
    assert (await api.delete("ghosts", names[-1])).status_code == 204
    alone = {name: await api.get("ghosts", name) for name in [*names, "never"]}
    assert alone[names[-1]].status_code == 404 and alone["never"].status_code == 404
    stranger = Api(api.client, await register(api.client), api.namespace, "B")

    coalescer = app.state.services.resources["Ghost"]._objects
    before = coalescer.batches
    together = await asyncio.gather(
        *(api.get("ghosts", name) for name in [*names, "never"] * 1),
        api.get("ghosts", names[0]),
        api.get("ghosts", names[1]),
        stranger.get("ghosts", names[0]),
    )
    for name, answer in zip([*names, "never", names[0], names[1]], together, strict=False):
        assert (answer.status_code, answer.content) == (
            alone[name].status_code,
            alone[name].content,
        ), name
    refused = together[-1]
    assert refused.status_code == 403
    assert refused.json() == status_body(
        403,
        "Forbidden",
        f'user "{stranger.account.username}" cannot read in namespace "{api.namespace}"',
        details={"kind": "Namespace", "name": api.namespace},
    )
    assert coalescer.batches - before < len(names) + 3  # some of them were read together


async def test_a_reader_runs_in_no_request_s_context() -> None:
    """A batch is no one request's: its log lines carry no request id (a fresh context)."""
    from wegent.request_context import CURRENT, Seen

    seen_by_reader: list[object] = []

    async def read(columns: list[list[Any]]) -> list[tuple[int, str]]:
        seen_by_reader.append(CURRENT.get())
        return [(1, "value")]

    token = CURRENT.set(Seen("request-1", "GET", "/x"))
    try:
        assert await Coalescer(read, readers=1).get(("a",)) == "value"
    finally:
        CURRENT.reset(token)
    assert seen_by_reader == [None]


def unversioned(answer: httpx.Response) -> Any:
    """A list's body without its resourceVersion (the watch's watermark, which moves on
    as the log is read)."""
    body = answer.json()
    body.get("metadata", {}).pop("resourceVersion", None)
    return body


def list_batches(app: Litestar) -> int:
    """Statements run so far by the coalescers of list pages."""
    coalescers = app.state.db._coalescers
    return sum(c.batches for sql, c in coalescers.items() if "string_agg" in sql)


async def test_concurrent_lists_answer_each_its_own_page(api: Api, app: Litestar) -> None:
    """Lists at once — first and later pages, a label selector, the trash, a page with an
    object over the quick statement's share (read again alone), an empty namespace, a
    namespace the caller may not read — each get the page a list alone gets, in fewer
    statements."""
    for i in range(12):
        labels = {"tier": "gold" if i % 3 == 0 else "blue"}
        created = await api.create("ghosts", ghost(f"l-{i:02d}", f"prompt {i}", labels=labels))
        assert created.status_code == 201
    assert (await api.delete("ghosts", "l-11")).status_code == 204
    big = ghost("l-big", "x" * 20_000)  # over 8 MiB / 501: the default page's share of one item
    assert (await api.create("ghosts", big)).status_code == 201
    first = await api.list("ghosts", params={"limit": "4"})
    token = first.json()["metadata"]["continue"]
    other = await register(api.client)
    empty = Api(api.client, other, other.username, "B")
    stranger = Api(api.client, empty.account, api.namespace, "B")
    asks: list[tuple[Api, dict[str, str]]] = [
        (api, {"limit": "4"}),
        (api, {"limit": "4", "continue": token}),
        (api, {"labelSelector": "tier=gold"}),
        (api, {"labelSelector": "tier!=gold", "limit": "3"}),
        (api, {"deleted": "true"}),
        (api, {}),  # holds l-big: its quick read leaves the body out, the page is read again
        (empty, {}),
        (stranger, {}),
    ] * 2
    alone = [await who.list("ghosts", params=params) for who, params in asks]
    assert [a.status_code for a in alone] == [200] * 7 + [403] + [200] * 7 + [403]
    assert len(alone[5].json()["items"]) == 12 and alone[6].json()["items"] == []

    before = list_batches(app)
    together = await asyncio.gather(*(who.list("ghosts", params=params) for who, params in asks))
    for (_, params), one, other in zip(asks, alone, together, strict=True):
        assert (other.status_code, unversioned(other)) == (
            one.status_code,
            unversioned(one),
        ), params
    assert list_batches(app) - before < len(asks) - 2  # some were read together


async def test_a_coalesced_page_keeps_the_order_of_the_page() -> None:
    """The statement reading several pages keeps each page's order and length (unit: the text
    it is made of)."""
    from wegent.resources.selectors import parse_selector
    from wegent.resources.store import batchable, list_statement, many_pages, param_types

    sql, params = list_statement(
        "kinds",
        "Ghost",
        ["ns"],
        deleted=False,
        after=("g-1", "00000000-0000-0000-0000-000000000000"),
        selector=parse_selector("tier in (gold,blue),!x"),
        filters=[],
        limit=11,
        budget=1000,
    )
    assert batchable(params)
    assert param_types(params) == ("text",) * 7 + ("bigint", "bigint")
    batch = many_pages(sql, param_types(params))
    assert "$" not in batch.split("FROM unnest(")[0]  # every parameter comes from the arrays
    assert batch.endswith(
        "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], "
        "$7::text[], $8::bigint[], $9::bigint[]) WITH ORDINALITY AS q(p1, p2, p3, p4, p5, p6, "
        "p7, p8, p9, i)"
    )
    _, several = list_statement(
        "kinds",
        "Ghost",
        ["a", "b"],
        deleted=False,
        after=None,
        selector=parse_selector(""),
        filters=[],
        limit=11,
        budget=1000,
    )
    assert not batchable(several)  # several namespaces bind an array: read alone
