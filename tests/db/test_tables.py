"""The schema's own guarantees, checked against the real database."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

pytestmark = pytest.mark.usefixtures("client")


def unique(prefix: str = "n") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def insert_user(conn: asyncpg.Connection, username: str, role: str = "user") -> int:
    return await conn.fetchval(  # type: ignore[no-any-return]
        "INSERT INTO users (username, password_hash, role, is_active, failed_logins, "
        "created_at, updated_at) VALUES ($1, 'x', $2, true, 0, now(), now()) RETURNING id",
        username,
        role,
    )


async def ensure_namespace(conn: asyncpg.Connection, name: str) -> None:
    await conn.execute(
        "INSERT INTO namespaces (name, personal, created_at) VALUES ($1, false, now()) "
        "ON CONFLICT (name) DO NOTHING",
        name,
    )


async def insert_kind(
    conn: asyncpg.Connection,
    namespace: str,
    name: str,
    *,
    kind: str = "Ghost",
    spec: str = "{}",
    deleted: bool = False,
) -> int:
    await ensure_namespace(conn, namespace)
    return await conn.fetchval(  # type: ignore[no-any-return]
        "INSERT INTO kinds (uid, kind, namespace, name, labels, annotations, spec, status, "
        "resource_version, generation, created_by, updated_by, created_at, updated_at, deleted_at) "
        "VALUES ($1, $2, $3, $4, '{}', '{}', $5::jsonb, '{}', nextval('resource_version_seq'), 1, "
        "'t', 't', now(), now(), CASE WHEN $6 THEN now() END) RETURNING resource_version",
        uuid.uuid4(),
        kind,
        namespace,
        name,
        spec,
        deleted,
    )


async def insert_task(conn: asyncpg.Connection, namespace: str, name: str) -> None:
    await ensure_namespace(conn, namespace)
    await conn.execute(
        "INSERT INTO tasks (uid, namespace, name, labels, annotations, spec, status, "
        "resource_version, generation, created_by, updated_by, created_at, updated_at) "
        "VALUES ($1, $2::varchar, $3, '{}', '{}', "
        "jsonb_build_object('teamRef', jsonb_build_object('name', 'team', 'namespace', $2::varchar)), "
        '\'{"phase": "RUNNING", "progress": 40}\', nextval(\'resource_version_seq\'), 1, '
        "'t', 't', now(), now())",
        uuid.uuid4(),
        namespace,
        name,
    )


async def test_public_namespace_exists_after_migration(conn: asyncpg.Connection) -> None:
    row = await conn.fetchrow("SELECT owner, personal FROM namespaces WHERE name = 'public'")
    assert row is not None
    assert (row["owner"], row["personal"]) == (None, False)


async def test_objects_live_in_a_namespace_that_exists(conn: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await conn.execute(
            "INSERT INTO kinds (uid, kind, namespace, name, resource_version, created_by, "
            "updated_by, created_at, updated_at) VALUES (gen_random_uuid(), 'Ghost', $1, 'g', "
            "nextval('resource_version_seq'), 't', 't', now(), now())",
            unique("nowhere"),
        )
    namespace = unique("ns")
    await insert_kind(conn, namespace, "g", deleted=True)
    await insert_task(conn, namespace, "t")
    await conn.execute("DELETE FROM namespaces WHERE name = $1", namespace)
    left = await conn.fetchval(
        "SELECT (SELECT count(*) FROM kinds WHERE namespace = $1) "
        "+ (SELECT count(*) FROM tasks WHERE namespace = $1)",
        namespace,
    )
    assert left == 0  # the trash goes with its namespace


async def test_usernames_are_unique(conn: asyncpg.Connection) -> None:
    name = unique("u")
    await insert_user(conn, name)
    with pytest.raises(asyncpg.UniqueViolationError):
        await insert_user(conn, name)


async def test_user_role_is_admin_or_user(conn: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await insert_user(conn, unique("u"), role="root")


async def test_namespace_names_are_unique(conn: asyncpg.Connection) -> None:
    name = unique()
    sql = "INSERT INTO namespaces (name, personal, created_at) VALUES ($1, false, now())"
    await conn.execute(sql, name)
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(sql, name)


async def test_membership_is_unique_per_pair_and_role_checked(conn: asyncpg.Connection) -> None:
    user_id = await insert_user(conn, unique("u"))
    ns_id = await conn.fetchval(
        "INSERT INTO namespaces (name, personal, created_at) VALUES ($1, false, now()) "
        "RETURNING id",
        unique(),
    )
    sql = (
        "INSERT INTO namespace_members (namespace, member, role, created_at) "
        "VALUES ($1, $2, $3, now())"
    )
    await conn.execute(sql, ns_id, user_id, "view")
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(sql, ns_id, user_id, "edit")
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute(sql, ns_id, await insert_user(conn, unique("u")), "owner")


async def test_memberships_go_with_their_user(conn: asyncpg.Connection) -> None:
    user_id = await insert_user(conn, unique("u"))
    ns_id = await conn.fetchval(
        "INSERT INTO namespaces (name, personal, created_at) VALUES ($1, false, now()) "
        "RETURNING id",
        unique(),
    )
    await conn.execute(
        "INSERT INTO namespace_members (namespace, member, role, created_at) "
        "VALUES ($1, $2, 'edit', now())",
        ns_id,
        user_id,
    )
    await conn.execute("DELETE FROM users WHERE id = $1", user_id)
    count = await conn.fetchval("SELECT count(*) FROM namespace_members WHERE member = $1", user_id)
    assert count == 0


async def test_duplicate_live_name_is_rejected_by_the_database(conn: asyncpg.Connection) -> None:
    ns, name = unique(), unique("g")
    await insert_kind(conn, ns, name)
    with pytest.raises(asyncpg.UniqueViolationError):
        await insert_kind(conn, ns, name)


async def test_name_is_free_again_once_soft_deleted(conn: asyncpg.Connection) -> None:
    ns, name = unique(), unique("g")
    await insert_kind(conn, ns, name)
    await conn.execute(
        "UPDATE kinds SET deleted_at = now() WHERE namespace = $1 AND name = $2", ns, name
    )
    await insert_kind(conn, ns, name)
    await insert_kind(conn, ns, name, deleted=True)  # several generations may sit in the trash
    rows = await conn.fetch(
        "SELECT deleted_at IS NULL AS live FROM kinds WHERE namespace = $1 AND name = $2 "
        "ORDER BY id",
        ns,
        name,
    )
    assert [r["live"] for r in rows] == [False, True, False]


async def test_same_name_in_other_kind_or_namespace_is_allowed(conn: asyncpg.Connection) -> None:
    ns, name = unique(), unique("x")
    await insert_kind(conn, ns, name, kind="Ghost")
    await insert_kind(conn, ns, name, kind="Model")
    await insert_kind(conn, unique(), name, kind="Ghost")


async def test_names_are_case_sensitive_and_sorted_by_bytes(conn: asyncpg.Connection) -> None:
    ns = unique()
    for name in ("b", "B", "a", "A", "ClaudeCode", "claudecode"):
        await insert_kind(conn, ns, name)
    names = await conn.fetch(
        "SELECT name FROM kinds WHERE kind = 'Ghost' AND namespace = $1 AND deleted_at IS NULL "
        "ORDER BY name",
        ns,
    )
    assert [r["name"] for r in names] == ["A", "B", "ClaudeCode", "a", "b", "claudecode"]


async def test_jsonb_round_trips(conn: asyncpg.Connection) -> None:
    ns, name = unique(), unique("g")
    spec = {"systemPrompt": 'héllo \u2603 "quoted"', "nested": {"list": [1, 2.5, None, True]}}
    await insert_kind(conn, ns, name, spec=json.dumps(spec))
    stored = await conn.fetchval(
        "SELECT spec FROM kinds WHERE namespace = $1 AND name = $2", ns, name
    )
    assert json.loads(stored) == spec


async def test_resource_versions_increase_across_the_store(conn: asyncpg.Connection) -> None:
    versions = [await insert_kind(conn, unique(), unique("g")) for _ in range(5)]
    assert versions == sorted(versions)
    assert len(set(versions)) == 5


async def test_tasks_have_their_own_live_name_index(conn: asyncpg.Connection) -> None:
    ns, name = unique(), unique("t")
    await insert_task(conn, ns, name)
    with pytest.raises(asyncpg.UniqueViolationError):
        await insert_task(conn, ns, name)
    await conn.execute("UPDATE tasks SET deleted_at = now() WHERE namespace = $1", ns)
    await insert_task(conn, ns, name)


async def test_task_filter_columns_are_derived_from_the_envelope(
    conn: asyncpg.Connection,
) -> None:
    ns, name = unique(), unique("t")
    await insert_task(conn, ns, name)
    row = await conn.fetchrow(
        "SELECT kind, phase, progress, team_namespace, team_name FROM tasks WHERE name = $1", name
    )
    assert tuple(row) == ("Task", "RUNNING", 40, ns, "team")
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute("UPDATE tasks SET kind = 'Ghost' WHERE name = $1", name)


async def test_kinds_indexes_serve_listing_and_labels(conn: asyncpg.Connection) -> None:
    indexes = {
        r["indexname"]: r["indexdef"]
        for r in await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'kinds'"
        )
    }
    assert "WHERE (deleted_at IS NULL)" in indexes["kinds_live_name"]
    assert "UNIQUE" in indexes["kinds_live_name"]
    assert "USING gin (labels)" in indexes["kinds_labels"]
