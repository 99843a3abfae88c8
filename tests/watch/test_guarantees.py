"""What §15 promises beyond the event rules: nothing missed when transactions commit out of
version order, every process's changes reach every process's watchers, access re-checked while
a stream is open, a lost listener ends streams and comes back by itself."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.helpers import status_body, unique
from tests.k8s.conftest import TlsServer, serve_tls
from tests.watch.conftest import GROUP, Client, ghost, version


class Sql:
    """A raw connection on a loop of its own, for holding a transaction open from a test."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection = self.run(asyncpg.connect(url))

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.run(self.conn.close())
        self.loop.close()


@pytest.fixture
def sql(served_tls: TlsServer) -> Iterator[Sql]:
    raw = Sql(served_tls.database_url)
    yield raw
    raw.close()


def test_a_version_committed_after_a_higher_one_is_not_missed(admin: Client, sql: Sql) -> None:
    """Transaction T takes version R1 and stays open; a write takes R2 > R1 and commits. No
    watch sends R2 before T ends, so a client resuming from R2 cannot have skipped R1."""
    ns = admin.namespace()
    held = admin.ghost(ns, "held")
    path = f"{GROUP}/namespaces/{ns}/ghosts"
    with admin.watch(path, resourceVersion=str(version(held))) as events:
        sql.run(sql.conn.execute("BEGIN"))
        r1 = sql.run(
            sql.conn.fetchval(
                "UPDATE kinds SET labels = '{\"held\": \"yes\"}' WHERE kind = 'Ghost' "
                "AND namespace = $1 AND name = 'held' AND deleted_at IS NULL "
                "RETURNING resource_version",
                ns,
            )
        )
        after = admin.ghost(ns, "after")  # committed, with a higher version
        assert version(after) > r1
        listed = admin.must("GET", path)
        assert [i["metadata"]["name"] for i in listed["items"]] == ["after", "held"]
        assert int(listed["metadata"]["resourceVersion"]) < r1  # the list's start is safe
        events.quiet(1.0)  # R2 is held back while R1 may still commit
        sql.run(sql.conn.execute("COMMIT"))
        got = events.take(2)
    assert [(e["type"], version(e["object"])) for e in got] == [
        ("MODIFIED", r1),
        ("ADDED", version(after)),
    ]
    assert got[1]["object"] == after
    # A watch from the list taken while T was open gets both.
    with admin.watch(path, resourceVersion=listed["metadata"]["resourceVersion"]) as events:
        assert [(e["type"], version(e["object"])) for e in events.take(2)] == [
            ("MODIFIED", r1),
            ("ADDED", version(after)),
        ]


def test_an_atomic_batch_and_single_writes_interleaved(admin: Client) -> None:
    """A long atomic batch apply while single writes commit in another namespace: a watch across
    namespaces gets every object once, in increasing version order, and one resumed from the
    middle of it gets exactly the rest."""
    label = unique("mix")
    batch_ns, single_ns = admin.namespace(), admin.namespace()
    manifests = [
        {**ghost(f"b{i:03d}", labels={"suite": label}), "apiVersion": "agent.wecode.io/v1"}
        for i in range(300)
    ]
    answers: list[Any] = []
    applier = threading.Thread(
        target=lambda: answers.append(
            admin.http.post(
                f"/api/v1/namespaces/{batch_ns}/apply", params={"atomic": "true"}, json=manifests
            )
        )
    )
    with admin.watch(
        f"{GROUP}/ghosts",
        labelSelector=f"suite={label}",
        resourceVersion=str(version(admin.ghost(single_ns, "start"))),
    ) as events:
        applier.start()
        singles = [admin.ghost(single_ns, f"s{i:02d}", labels={"suite": label}) for i in range(30)]
        applier.join()
        assert answers[0].status_code == 200, answers[0].text
        got = events.take(330, within=30)
        events.quiet(0.5)
    assert all(e["type"] == "ADDED" for e in got)
    keys = [(e["object"]["metadata"]["namespace"], e["object"]["metadata"]["name"]) for e in got]
    assert sorted(keys) == sorted(
        [(batch_ns, m["metadata"]["name"]) for m in manifests]
        + [(single_ns, s["metadata"]["name"]) for s in singles]
    )
    versions = [version(e["object"]) for e in got]
    assert versions == sorted(set(versions))
    middle = versions[164]
    with admin.watch(
        f"{GROUP}/ghosts", labelSelector=f"suite={label}", resourceVersion=str(middle)
    ) as events:
        assert events.take(165, within=30) == got[165:]
        events.quiet(0.3)


def test_access_lost_ends_the_stream_with_403(admin: Client, user: Client) -> None:
    ns = admin.namespace()
    admin.must("PUT", f"/api/v1/namespaces/{ns}/members/{user.username}", json={"role": "view"})
    with (
        user.watch(f"{GROUP}/namespaces/{ns}/ghosts") as events,
        user.watch(f"{GROUP}/ghosts", labelSelector=f"suite={ns}") as across,
    ):
        shown = admin.ghost(ns, "seen", labels={"suite": ns})
        assert events.next() == {"type": "ADDED", "object": shown}
        assert across.next() == {"type": "ADDED", "object": shown}
        admin.must("DELETE", f"/api/v1/namespaces/{ns}/members/{user.username}")
        assert events.ended() == [
            {
                "type": "ERROR",
                "object": status_body(
                    403,
                    "Forbidden",
                    f'user "{user.username}" can no longer watch ghosts in namespace "{ns}"',
                ),
            }
        ]
        assert across.ended() == [
            {
                "type": "ERROR",
                "object": status_body(
                    403, "Forbidden", f'user "{user.username}" can no longer watch ghosts'
                ),
            }
        ]


def test_a_lost_listener_ends_streams_and_clients_resume(admin: Client, sql: Sql) -> None:
    ns = admin.namespace()
    path = f"{GROUP}/namespaces/{ns}/ghosts"
    with admin.watch(path) as events:
        first = admin.ghost(ns, "first")
        assert events.next() == {"type": "ADDED", "object": first}
        killed = sql.run(
            sql.conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'wegent-watch' AND datname = current_database()"
            )
        )
        assert killed == 1
        assert events.ended() == [
            {
                "type": "ERROR",
                "object": {
                    **status_body(
                        503,
                        "ServiceUnavailable",
                        "the watch lost its database connection; resume from your last "
                        "resourceVersion",
                    )
                },
            }
        ]
    missed = admin.ghost(ns, "missed")
    with admin.watch(path, resourceVersion=str(version(first))) as events:  # reconnected
        assert events.next() == {"type": "ADDED", "object": missed}


def test_changes_through_one_process_reach_watchers_of_another(
    admin: Client, served_tls: TlsServer
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="wegent-watch-"))
    try:
        with serve_tls(served_tls.database_url, folder) as other:
            writer = Client(other, other.login(), other.admin_username)
            ns = admin.namespace()
            with admin.watch(f"{GROUP}/namespaces/{ns}/ghosts") as events:
                made = [writer.ghost(ns, f"g{i}") for i in range(5)]
                assert events.take(5) == [{"type": "ADDED", "object": m} for m in made]
            start = str(version(made[0]))
            with writer.watch(f"/api/v1/namespaces/{ns}/ghosts", resourceVersion=start) as back:
                # ... and the other way round, from an older version: the log, then live.
                late = admin.ghost(ns, "late")
                assert back.take(5) == [{"type": "ADDED", "object": m} for m in [*made[1:], late]]
            writer.http.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
