"""Migrations forwards, backwards and forwards again, on databases of their own; Piccolo's view
of the schema against the tables and the database; the start without migrating."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from piccolo.apps.migrations.auto.schema_snapshot import SchemaSnapshot
from piccolo.apps.migrations.commands.new import AutoMigrationManager

from tests.conftest import make_settings
from tests.helpers import started
from wegent.db.engine import Database
from wegent.db.migrate import ZERO, MigrationError, SchemaBehind, check_schema, migrate, undo
from wegent.db.piccolo_app import APP_CONFIG
from wegent.db.tables import TABLES as DB_TABLES

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
    report = await undo(fresh_db, ZERO)
    assert report.count("[backwards]") == len(migration_ids())
    assert await user_tables(fresh_db) == set()
    async with fresh_db.pool.acquire() as conn:
        seq = await conn.fetchval("SELECT to_regclass('resource_version_seq')")
        ran = await conn.fetchval("SELECT count(*) FROM migration WHERE app_name = 'wegent'")
    assert (seq, ran) == (None, 0)


async def test_forwards_backwards_forwards(fresh_db: Database) -> None:
    await migrate(fresh_db)
    await undo(fresh_db, ZERO)
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


async def applied(db: Database) -> list[str]:
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT name FROM migration WHERE app_name = 'wegent' ORDER BY ran_on"
        )
    return [r["name"] for r in rows]


async def columns(db: Database, table: str) -> set[str]:
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1", table
        )
    return {r["column_name"] for r in rows}


API_TOKENS = "2026-12-07T02:30:00:000000"  # api_tokens, users.service_account
DISPATCH = "2026-12-07T03:00:00:000000"  # tasks' lease_expires_at, attempt, max_attempts


async def test_backwards_to_an_id_keeps_it_and_undoes_the_newer_ones(fresh_db: Database) -> None:
    ids = migration_ids()
    keep = ids[ids.index(API_TOKENS) - 1]
    await migrate(fresh_db)
    report = await undo(fresh_db, keep)
    assert report.count("[backwards]") == len(ids) - ids.index(API_TOKENS)
    assert await applied(fresh_db) == ids[: ids.index(keep) + 1]
    assert await user_tables(fresh_db) == TABLES - {"api_tokens"}
    assert "service_account" not in await columns(fresh_db, "users")
    assert {"lease_expires_at", "attempt", "max_attempts"} & await columns(
        fresh_db, "tasks"
    ) == set()
    assert (
        await undo(fresh_db, keep) == f"nothing to undo: {keep} is the newest applied migration\n"
    )
    with pytest.raises(MigrationError) as refused:
        await undo(fresh_db, DISPATCH)
    assert str(refused.value) == (
        f"--to {DISPATCH} is not an applied migration (`wegent migrate --list` shows them; "
        "--to zero undoes all)"
    )
    await migrate(fresh_db)
    assert await applied(fresh_db) == ids
    assert await user_tables(fresh_db) == TABLES
    await undo(fresh_db, ZERO)
    assert await undo(fresh_db, ZERO) == "nothing to undo: no migration is applied\n"


async def test_a_schema_behind_is_named_with_its_pending_migrations(fresh_db: Database) -> None:
    ids = migration_ids()
    with pytest.raises(SchemaBehind) as behind:
        await check_schema(fresh_db)
    assert str(behind.value) == (
        f"the database schema is behind: run `wegent migrate` (pending: {', '.join(ids)})"
    )
    await migrate(fresh_db)
    await check_schema(fresh_db)  # up to date
    await undo(fresh_db, ids[-2])
    with pytest.raises(SchemaBehind) as behind:
        await check_schema(fresh_db)
    assert behind.value.pending == [ids[-1]]


async def test_without_migrate_on_start_the_app_refuses_a_schema_behind(
    make_database: MakeDatabase, tmp_path: Path
) -> None:
    url = await make_database()
    settings = make_settings(url, tmp_path, migrate_on_start=False)
    with pytest.raises(ExceptionGroup) as failed:  # the lifespan's task group
        async with started(settings):
            pass
    assert failed.group_contains(SchemaBehind)
    assert [str(e) for e in failed.value.exceptions] == [str(SchemaBehind(migration_ids()))]
    db = Database(settings)
    await db.connect()
    try:
        assert await user_tables(db) == set()  # nothing migrated, not even Piccolo's table
        async with db.pool.acquire() as conn:
            assert await conn.fetchval("SELECT to_regclass('migration')") is None
        await migrate(db)
    finally:
        await db.close()
    async with started(settings) as (_, http):
        assert (await http.get("/readyz")).status_code == 200


async def test_piccolo_finds_no_difference_between_the_tables_and_the_migrations() -> None:
    """What ``piccolo migrations new wegent --auto`` compares: the tables of
    ``wegent/db/tables.py`` against the schema Piccolo adds up from the migrations (the raw
    ones record what their SQL does, ``wegent.db.raw_steps``). No statement: a new
    auto-migration holds only the change it was made for."""
    manager = AutoMigrationManager(auto_input="n")
    with contextlib.redirect_stdout(io.StringIO()):  # Piccolo prints a summary
        alter = await manager.get_alter_statements(app_config=APP_CONFIG)
    assert [statement for group in alter for statement in group.statements] == []
    snapshot = SchemaSnapshot(await manager.get_migration_managers(APP_CONFIG)).get_snapshot()
    assert {t.tablename for t in snapshot} == {t._meta.tablename for t in DB_TABLES}


# Written by PostgreSQL from the rows' other columns (raw steps); Piccolo never writes them.
GENERATED = {
    ("kinds", "body"),
    ("tasks", "body"),
    ("tasks", "phase"),
    ("tasks", "progress"),
    ("tasks", "team_namespace"),
    ("tasks", "team_name"),
    ("tasks", "lease_expires_at"),
    ("tasks", "attempt"),
    ("tasks", "max_attempts"),
}
SAME_TYPE = {"SERIAL": "INTEGER", "BIGSERIAL": "BIGINT"}


def database_type(formatted: str) -> str:
    return (
        formatted.replace("character varying", "varchar")
        .replace("timestamp with time zone", "timestamptz")
        .upper()
    )


async def test_the_database_has_exactly_the_columns_of_the_tables(fresh_db: Database) -> None:
    """The other side of the raw migrations' records: what their SQL made is what the tables
    say, column by column: name, type and, but for generated columns, nullability."""
    await migrate(fresh_db)
    names = [t._meta.tablename for t in DB_TABLES]
    async with fresh_db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT c.relname AS tablename, a.attname AS name, "
            "format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable, "
            "a.attgenerated <> '' AS generated "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relname = ANY($1::text[]) AND c.relkind = 'r' "
            "AND c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped",
            names,
        )
    assert {(r["tablename"], r["name"]) for r in rows if r["generated"]} == GENERATED
    in_database = {
        (r["tablename"], r["name"]): (
            database_type(r["type"]),
            None if r["generated"] else r["nullable"],
        )
        for r in rows
    }
    in_tables = {
        (t._meta.tablename, c._meta.db_column_name): (
            SAME_TYPE.get(c.column_type, c.column_type),
            None if (t._meta.tablename, c._meta.db_column_name) in GENERATED else c._meta.null,
        )
        for t in DB_TABLES
        for c in t._meta.columns
    }
    assert in_database == in_tables


async def test_piccolo_command_line_works_from_the_repository(
    make_database: MakeDatabase, tmp_path: Path
) -> None:
    """The repository's top-level ``piccolo_conf.py`` hands Piccolo's command line the
    service's configuration, built from the database settings alone (no secrets)."""
    url = await make_database()
    db = Database(make_settings(url, tmp_path))
    await db.connect()
    try:
        await migrate(db)
    finally:
        await db.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEGENT_", "PICCOLO_"))}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "piccolo.main", "migrations", "check"],
        cwd=Path(__file__).parents[2],
        env={**env, "WEGENT_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    ran = [line.split("|") for line in result.stdout.splitlines() if line.startswith("wegent ")]
    assert [(row[1].strip(), row[3].strip()) for row in ran] == [
        (migration_id, "True") for migration_id in migration_ids()
    ]
