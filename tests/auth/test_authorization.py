"""Who may do what: the matrix over every route of the app (people and their API tokens), and
namespace isolation (§3)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from tests.helpers import Account, register, status_body, unique
from wegent.auth.policy import POLICIES

ROLES = ["anonymous", "stranger", "viewer", "editor", "nsadmin", "admin"]
ALLOWED = {
    "public": set(ROLES),
    "authenticated": set(ROLES) - {"anonymous"},
    "admin": {"admin"},
    "read": {"viewer", "editor", "nsadmin", "admin"},
    "write": {"editor", "nsadmin", "admin"},
    "admin-namespace": {"nsadmin", "admin"},
}
PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
# Actors that come with an API token (API.md §16), not a password's JWT: whose token it is,
# what it narrows ("role": its cap; "namespaces": "elsewhere" is only its owner's personal
# namespace, "here" only the route's namespace), and the role whose rights it has in the matrix.
# Narrowing the global admin's token makes it no global admin.
TOKENS: dict[str, tuple[str, dict[str, str], str]] = {
    "editor-token": ("editor", {}, "editor"),
    "editor-view-token": ("editor", {"role": "view"}, "viewer"),
    "nsadmin-edit-token": ("nsadmin", {"role": "edit"}, "editor"),
    "admin-token": ("admin", {}, "admin"),
    "admin-elsewhere-token": ("admin", {"namespaces": "elsewhere"}, "stranger"),
    "admin-here-token": ("admin", {"namespaces": "here"}, "nsadmin"),
}
ACTORS = ROLES + list(TOKENS)
LIKE = {**{role: role for role in ROLES}, **{actor: like for actor, (_, _, like) in TOKENS.items()}}
#: The most namespaces one token names (API.md §16): a "here" token serves this many routes.
NAMESPACES_PER_TOKEN = 100
NOT_THROUGH_A_TOKEN = status_body(
    403,
    "Forbidden",
    "an API token cannot manage API tokens: log in with a password to create, list or revoke them",
    details={"kind": "Token"},
)


def route_table(app: Litestar) -> list[tuple[str, str, str]]:
    """(method, path, policy) for every route and method the app serves."""
    rows = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
                rows.append((method, route.path_format, handler.opt.get("policy", "")))
    return sorted(set(rows))


def manages_tokens(path: str) -> bool:
    """A route of API tokens' own: no token may use it, whatever its user may do (§16)."""
    return path.startswith(("/api/v1/tokens", "/api/v1/users/{username}/tokens"))


def test_every_route_declares_a_known_policy(app: Litestar) -> None:
    missing = [(m, p) for m, p, policy in route_table(app) if policy not in POLICIES]
    assert missing == []


def test_the_matrix_covers_every_policy_in_use(app: Litestar) -> None:
    assert {policy for _, _, policy in route_table(app)} <= set(ALLOWED)


@pytest.fixture
async def cast(client: httpx.AsyncClient, admin: Account) -> dict[str, Account | None]:
    """One account per role on a fresh shared namespace, created by its namespace admin."""
    accounts: dict[str, Account | None] = {"anonymous": None, "admin": admin}
    for role in ("stranger", "viewer", "editor", "nsadmin"):
        accounts[role] = await register(client)
    return accounts


@pytest.fixture
def matrix_namespaces(app: Litestar) -> list[str]:
    """The name of each route's fresh shared namespace, in the order of :func:`route_table`:
    chosen beforehand, so that a token can be made for them before they exist."""
    return [unique("shared") for _ in route_table(app)]


@pytest.fixture
async def token_cast(
    client: httpx.AsyncClient, cast: dict[str, Account | None], matrix_namespaces: list[str]
) -> AsyncIterator[dict[str, list[str]]]:
    """The secret each token actor sends on each route (by the route's index). The admin's
    tokens, which would pile up on the session's admin, are revoked afterwards."""
    made: list[tuple[Account, str]] = []

    async def make(owner: Account, **narrowing: object) -> str:
        name = unique("m")
        response = await client.post(
            "/api/v1/tokens", json={"name": name, **narrowing}, headers=owner.headers
        )
        assert response.status_code == 201, response.text
        made.append((owner, name))
        return str(response.json()["token"])

    secrets: dict[str, list[str]] = {}
    count = len(matrix_namespaces)
    for actor, (whose, narrowing, _) in TOKENS.items():
        owner = cast[whose]
        assert owner is not None
        body: dict[str, object] = {k: v for k, v in narrowing.items() if k == "role"}
        if narrowing.get("namespaces") == "elsewhere":
            body["namespaces"] = ["default"]  # its owner's personal namespace
        if narrowing.get("namespaces") == "here":
            secrets[actor] = []
            for start in range(0, count, NAMESPACES_PER_TOKEN):
                chunk = matrix_namespaces[start : start + NAMESPACES_PER_TOKEN]
                secret = await make(owner, namespaces=chunk, **body)
                secrets[actor] += [secret] * len(chunk)
        else:
            secrets[actor] = [await make(owner, **body)] * count
    yield secrets
    for owner, name in made:
        if owner is cast["admin"]:
            revoked = await client.delete(f"/api/v1/tokens/{name}", headers=owner.headers)
            assert revoked.status_code == 204, revoked.text


def credentials(
    actor: str, index: int, cast: dict[str, Account | None], secrets: dict[str, list[str]]
) -> dict[str, str]:
    """What ``actor`` sends on the route at ``index``: a password's JWT, nothing, or its API
    token, as ``Authorization: Bearer`` and as ``X-API-Key`` on alternate routes (and on any
    one route, by alternate token actors)."""
    if actor in TOKENS:
        secret = secrets[actor][index]
        if (index + ACTORS.index(actor)) % 2:
            return {"X-API-Key": secret}
        return {"Authorization": f"Bearer {secret}"}
    account = cast[actor]
    return account.headers if account else {}


async def shared_namespace(
    client: httpx.AsyncClient, cast: dict[str, Account | None], name: str | None = None
) -> str:
    owner = cast["nsadmin"]
    assert owner is not None
    name = name or unique("shared")
    assert (
        await client.post("/api/v1/namespaces", json={"name": name}, headers=owner.headers)
    ).status_code == 201
    for role, member_role in (("viewer", "view"), ("editor", "edit")):
        member = cast[role]
        assert member is not None
        put = await client.put(
            f"/api/v1/namespaces/{name}/members/{member.username}",
            json={"role": member_role},
            headers=owner.headers,
        )
        assert put.status_code == 200, put.text
    return name


async def test_authorization_matrix(
    client: httpx.AsyncClient,
    app: Litestar,
    cast: dict[str, Account | None],
    matrix_namespaces: list[str],
    token_cast: dict[str, list[str]],
) -> None:
    """Every route and every actor: denied callers get exactly 401 (anonymous) or 403. A token
    has its user's rights as it narrows them (``LIKE``), and never manages tokens: 403 with the
    same body on every route of theirs, whatever the body sent."""
    target = await register(client)
    failures = []
    for index, (method, path, policy) in enumerate(route_table(app)):
        namespace = await shared_namespace(client, cast, matrix_namespaces[index])
        values = {"namespace": namespace, "username": target.username}
        url = PARAM.sub(lambda m, v=values: v.get(m.group(1), "x"), path)  # type: ignore[misc]
        for actor in ACTORS:
            response = await client.request(
                method,
                url,
                params={"namespace": namespace},
                headers=credentials(actor, index, cast, token_cast),
                json={} if method in ("POST", "PUT", "PATCH") else None,
            )
            denied = response.status_code in (401, 403)
            if actor in TOKENS and manages_tokens(path):
                if (response.status_code, response.json()) != (403, NOT_THROUGH_A_TOKEN):
                    failures.append(f"{actor} {method} {path}: {response.text} manages tokens")
            elif LIKE[actor] in ALLOWED[policy]:
                if denied:
                    failures.append(f"{actor} {method} {path}: {response.status_code}")
            else:
                expected = 401 if actor == "anonymous" else 403
                if response.status_code != expected:
                    failures.append(
                        f"{actor} {method} {path}: {response.status_code} != {expected}"
                    )
    assert failures == []


async def test_users_cannot_see_each_other(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    for path in (
        f"/api/v1/namespaces/{bob.username}",
        f"/api/v1/namespaces/{bob.username}/members",
    ):
        response = await client.get(path, headers=alice.headers)
        assert response.status_code == 403
        assert response.json() == status_body(
            403,
            "Forbidden",
            f'user "{alice.username}" cannot read in namespace "{bob.username}"',
            details={"name": bob.username, "kind": "Namespace"},
        )
    listed = await client.get("/api/v1/namespaces", headers=alice.headers)
    assert [n["name"] for n in listed.json()["items"]] == sorted(
        ["public", "system", alice.username]
    )
    deleted = await client.delete(f"/api/v1/namespaces/{bob.username}", headers=alice.headers)
    assert deleted.status_code == 403
    member = await client.put(
        f"/api/v1/namespaces/{bob.username}/members/{alice.username}",
        json={"role": "admin"},
        headers=alice.headers,
    )
    assert member.status_code == 403


async def test_403_does_not_reveal_whether_a_namespace_exists(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    missing = unique("nothing")
    existing = await client.get(f"/api/v1/namespaces/{bob.username}", headers=alice.headers)
    absent = await client.get(f"/api/v1/namespaces/{missing}", headers=alice.headers)
    assert (existing.status_code, absent.status_code) == (403, 403)
    assert existing.json()["message"].replace(bob.username, "X") == absent.json()[
        "message"
    ].replace(missing, "X")


async def test_admin_sees_everything_and_gets_404_for_what_is_not_there(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    ns = await client.get(f"/api/v1/namespaces/{alice.username}", headers=admin.headers)
    assert (ns.status_code, ns.json()["role"]) == (200, "admin")
    missing = unique("nothing")
    absent = await client.get(f"/api/v1/namespaces/{missing}", headers=admin.headers)
    assert absent.status_code == 404
    assert absent.json() == status_body(
        404,
        "NotFound",
        f'namespace "{missing}" not found',
        details={"name": missing, "kind": "Namespace"},
    )
    # Every page: the session's other tests may have made more namespaces than one page holds.
    listed: list[str] = []
    token = None
    while True:
        page = await client.get(
            "/api/v1/namespaces",
            params={"continue": token} if token else {},
            headers=admin.headers,
        )
        assert page.status_code == 200, page.text
        listed += [n["name"] for n in page.json()["items"]]
        token = page.json()["metadata"].get("continue")
        if not token:
            break
    assert alice.username in listed


async def test_default_is_the_callers_personal_namespace(
    client: httpx.AsyncClient, alice: Account
) -> None:
    response = await client.get("/api/v1/namespaces/default", headers=alice.headers)
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["role"]) == (alice.username, "admin")


async def test_public_is_readable_by_all_and_never_deleted(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    response = await client.get("/api/v1/namespaces/public", headers=alice.headers)
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "name": "public",
        "owner": None,
        "personal": False,
        "role": "view",
        "createdAt": body["createdAt"],
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "public",
            "uid": body["metadata"]["uid"],
            "resourceVersion": body["metadata"]["resourceVersion"],
            "creationTimestamp": body["createdAt"],
        },
        "spec": {},
        "status": {"phase": "Active"},
    }
    assert (
        await client.delete("/api/v1/namespaces/public", headers=alice.headers)
    ).status_code == 403
    by_admin = await client.delete("/api/v1/namespaces/public", headers=admin.headers)
    assert by_admin.status_code == 403
    assert by_admin.json()["message"] == 'namespace "public" cannot be deleted'


async def test_shared_namespace_roles(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    name = unique("team")
    created = await client.post("/api/v1/namespaces", json={"name": name}, headers=alice.headers)
    assert created.status_code == 201
    assert created.json()["role"] == "admin" and created.json()["owner"] == alice.username
    assert (await client.get(f"/api/v1/namespaces/{name}", headers=bob.headers)).status_code == 403
    put = await client.put(
        f"/api/v1/namespaces/{name}/members/{bob.username}",
        json={"role": "view"},
        headers=alice.headers,
    )
    assert put.json() == {"namespace": name, "username": bob.username, "role": "view"}
    # Access follows at once, in this worker.
    got = await client.get(f"/api/v1/namespaces/{name}", headers=bob.headers)
    assert (got.status_code, got.json()["role"]) == (200, "view")
    members = await client.get(f"/api/v1/namespaces/{name}/members", headers=bob.headers)
    assert members.json()["items"] == sorted(
        [
            {"namespace": name, "username": alice.username, "role": "admin"},
            {"namespace": name, "username": bob.username, "role": "view"},
        ],
        key=lambda m: m["username"],
    )
    # A viewer manages nothing.
    escalate = await client.put(
        f"/api/v1/namespaces/{name}/members/{bob.username}",
        json={"role": "admin"},
        headers=bob.headers,
    )
    assert escalate.status_code == 403
    removed = await client.delete(
        f"/api/v1/namespaces/{name}/members/{bob.username}", headers=alice.headers
    )
    assert removed.status_code == 204
    assert (await client.get(f"/api/v1/namespaces/{name}", headers=bob.headers)).status_code == 403
    again = await client.delete(
        f"/api/v1/namespaces/{name}/members/{bob.username}", headers=alice.headers
    )
    assert again.status_code == 404


async def test_member_errors(client: httpx.AsyncClient, alice: Account) -> None:
    name = unique("team")
    await client.post("/api/v1/namespaces", json={"name": name}, headers=alice.headers)
    unknown = await client.put(
        f"/api/v1/namespaces/{name}/members/{unique('nobody')}",
        json={"role": "view"},
        headers=alice.headers,
    )
    assert unknown.status_code == 404
    bad_role = await client.put(
        f"/api/v1/namespaces/{name}/members/{alice.username}",
        json={"role": "owner"},
        headers=alice.headers,
    )
    assert bad_role.status_code == 422
    assert bad_role.json()["details"]["causes"][0]["field"] == "role"
    own = await client.put(
        f"/api/v1/namespaces/{alice.username}/members/{alice.username}",
        json={"role": "view"},
        headers=alice.headers,
    )
    assert own.status_code == 409


async def test_namespace_create_errors(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    for reserved in ("default", "public", "system", "kube-public"):
        response = await client.post(
            "/api/v1/namespaces", json={"name": reserved}, headers=alice.headers
        )
        assert response.status_code == 422, reserved
    taken = await client.post(
        "/api/v1/namespaces", json={"name": bob.username}, headers=alice.headers
    )
    assert taken.status_code == 409
    bad = await client.post(
        "/api/v1/namespaces", json={"name": "Not_A_Label"}, headers=alice.headers
    )
    assert bad.status_code == 422


async def test_namespace_delete_rules(
    client: httpx.AsyncClient, alice: Account, conn: asyncpg.Connection
) -> None:
    personal = await client.delete(f"/api/v1/namespaces/{alice.username}", headers=alice.headers)
    assert personal.status_code == 403
    name = unique("team")
    await client.post("/api/v1/namespaces", json={"name": name}, headers=alice.headers)
    insert = (
        "INSERT INTO kinds (uid, kind, namespace, name, labels, annotations, spec, status, "
        "resource_version, generation, created_by, updated_by, created_at, updated_at, deleted_at) "
        "VALUES ($1, 'Ghost', $2, $3, '{}', '{}', '{}', '{}', nextval('resource_version_seq'), 1, "
        "'t', 't', now(), now(), $4)"
    )
    await conn.execute(insert, uuid.uuid4(), name, "live", None)
    await conn.execute(insert, uuid.uuid4(), name, "trashed", None)
    await conn.execute(
        "UPDATE kinds SET deleted_at = now() WHERE namespace = $1 AND name = 'trashed'", name
    )
    busy = await client.delete(f"/api/v1/namespaces/{name}", headers=alice.headers)
    assert busy.status_code == 409
    assert busy.json()["message"] == f'namespace "{name}" still holds 1 live objects'
    await conn.execute("UPDATE kinds SET deleted_at = now() WHERE namespace = $1", name)
    deleted = await client.delete(f"/api/v1/namespaces/{name}", headers=alice.headers)
    assert deleted.status_code == 200
    assert (deleted.json()["kind"], deleted.json()["metadata"]["name"]) == ("Namespace", name)
    assert await conn.fetchval("SELECT count(*) FROM kinds WHERE namespace = $1", name) == 0
    assert (
        await client.get(f"/api/v1/namespaces/{name}", headers=alice.headers)
    ).status_code == 403
