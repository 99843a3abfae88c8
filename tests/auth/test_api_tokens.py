"""API tokens and service accounts (API.md §16), against the session app and database."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from litestar import Litestar

from tests.helpers import PASSWORD, Account, register, status_body, unique

SECRET = re.compile(r"^wg-[A-Za-z0-9_-]{43}$")
TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"
UNAUTHORIZED = status_body(401, "Unauthorized", "authentication required")
NOT_THROUGH_A_TOKEN = status_body(
    403,
    "Forbidden",
    "an API token cannot manage API tokens: log in with a password to create, list or revoke them",
    details={"kind": "Token"},
)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def api_key(secret: str) -> dict[str, str]:
    return {"X-API-Key": secret}


async def make_token(
    client: httpx.AsyncClient, owner: Account, **body: object
) -> dict[str, object]:
    response = await client.post(
        "/api/v1/tokens", json={"name": unique("t"), **body}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def parsed(timestamp: object) -> datetime:
    assert isinstance(timestamp, str)
    return datetime.strptime(timestamp, TIMESTAMP).replace(tzinfo=UTC)


async def test_create_answers_the_secret_once_and_stores_only_its_hash(
    client: httpx.AsyncClient, alice: Account, conn: asyncpg.Connection
) -> None:
    response = await client.post("/api/v1/tokens", json={"name": "ci"}, headers=alice.headers)
    assert response.status_code == 201
    body = response.json()
    assert list(body) == [
        "name",
        "token",
        "prefix",
        "createdAt",
        "expiresAt",
        "namespaces",
        "role",
    ]
    secret = body["token"]
    assert SECRET.match(secret)
    assert (body["name"], body["prefix"], body["namespaces"], body["role"]) == (
        "ci",
        secret[:8],
        None,
        None,
    )
    assert parsed(body["expiresAt"]) - parsed(body["createdAt"]) == timedelta(days=90)
    row = await conn.fetchrow(
        "SELECT t.*, row_to_json(t)::text AS whole FROM api_tokens t "
        "JOIN users u ON u.id = t.owner WHERE u.username = $1",
        alice.username,
    )
    assert bytes(row["secret_hash"]) == hashlib.sha256(secret.encode()).digest()
    assert secret[8:] not in row["whole"]  # only the shown prefix is kept in clear
    listed = await client.get("/api/v1/tokens", headers=alice.headers)
    assert listed.status_code == 200
    assert secret not in listed.text and secret[8:] not in listed.text
    assert listed.json() == {
        "items": [
            {
                "name": "ci",
                "prefix": secret[:8],
                "createdAt": body["createdAt"],
                "expiresAt": body["expiresAt"],
                "lastUsedAt": None,
                "namespaces": None,
                "role": None,
            }
        ],
        "kind": "TokenList",
        "apiVersion": "v1",
    }


@pytest.mark.parametrize("door", ["bearer", "x-api-key"])
async def test_a_token_opens_every_family_and_the_framework_routes(
    client: httpx.AsyncClient, alice: Account, door: str
) -> None:
    secret = str((await make_token(client, alice))["token"])
    headers = bearer(secret) if door == "bearer" else api_key(secret)
    ns = alice.username
    for path in (
        f"/api/v1/kinds/ghosts?namespace={ns}",
        f"/api/v1/namespaces/{ns}/ghosts",
        f"/apis/agent.wecode.io/v1/namespaces/{ns}/ghosts",
        "/apis/agent.wecode.io/v1/ghosts",
        "/api/v1/users/me",
        f"/api/v1/namespaces/{ns}",
    ):
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
    created = await client.post(
        f"/api/v1/namespaces/{ns}/ghosts",
        json={
            "apiVersion": "agent.wecode.io/v1",
            "kind": "Ghost",
            "metadata": {"name": "g"},
            "spec": {"systemPrompt": "p"},
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["metadata"]["namespace"] == ns


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wg-" + "A" * 43},  # well formed, unknown
        {"X-API-Key": "wg-" + "A" * 43},
        {"X-API-Key": "wg-short"},
        {"X-API-Key": "not-a-token"},
        {"Authorization": "Basic d2c6eA==", "X-API-Key": "wg-" + "A" * 43},
    ],
    ids=["bearer-unknown", "key-unknown", "key-malformed", "key-no-prefix", "basic-wins"],
)
async def test_unknown_tokens_are_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for path in ("/api/v1/users/me", "/api/v1/namespaces/default/ghosts"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED
        assert response.headers["www-authenticate"] == "Bearer"


async def test_expiry_and_its_absence(client: httpx.AsyncClient, alice: Account) -> None:
    never = await make_token(client, alice, expiresInDays=None)
    assert never["expiresAt"] is None
    month = await make_token(client, alice, expiresInDays=30)
    assert parsed(month["expiresAt"]) - parsed(month["createdAt"]) == timedelta(days=30)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"expiresInDays": 0}, "expiresInDays", "Expected `int` >= 1"),
        ({"expiresInDays": 366}, "expiresInDays", "Expected `int` <= 365"),
        ({"role": "admin"}, "role", 'Unsupported value: "admin"'),
        ({"namespaces": []}, "namespaces", "Expected `array` of length >= 1"),
        ({"namespaces": ["Bad_Name"]}, "namespaces[0]", None),
        ({"name": "-x"}, "name", None),
    ],
    ids=["zero-days", "too-long", "admin-cap", "no-namespaces", "bad-ns", "bad-name"],
)
async def test_bad_bodies_are_422_and_make_nothing(
    client: httpx.AsyncClient,
    alice: Account,
    body: dict[str, object],
    field: str,
    message: str | None,
) -> None:
    response = await client.post(
        "/api/v1/tokens", json={"name": "ok", **body}, headers=alice.headers
    )
    assert response.status_code == 422, response.text
    causes = response.json()["details"]["causes"]
    assert [c["field"] for c in causes] == [field]
    if message is not None:
        assert message in causes[0]["message"]
    listed = await client.get("/api/v1/tokens", headers=alice.headers)
    assert listed.json()["items"] == []


async def test_names_are_unique_per_user(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await make_token(client, alice, name="deploy")
    again = await client.post("/api/v1/tokens", json={"name": "deploy"}, headers=alice.headers)
    assert again.status_code == 409
    assert again.json() == status_body(
        409,
        "AlreadyExists",
        f'user "{alice.username}" already has a token named "deploy"',
        details={"name": "deploy", "kind": "Token"},
    )
    assert (await make_token(client, bob, name="deploy"))["name"] == "deploy"


async def test_revoking_refuses_the_token_at_once(
    client: httpx.AsyncClient, alice: Account
) -> None:
    created = await make_token(client, alice, name="short-lived")
    headers = bearer(str(created["token"]))
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
    revoked = await client.delete("/api/v1/tokens/short-lived", headers=alice.headers)
    assert (revoked.status_code, revoked.content) == (204, b"")
    refused = await client.get("/api/v1/users/me", headers=headers)
    assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED)
    again = await client.delete("/api/v1/tokens/short-lived", headers=alice.headers)
    assert again.status_code == 404
    assert again.json() == status_body(
        404,
        "NotFound",
        f'user "{alice.username}" has no token named "short-lived"',
        details={"name": "short-lived", "kind": "Token"},
    )


async def test_a_token_cannot_manage_tokens(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    mine = bearer(str((await make_token(client, alice, name="mine"))["token"]))
    admins = await client.post("/api/v1/tokens", json={"name": unique("a")}, headers=admin.headers)
    theirs = bearer(admins.json()["token"])
    for headers in (mine, theirs):
        for method, path, body in (
            ("POST", "/api/v1/tokens", {"name": "other"}),
            ("POST", "/api/v1/tokens", {}),  # refused before the body is read: not 422
            ("GET", "/api/v1/tokens", None),
            ("GET", "/api/v1/tokens/mine", None),
            ("DELETE", "/api/v1/tokens/mine", None),
        ):
            response = await client.request(method, path, json=body, headers=headers)
            assert (response.status_code, response.json()) == (403, NOT_THROUGH_A_TOKEN), path
    for method, path, body in (
        ("POST", f"/api/v1/users/{alice.username}/tokens", {"name": "x"}),
        ("POST", f"/api/v1/users/{alice.username}/tokens", {"name": "-not a name-"}),
        ("GET", f"/api/v1/users/{alice.username}/tokens", None),
        ("DELETE", f"/api/v1/users/{alice.username}/tokens/mine", None),
    ):
        response = await client.request(method, path, json=body, headers=theirs)
        assert (response.status_code, response.json()) == (403, NOT_THROUGH_A_TOKEN), path
    still = await client.get("/api/v1/tokens", headers=alice.headers)
    assert [t["name"] for t in still.json()["items"]] == ["mine"]


async def test_namespaces_narrow_what_a_token_reaches(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    shared = unique("ns")
    made = await client.post("/api/v1/namespaces", json={"name": shared}, headers=bob.headers)
    assert made.status_code == 201
    member = await client.put(
        f"/api/v1/namespaces/{shared}/members/{alice.username}",
        json={"role": "edit"},
        headers=bob.headers,
    )
    assert member.status_code == 200
    created = await make_token(client, alice, namespaces=["default"])
    assert created["namespaces"] == [alice.username]  # "default" is fixed when made
    headers = bearer(str(created["token"]))
    own = await client.get(f"/api/v1/namespaces/{alice.username}/ghosts", headers=headers)
    assert own.status_code == 200
    for namespace in (shared, "public"):
        refused = await client.get(f"/api/v1/namespaces/{namespace}/ghosts", headers=headers)
        assert refused.status_code == 403
        assert refused.json()["message"] == (
            f'token "{created["name"]}" of user "{alice.username}" cannot read in namespace '
            f'"{namespace}"'
        )
    listed = await client.get("/api/v1/namespaces", headers=headers)
    assert [n["name"] for n in listed.json()["items"]] == [alice.username]
    me = await client.get("/api/v1/users/me", headers=headers)
    assert me.json()["namespaces"] == [{"name": alice.username, "role": "admin"}]
    everywhere = await client.get("/apis/agent.wecode.io/v1/ghosts", headers=headers)
    assert everywhere.status_code == 200
    outside = await client.post("/api/v1/namespaces", json={"name": unique("ns")}, headers=headers)
    assert outside.status_code == 403


async def test_a_view_cap_reads_and_never_writes(client: httpx.AsyncClient, alice: Account) -> None:
    created = await make_token(client, alice, role="view")
    headers = bearer(str(created["token"]))
    ns = alice.username
    assert (await client.get(f"/api/v1/namespaces/{ns}/ghosts", headers=headers)).status_code == 200
    refused = await client.post(
        f"/api/v1/namespaces/{ns}/ghosts",
        json={
            "apiVersion": "agent.wecode.io/v1",
            "kind": "Ghost",
            "metadata": {"name": "g"},
            "spec": {"systemPrompt": "p"},
        },
        headers=headers,
    )
    assert refused.status_code == 403
    assert refused.json()["message"] == (
        f'token "{created["name"]}" of user "{alice.username}" cannot write in namespace "{ns}"'
    )
    me = await client.get("/api/v1/users/me", headers=headers)
    assert {n["name"]: n["role"] for n in me.json()["namespaces"]}[ns] == "view"
    made = await client.post("/api/v1/namespaces", json={"name": unique("ns")}, headers=headers)
    assert made.status_code == 403


async def test_an_admin_token_that_narrows_is_not_a_global_admin(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    async def users_with(**body: object) -> int:
        response = await client.post(
            "/api/v1/tokens", json={"name": unique("a"), **body}, headers=admin.headers
        )
        secret = response.json()["token"]
        return (await client.get("/api/v1/users", headers=bearer(secret))).status_code

    assert await users_with() == 200
    assert await users_with(role="edit") == 403
    assert await users_with(namespaces=["public"]) == 403
    response = await client.post(
        "/api/v1/tokens", json={"name": unique("a"), "role": "edit"}, headers=admin.headers
    )
    headers = bearer(response.json()["token"])
    # An admin's edit token still writes anywhere, and administers nowhere.
    ns = alice.username
    assert (
        await client.get(f"/api/v1/namespaces/{ns}/members", headers=headers)
    ).status_code == 200
    put = await client.put(
        f"/api/v1/namespaces/{ns}/members/{admin.username}", json={"role": "view"}, headers=headers
    )
    assert put.status_code == 403


async def test_disabling_the_user_refuses_its_tokens(
    client: httpx.AsyncClient, admin: Account
) -> None:
    user = await register(client)
    headers = bearer(str((await make_token(client, user))["token"]))
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
    off = await client.patch(
        f"/api/v1/users/{user.username}", json={"isActive": False}, headers=admin.headers
    )
    assert off.status_code == 200
    refused = await client.get("/api/v1/users/me", headers=headers)
    assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED)


async def test_an_expired_token_is_refused(
    client: httpx.AsyncClient, alice: Account, conn: asyncpg.Connection, app: Litestar
) -> None:
    created = await make_token(client, alice, expiresInDays=1)
    headers = bearer(str(created["token"]))
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
    await conn.execute(
        "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE name = $1",
        created["name"],
    )
    app.state.services.api_tokens._grants.invalidate()  # as after the cache's 5 seconds
    refused = await client.get("/api/v1/users/me", headers=headers)
    assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED)


async def test_last_used_is_written_at_most_once_a_minute(
    client: httpx.AsyncClient, alice: Account, conn: asyncpg.Connection, app: Litestar
) -> None:
    created = await make_token(client, alice)
    headers = bearer(str(created["token"]))
    grants = app.state.services.api_tokens._grants

    async def used() -> datetime | None:
        grants.invalidate()  # every request below looks the token up again
        assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
        return await conn.fetchval(  # type: ignore[no-any-return]
            "SELECT last_used_at FROM api_tokens WHERE name = $1", created["name"]
        )

    first = await used()
    assert first is not None
    assert await used() == first  # within the minute: not written again
    await conn.execute(
        "UPDATE api_tokens SET last_used_at = last_used_at - interval '61 seconds' WHERE name = $1",
        created["name"],
    )
    later = await used()
    assert later is not None and later > first - timedelta(seconds=61)
    listed = await client.get(f"/api/v1/tokens/{created['name']}", headers=alice.headers)
    assert parsed(listed.json()["lastUsedAt"]) == later.replace(microsecond=0)


async def test_service_accounts_act_only_through_admin_made_tokens(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    name = unique("sa")
    made = await client.post(
        "/api/v1/users", json={"username": name, "serviceAccount": True}, headers=admin.headers
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["username"], body["role"], body["serviceAccount"], body["isActive"]) == (
        name,
        "user",
        True,
        True,
    )
    for password in ("", PASSWORD, "x" * 8):
        login = await client.post(
            "/api/v1/auth/login", json={"username": name, "password": password or "12345678"}
        )
        assert login.status_code == 401
        assert login.json() == status_body(401, "Unauthorized", "invalid username or password")
    token = await client.post(
        f"/api/v1/users/{name}/tokens", json={"name": "deploy"}, headers=admin.headers
    )
    assert token.status_code == 201, token.text
    headers = bearer(token.json()["token"])
    ghosts = await client.get(f"/api/v1/namespaces/{name}/ghosts", headers=headers)
    assert ghosts.status_code == 200
    me = await client.get("/api/v1/users/me", headers=headers)
    assert me.json()["username"] == name
    listed = await client.get(f"/api/v1/users/{name}/tokens", headers=admin.headers)
    assert [t["name"] for t in listed.json()["items"]] == ["deploy"]
    one = await client.get(f"/api/v1/users/{name}/tokens/deploy", headers=admin.headers)
    assert one.json()["prefix"] == token.json()["prefix"]
    person = await client.post(
        f"/api/v1/users/{alice.username}/tokens", json={"name": "x"}, headers=admin.headers
    )
    assert person.status_code == 403
    assert person.json()["message"] == (
        f'user "{alice.username}" is not a service account: people make their own tokens'
    )
    revoked = await client.delete(f"/api/v1/users/{name}/tokens/deploy", headers=admin.headers)
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"serviceAccount": True, "password": "correct horse battery"}, None),
        ({}, "serviceAccount"),
        ({"serviceAccount": False}, "serviceAccount"),
    ],
    ids=["with-password", "absent", "false"],
)
async def test_bad_user_bodies_are_422(
    client: httpx.AsyncClient, admin: Account, body: dict[str, object], field: str | None
) -> None:
    """Only service accounts are added by an admin: people register (API.md §11)."""
    name = unique("u")
    response = await client.post(
        "/api/v1/users",
        json={"username": name, **body},
        headers=admin.headers,
        params={"fieldValidation": "Strict"},
    )
    assert response.status_code == 422, response.text
    causes = response.json()["details"]["causes"]
    assert [c["field"] for c in causes] == [field or "password"]
    users = await client.get("/api/v1/users", headers=admin.headers)
    assert name not in {u["username"] for u in users.json()["items"]}


async def test_only_admins_add_users_and_see_others_tokens(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    added = await client.post(
        "/api/v1/users",
        json={"username": unique("sa"), "serviceAccount": True},
        headers=alice.headers,
    )
    assert added.status_code == 403
    theirs = await client.get(f"/api/v1/users/{bob.username}/tokens", headers=alice.headers)
    assert theirs.status_code == 403
    missing = await client.get("/api/v1/users/nobody-here/tokens", headers=admin.headers)
    assert missing.status_code == 404
