"""Every rule of API.md §15 on every path family, against a served server."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.helpers import status_body
from tests.k8s.conftest import TlsServer
from tests.resources.api import bot, team
from tests.resources.test_tasks import task
from tests.watch.conftest import GROUP, Client, Events, ghost, version

#: Where a namespace's ghosts are listed in each family, and the query that goes with it.
Paths = Callable[[str], tuple[str, dict[str, str]]]
FAMILIES: dict[str, Paths] = {
    "A": lambda ns: ("/api/v1/kinds/ghosts", {"namespace": ns}),
    "B": lambda ns: (f"/api/v1/namespaces/{ns}/ghosts", {}),
    "C": lambda ns: (f"{GROUP}/namespaces/{ns}/ghosts", {}),
}
ACROSS: dict[str, tuple[str, dict[str, str]]] = {
    "A": ("/api/v1/kinds/ghosts", {"allNamespaces": "true"}),
    "C": (f"{GROUP}/ghosts", {}),
}


def names(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"]["name"]) for e in events]


def watch(client: Client, family: str, ns: str, **params: str) -> Any:
    path, query = FAMILIES[family](ns)
    return client.watch(path, **query, **params)


@pytest.mark.parametrize("family", FAMILIES)
def test_current_objects_then_every_change_in_order(admin: Client, family: str) -> None:
    ns = admin.namespace()
    admin.ghost(ns, "b")
    admin.ghost(ns, "a")
    with watch(admin, family, ns) as events:
        first = events.take(2)
        assert names(first) == [("ADDED", "a"), ("ADDED", "b")]  # by name
        created = admin.ghost(ns, "c")
        base = f"/api/v1/namespaces/{ns}/ghosts"
        replaced = admin.must("PUT", f"{base}/c", json=ghost("c", "changed"))
        patched = admin.must(
            "PATCH",
            f"{base}/c",
            json={"spec": {"systemPrompt": "patched"}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        admin.must("DELETE", f"{base}/c")
        restored = admin.must("POST", f"{base}/c/restore")
        got = events.take(5)
    assert names(got) == [
        ("ADDED", "c"),
        ("MODIFIED", "c"),
        ("MODIFIED", "c"),
        ("DELETED", "c"),
        ("ADDED", "c"),
    ]
    assert got[0]["object"] == created
    assert got[1]["object"] == replaced
    assert got[2]["object"] == patched
    assert got[3]["object"]["metadata"]["deletionTimestamp"] is not None
    assert got[4]["object"] == restored
    versions = [version(e["object"]) for e in got]
    assert versions == sorted(set(versions))
    assert versions[0] > max(version(e["object"]) for e in first)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_list_version_is_a_start_point_even_for_an_empty_list(admin: Client, family: str) -> None:
    ns = admin.namespace()
    path, query = FAMILIES[family](ns)
    listed = admin.must("GET", path, params=query)
    assert listed["items"] == []
    start = listed["metadata"]["resourceVersion"]
    assert start != "0" and int(start) > 0
    made = admin.ghost(ns, "x")
    with watch(admin, family, ns, resourceVersion=start) as events:
        assert events.next() == {"type": "ADDED", "object": made}
        events.quiet(0.5)


@pytest.mark.parametrize("start", ["", "0"])
def test_an_empty_or_zero_version_starts_with_the_current_objects(
    admin: Client, start: str
) -> None:
    ns = admin.namespace()
    made = admin.ghost(ns, "only")
    with watch(admin, "C", ns, resourceVersion=start) as events:
        assert events.next() == {"type": "ADDED", "object": made}
        events.quiet(0.3)


def test_a_version_starts_after_it(admin: Client) -> None:
    ns = admin.namespace()
    first = admin.ghost(ns, "one")
    second = admin.ghost(ns, "two")
    with watch(admin, "B", ns, resourceVersion=str(version(first))) as events:
        assert events.next() == {"type": "ADDED", "object": second}
        events.quiet(0.3)


@pytest.mark.parametrize("family", ACROSS)
def test_across_namespaces(admin: Client, user: Client, family: str) -> None:
    mine, other = user.namespace(), admin.namespace()
    path, query = ACROSS[family]
    label = {"suite": user.username}
    with user.watch(path, **query, labelSelector=f"suite={user.username}") as events:
        admin.ghost(other, "hidden", labels=label)  # the user cannot read it
        shown = user.ghost(mine, "shown", labels=label)
        assert events.next() == {"type": "ADDED", "object": shown}
        events.quiet(0.3)
    with admin.watch(path, **query, labelSelector=f"suite={user.username}") as events:
        assert sorted(names(events.take(2))) == [("ADDED", "hidden"), ("ADDED", "shown")]


def test_a_selector_sends_objects_entering_as_added_and_leaving_as_deleted(
    admin: Client,
) -> None:
    ns = admin.namespace()
    path = f"/api/v1/namespaces/{ns}/ghosts/g"
    merge = {"Content-Type": "application/merge-patch+json"}
    with watch(admin, "C", ns, labelSelector="team=a") as events:
        admin.ghost(ns, "g", labels={"team": "b"})  # not shown
        entered = admin.must(
            "PATCH", path, json={"metadata": {"labels": {"team": "a"}}}, headers=merge
        )
        changed = admin.must("PATCH", path, json={"spec": {"systemPrompt": "x"}}, headers=merge)
        left = admin.must(
            "PATCH", path, json={"metadata": {"labels": {"team": "c"}}}, headers=merge
        )
        admin.must("PATCH", path, json={"spec": {"systemPrompt": "y"}}, headers=merge)  # unseen
        got = events.take(3)
        events.quiet(0.3)
    assert got == [
        {"type": "ADDED", "object": entered},
        {"type": "MODIFIED", "object": changed},
        {"type": "DELETED", "object": left},
    ]


def test_a_field_selector_filters_events(admin: Client) -> None:
    ns = admin.namespace()
    with watch(admin, "C", ns, fieldSelector="metadata.name=keep") as events:
        admin.ghost(ns, "drop")
        kept = admin.ghost(ns, "keep")
        assert events.next() == {"type": "ADDED", "object": kept}
        events.quiet(0.3)


def test_a_task_phase_filter_follows_the_phase(admin: Client) -> None:
    ns = admin.namespace()
    base = f"/api/v1/namespaces/{ns}"
    admin.must("POST", f"{base}/ghosts", json=ghost("g"))
    admin.must("POST", f"{base}/bots", json=bot("b", "g"))
    admin.must("POST", f"{base}/teams", json=team("t", "b"))
    with admin.watch(f"{GROUP}/namespaces/{ns}/tasks", phase="RUNNING") as events:
        admin.must("POST", f"{base}/tasks", json=task("job"))  # PENDING: not shown
        running = admin.must("PUT", f"{base}/tasks/job/status", json={"phase": "RUNNING"})
        done = admin.must("PUT", f"{base}/tasks/job/status", json={"phase": "COMPLETED"})
        assert events.take(2) == [
            {"type": "ADDED", "object": running},
            {"type": "DELETED", "object": done},
        ]


@pytest.mark.parametrize("family", FAMILIES)
def test_bookmarks_and_initial_events_end(admin: Client, family: str) -> None:
    """sendInitialEvents: the current objects, a BOOKMARK marking their end, then changes;
    with allowWatchBookmarks, a BOOKMARK at the latest version while nothing happens."""
    ns = admin.namespace()
    made = admin.ghost(ns, "a")
    params = {
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true",
    }
    with watch(admin, family, ns, **params) as events:
        assert events.next() == {"type": "ADDED", "object": made}
        end = events.next()
        assert end["type"] == "BOOKMARK"
        assert end["object"] == {
            "kind": "Ghost",
            "apiVersion": "agent.wecode.io/v1",
            "metadata": {
                "resourceVersion": end["object"]["metadata"]["resourceVersion"],
                "annotations": {"k8s.io/initial-events-end": "true"},
            },
        }
        assert version(end["object"]) >= version(made)
        later = admin.ghost(ns, "b")
        assert events.next() == {"type": "ADDED", "object": later}
        bookmark = events.next(within=5)  # the served server sends one every second
        assert bookmark["type"] == "BOOKMARK"
        assert set(bookmark["object"]["metadata"]) == {"resourceVersion"}
        assert version(bookmark["object"]) >= version(later)


def test_no_bookmarks_unless_asked(admin: Client) -> None:
    ns = admin.namespace()
    with watch(admin, "B", ns, resourceVersion="1" + "0" * 15) as events:
        events.quiet(2.5)  # bookmarks would come every second


@pytest.mark.parametrize("family", FAMILIES)
def test_timeout_seconds_ends_the_stream(admin: Client, family: str) -> None:
    ns = admin.namespace()
    with watch(admin, family, ns, timeoutSeconds="1") as events:
        assert events.ended(within=5) == []


def test_table_events(admin: Client) -> None:
    ns = admin.namespace()
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    with watch(admin, "C", ns, headers={"Accept": accept}) as events:
        made = admin.ghost(ns, "t")
        event = events.next()
    assert event["type"] == "ADDED"
    table = event["object"]
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Skills", "Age"]
    [row] = table["rows"]
    assert row["cells"][0] == "t"
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]


def test_resuming_from_the_last_event_misses_nothing(admin: Client) -> None:
    ns = admin.namespace()
    with watch(admin, "B", ns) as events:
        admin.ghost(ns, "one")
        last = events.next()["object"]
    missed = [admin.ghost(ns, name) for name in ("two", "three")]  # nobody watching
    with watch(admin, "A", ns, resourceVersion=str(version(last))) as events:
        assert events.take(2) == [{"type": "ADDED", "object": obj} for obj in missed]
        events.quiet(0.3)


def test_a_version_the_log_no_longer_holds_is_410_expired(
    admin: Client, served_tls: TlsServer
) -> None:
    ns = admin.namespace()
    old = admin.ghost(ns, "old")
    admin.ghost(ns, "newer")
    cut = version(old)
    prune(served_tls.database_url, cut)  # as the server's pruning does, up to "old"
    with watch(admin, "C", ns, resourceVersion=str(cut - 1)) as events:
        [error] = events.ended()
    assert error == {
        "type": "ERROR",
        "object": status_body(410, "Expired", f"too old resource version: {cut - 1} ({cut})"),
    }
    with watch(admin, "C", ns, resourceVersion=str(cut)) as events:  # still held
        assert names([events.next()]) == [("ADDED", "newer")]


def prune(database_url: str, upto: int) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(
                "WITH gone AS (DELETE FROM watch_changes WHERE rv <= $1) "
                "UPDATE watch_state SET horizon = greatest(horizon, $1)",
                upto,
            )
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"resourceVersionMatch": "NotOlderThan", "resourceVersion": "1"},
            "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ),
        (
            {"sendInitialEvents": "true", "allowWatchBookmarks": "true"},
            "sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to "
            '"NotOlderThan"',
        ),
        (
            {"sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan"},
            "sendInitialEvents requires setting allowWatchBookmarks to true",
        ),
        ({"deleted": "true"}, "deleted is not supported with watch: the trash is not watched"),
        ({"reveal": "true"}, "reveal is not supported with watch: watch events never show secrets"),
        ({"continue": "x"}, "continue is not supported with watch: a watch is not paged"),
        (
            {"resourceVersion": "x"},
            'invalid value "x" for query parameter resourceVersion: '
            "must be a resourceVersion from this server",
        ),
        (
            {"labelSelector": "a in b"},
            None,  # the list's own message
        ),
    ],
)
def test_bad_watch_parameters_are_400(
    admin: Client, params: dict[str, str], message: str | None
) -> None:
    ns = admin.namespace()
    path, query = FAMILIES["C"](ns)
    answer = admin.http.get(path, params={**query, "watch": "true", **params})
    assert answer.status_code == 400, answer.text
    if message is None:  # the list's own refusal
        message = admin.http.get(path, params={**query, **params}).json()["message"]
    assert answer.json() == status_body(400, "BadRequest", message)


DOC = Path(__file__).resolve().parents[2] / "docs" / "watch.md"
DOC_URL = re.compile(r'"http://127\.0\.0\.1:8000(/[^"]+)"')


def test_the_examples_of_docs_watch_md(admin: Client) -> None:
    """Every URL of docs/watch.md's examples streams, and shows a ghost written meanwhile."""
    urls = DOC_URL.findall(DOC.read_text(encoding="utf-8"))
    assert len(urls) == 4
    ns = admin.namespace()
    listed = admin.must("GET", f"/api/v1/namespaces/{ns}/ghosts")
    for i, url in enumerate(urls):
        path, _, query = url.replace("alice", ns).partition("?")
        query = query.replace("$RV", listed["metadata"]["resourceVersion"])
        params = dict(pair.split("=", 1) for pair in query.split("&") if pair)
        if "watch" not in params:
            continue  # the list of the list-then-watch example
        with admin.http.stream("GET", path, params=params) as response:
            assert response.status_code == 200, url
            events = Events(response)
            made = admin.ghost(ns, f"doc{i}")
            while (event := events.next())["object"] != made:
                assert event["type"] in ("ADDED", "BOOKMARK"), event
