"""Deleting a namespace cannot race a write into it (hardening finding 3): no live object ever
remains in a deleted namespace, and a namespace created again under the same name starts empty."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from tests.helpers import Account, register, status_body, unique
from tests.resources.api import Api, ghost

TRIALS = 10


async def shared(client: httpx.AsyncClient, owner: Account) -> str:
    name = unique("race")
    created = await client.post("/api/v1/namespaces", json={"name": name}, headers=owner.headers)
    assert created.status_code == 201, created.text
    return name


async def test_a_namespace_delete_and_creates_in_it_never_both_win(
    client: httpx.AsyncClient, alice: Account, conn: asyncpg.Connection
) -> None:
    outcomes = set()
    for _ in range(TRIALS):
        namespace = await shared(client, alice)
        api = Api(client, alice, namespace, "B")
        creates = [api.create("ghosts", ghost(f"g{i}")) for i in range(20)]
        delete = client.delete(f"/api/v1/namespaces/{namespace}", headers=alice.headers)
        *created, deleted = await asyncio.gather(*creates, delete)
        codes = [c.status_code for c in created]
        assert set(codes) <= {201, 403, 404}, [c.text for c in created]
        stored = await conn.fetchval("SELECT count(*) FROM kinds WHERE namespace = $1", namespace)
        if deleted.status_code == 200:
            assert 201 not in codes
            assert stored == 0
            assert (
                await conn.fetchval("SELECT count(*) FROM namespaces WHERE name = $1", namespace)
                == 0
            )
        else:
            assert deleted.status_code == 409
            assert stored == codes.count(201) > 0
        outcomes.add(deleted.status_code)
        for refused in (c for c in created if c.status_code == 404):
            assert refused.json() == status_body(
                404,
                "NotFound",
                f'namespace "{namespace}" not found',
                details={"name": namespace, "kind": "Namespace"},
            )
    assert outcomes  # at least one trial ran; which side wins depends on timing


async def test_a_restore_and_a_namespace_delete_never_both_win(
    client: httpx.AsyncClient, alice: Account, conn: asyncpg.Connection
) -> None:
    for _ in range(TRIALS):
        namespace = await shared(client, alice)
        api = Api(client, alice, namespace, "B")
        await api.must_create("ghosts", ghost("back"))
        assert (await api.delete("ghosts", "back")).status_code == 204
        restored, deleted = await asyncio.gather(
            api.restore("ghosts", "back"),
            client.delete(f"/api/v1/namespaces/{namespace}", headers=alice.headers),
        )
        live = await conn.fetchval(
            "SELECT count(*) FROM kinds WHERE namespace = $1 AND deleted_at IS NULL", namespace
        )
        if restored.status_code == 200:
            assert deleted.status_code == 409
            assert live == 1
        else:
            assert (restored.status_code, deleted.status_code) in ((403, 200), (404, 200))
            assert live == 0


async def test_a_namespace_created_again_starts_empty(
    client: httpx.AsyncClient, alice: Account, conn: asyncpg.Connection
) -> None:
    namespace = await shared(client, alice)
    api = Api(client, alice, namespace, "B")
    await api.must_create("ghosts", ghost("old"))
    assert (await api.delete("ghosts", "old")).status_code == 204
    deleted = await client.delete(f"/api/v1/namespaces/{namespace}", headers=alice.headers)
    assert deleted.status_code == 200
    bob = await register(client)
    again = await client.post("/api/v1/namespaces", json={"name": namespace}, headers=bob.headers)
    assert again.status_code == 201
    mine = Api(client, bob, namespace, "B")
    assert (await mine.list("ghosts")).json()["items"] == []
    assert (await mine.list("ghosts", params={"deleted": "true"})).json()["items"] == []
    assert (await mine.restore("ghosts", "old")).status_code == 404
    assert await conn.fetchval("SELECT count(*) FROM kinds WHERE namespace = $1", namespace) == 0


async def test_an_admin_cannot_write_into_a_namespace_that_does_not_exist(
    client: httpx.AsyncClient, admin: Account, conn: asyncpg.Connection
) -> None:
    namespace = unique("nowhere")
    response = await Api(client, admin, namespace, "B").create("ghosts", ghost("g"))
    assert response.status_code == 404
    assert response.json() == status_body(
        404,
        "NotFound",
        f'namespace "{namespace}" not found',
        details={"name": namespace, "kind": "Namespace"},
    )
    assert await conn.fetchval("SELECT count(*) FROM kinds WHERE namespace = $1", namespace) == 0


async def test_an_admin_cannot_restore_into_a_namespace_that_does_not_exist(
    client: httpx.AsyncClient, admin: Account
) -> None:
    """What the restore in a namespace being deleted meets, without the race."""
    namespace = unique("nowhere")
    response = await Api(client, admin, namespace, "B").restore("ghosts", "g")
    assert (response.status_code, response.json()) == (
        404,
        status_body(
            404,
            "NotFound",
            f'namespace "{namespace}" not found',
            details={"name": namespace, "kind": "Namespace"},
        ),
    )


async def test_shared_namespaces_per_user_are_capped_even_when_created_at_once(
    client: httpx.AsyncClient, app: object, admin: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespaces = app.state.services.namespaces  # type: ignore[attr-defined]
    monkeypatch.setattr(namespaces, "max_per_user", 3)
    carol = await register(client)
    await shared(client, carol)
    answers = await asyncio.gather(
        *(
            client.post("/api/v1/namespaces", json={"name": unique("cap")}, headers=carol.headers)
            for _ in range(10)
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 201] + [403] * 8
    refused = next(a for a in answers if a.status_code == 403)
    assert refused.json() == status_body(
        403,
        "Forbidden",
        f'user "{carol.username}" has reached the limit of 3 namespaces; delete one first',
        details={"kind": "Namespace"},
    )
    # Deleting one frees a place; global admins are not capped.
    listed = (await client.get("/api/v1/namespaces", headers=carol.headers)).json()["items"]
    mine = [n["name"] for n in listed if n["owner"] == carol.username and not n["personal"]]
    assert len(mine) == 3
    gone = await client.delete(f"/api/v1/namespaces/{mine[0]}", headers=carol.headers)
    assert gone.status_code == 200
    again = await client.post(
        "/api/v1/namespaces", json={"name": unique("cap")}, headers=carol.headers
    )
    assert again.status_code == 201
    for _ in range(4):
        made = await client.post(
            "/api/v1/namespaces", json={"name": unique("adm")}, headers=admin.headers
        )
        assert made.status_code == 201


async def test_the_namespace_list_is_paged(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    made = sorted([await shared(client, owner) for _ in range(5)])
    expected = sorted([*made, owner.username, "public", "system"])
    seen: list[str] = []
    token = None
    while True:
        params = {"limit": "2", **({"continue": token} if token else {})}
        page = await client.get("/api/v1/namespaces", params=params, headers=owner.headers)
        assert page.status_code == 200
        body = page.json()
        assert len(body["items"]) <= 2
        seen += [item["name"] for item in body["items"]]
        token = body["metadata"].get("continue")
        if token is None:
            break
    assert seen == expected
    # A token is bound to its caller's list.
    other = await register(client)
    first = await client.get("/api/v1/namespaces?limit=1", headers=owner.headers)
    stolen = first.json()["metadata"]["continue"]
    refused = await client.get(
        "/api/v1/namespaces", params={"continue": stolen}, headers=other.headers
    )
    assert (refused.status_code, refused.json()) == (
        400,
        status_body(400, "BadRequest", "invalid continue token: not valid for this list"),
    )
    too_many = await client.get("/api/v1/namespaces?limit=1001", headers=owner.headers)
    assert too_many.status_code == 400
