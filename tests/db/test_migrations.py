"""Migrations forwards, backwards and forwards again, on databases of their own."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY, TEST_SECRET, make_settings
from wegent.db.engine import Database
from wegent.db.migrate import migrate

MakeDatabase = Callable[[], Awaitable[str]]
MIGRATIONS = Path(__file__).parents[2] / "piccolo_migrations"
TABLES = {
    "users",
    "login_failures",
    "namespaces",
    "namespace_members",
    "api_tokens",
    "kinds",
    "tasks",
    "watch_changes",  # raw: written by triggers only (docs/watch.md)
    "watch_state",
}


async def user_tables(db: Database) -> set[str]:
    async with db.pool.acquire() as conn:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {r["tablename"] for r in rows} - {"migration"}


def migration_ids() -> list[str]:
    """The ID of every migration in the history, from the files themselves."""
    ids = []
    for path in MIGRATIONS.glob("wegent_*.py"):
        line = next(x for x in path.read_text().splitlines() if x.startswith("ID = "))
        ids.append(line.split('"')[1])
    return sorted(ids)


@pytest.fixture
async def fresh_db(make_database: MakeDatabase, tmp_path: Path) -> Database:
    db = Database(make_settings(await make_database(), tmp_path))
    await db.connect()
    yield db  # type: ignore[misc]
    await db.close()


async def test_forwards_creates_every_table_and_the_sequence(fresh_db: Database) -> None:
    assert await user_tables(fresh_db) == set()
    await migrate(fresh_db)
    assert await user_tables(fresh_db) == TABLES
    async with fresh_db.pool.acquire() as conn:
        assert await conn.fetchval("SELECT nextval('resource_version_seq')") >= 1


async def test_backwards_removes_everything(fresh_db: Database) -> None:
    await migrate(fresh_db)
    await migrate(fresh_db, backwards=True)
    assert await user_tables(fresh_db) == set()
    async with fresh_db.pool.acquire() as conn:
        seq = await conn.fetchval("SELECT to_regclass('resource_version_seq')")
        ran = await conn.fetchval("SELECT count(*) FROM migration WHERE app_name = 'wegent'")
    assert (seq, ran) == (None, 0)


async def test_forwards_backwards_forwards(fresh_db: Database) -> None:
    await migrate(fresh_db)
    await migrate(fresh_db, backwards=True)
    await migrate(fresh_db)
    assert await user_tables(fresh_db) == TABLES
    async with fresh_db.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM namespaces WHERE name = 'public'") == 1


async def test_forwards_twice_is_a_no_op(fresh_db: Database) -> None:
    await migrate(fresh_db)
    report = await migrate(fresh_db)
    assert "No migrations need to be run" in report
    async with fresh_db.pool.acquire() as conn:
        ran = await conn.fetch("SELECT name FROM migration WHERE app_name = 'wegent' ORDER BY name")
    assert [r["name"] for r in ran] == migration_ids()


async def test_concurrent_workers_migrate_once(make_database: MakeDatabase, tmp_path: Path) -> None:
    url = await make_database()
    dbs = [Database(make_settings(url, tmp_path)) for _ in range(3)]
    for db in dbs:
        await db.connect()
    try:
        await asyncio.gather(*(migrate(db) for db in dbs))
        assert await user_tables(dbs[0]) == TABLES
    finally:
        for db in dbs:
            await db.close()


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WEGENT_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "wegent.cli", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_migrate_command_forwards_and_backwards(make_database: MakeDatabase) -> None:
    url = await make_database()
    env = {
        "WEGENT_DATABASE_URL": url,
        "WEGENT_JWT_SECRET": TEST_SECRET,
        "WEGENT_SECRET_KEY": TEST_KEY,
    }
    forwards = await asyncio.to_thread(run_cli, "migrate", **env)
    assert forwards.returncode == 0, forwards.stderr
    backwards = await asyncio.to_thread(run_cli, "migrate", "--backwards", **env)
    assert backwards.returncode == 0, backwards.stderr
    assert "[backwards]" in backwards.stdout
