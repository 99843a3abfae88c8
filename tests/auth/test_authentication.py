"""Registration, login, throttling and admin user management (API.md §11)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher
from litestar import Litestar

from tests.conftest import make_settings
from tests.helpers import PASSWORD, Account, login, register, started, status_body, unique

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
LOGIN_FAILED = status_body(401, "Unauthorized", "invalid username or password")


async def test_register_answers_the_user_without_its_hash(client: httpx.AsyncClient) -> None:
    name = unique()
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": name, "password": PASSWORD, "email": f"{name}@example.com"},
    )
    assert response.status_code == 201
    body = response.json()
    assert sorted(body) == [
        "createdAt",
        "email",
        "id",
        "isActive",
        "role",
        "serviceAccount",
        "updatedAt",
        "username",
    ]
    assert (body["username"], body["email"], body["role"], body["isActive"]) == (
        name,
        f"{name}@example.com",
        "user",
        True,
    )
    assert body["serviceAccount"] is False
    assert isinstance(body["id"], int)
    assert TIMESTAMP.match(body["createdAt"]) and TIMESTAMP.match(body["updatedAt"])
    assert PASSWORD not in response.text and "argon2" not in response.text


async def test_register_creates_the_personal_namespace(client: httpx.AsyncClient) -> None:
    account = await register(client)
    me = await client.get("/api/v1/users/me", headers=account.headers)
    assert me.status_code == 200
    assert me.json()["namespaces"] == sorted(
        [
            {"name": "public", "role": "view"},
            {"name": "system", "role": "view"},
            {"name": account.username, "role": "admin"},
        ],
        key=lambda n: n["name"],
    )
    ns = await client.get(f"/api/v1/namespaces/{account.username}", headers=account.headers)
    assert ns.status_code == 200
    assert ns.json()["personal"] is True and ns.json()["owner"] == account.username


async def test_register_twice_is_409(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"username": alice.username, "password": PASSWORD}
    )
    assert response.status_code == 409
    assert response.json() == status_body(
        409,
        "AlreadyExists",
        f'the name "{alice.username}" is already taken',
        details={"name": alice.username, "kind": "User"},
    )


async def test_register_a_name_taken_by_a_namespace_is_409(
    client: httpx.AsyncClient, alice: Account
) -> None:
    shared = unique("team")
    created = await client.post("/api/v1/namespaces", json={"name": shared}, headers=alice.headers)
    assert created.status_code == 201
    response = await client.post(
        "/api/v1/auth/register", json={"username": shared, "password": PASSWORD}
    )
    assert response.status_code == 409
    assert response.json()["reason"] == "AlreadyExists"


@pytest.mark.parametrize("name", ["default", "public", "system", "kube-system", "kube-x"])
async def test_reserved_usernames_are_422(client: httpx.AsyncClient, name: str) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"username": name, "password": PASSWORD}
    )
    assert response.status_code == 422
    assert response.json() == status_body(
        422,
        "Invalid",
        f'username "{name}" is reserved',
        details={
            "name": name,
            "kind": "User",
            "causes": [
                {"reason": "FieldValueForbidden", "message": "reserved name", "field": "username"}
            ],
        },
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "Alice", "password": PASSWORD}, "username"),
        ({"username": "a", "password": PASSWORD}, "username"),
        ({"username": "x" * 64, "password": PASSWORD}, "username"),
        ({"username": "-abc", "password": PASSWORD}, "username"),
        ({"username": "abcdef", "password": "short"}, "password"),
        ({"username": "abcdef", "password": "p" * 129}, "password"),
        ({"username": "abcdef", "password": PASSWORD, "email": "not-an-email"}, "email"),
        ({"password": PASSWORD}, "username"),
    ],
)
async def test_bad_registration_fields_are_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, str], field: str
) -> None:
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 422
    assert [c["field"] for c in response.json()["details"]["causes"]] == [field]


async def test_nobody_becomes_admin_by_registering(client: httpx.AsyncClient) -> None:
    name = unique()
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": name, "password": PASSWORD, "role": "admin"},
    )
    assert response.status_code == 201
    assert response.json()["role"] == "user"
    assert response.headers.get_list("warning") == ['299 - "unknown field \\"role\\""']
    strict = await client.post(
        "/api/v1/auth/register?fieldValidation=Strict",
        json={"username": unique(), "password": PASSWORD, "role": "admin"},
    )
    assert strict.status_code == 422


async def test_body_that_is_not_json_is_400_and_wrong_type_415(client: httpx.AsyncClient) -> None:
    garbage = await client.post(
        "/api/v1/auth/register", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 400
    assert garbage.json()["reason"] == "BadRequest"
    form = await client.post("/api/v1/auth/register", data={"username": "abc", "password": "x"})
    assert form.status_code == 415
    assert form.json()["reason"] == "UnsupportedMediaType"


async def test_login_answers_a_bearer_token(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"username": alice.username, "password": PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert sorted(body) == ["access_token", "expires_in", "token_type"]
    assert (body["token_type"], body["expires_in"]) == ("bearer", 3600)
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["username"] == alice.username


async def test_wegent_clients_login_with_user_name(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for path in ("/api/auth/login", "/api/v1/auth/login"):
        response = await client.post(path, json={"user_name": alice.username, "password": PASSWORD})
        assert response.status_code == 200
        assert response.json()["token_type"] == "bearer"


async def test_unknown_wrong_and_disabled_are_the_same_401(
    client: httpx.AsyncClient, admin: Account
) -> None:
    disabled = await register(client)
    patched = await client.patch(
        f"/api/v1/users/{disabled.username}", json={"isActive": False}, headers=admin.headers
    )
    assert patched.status_code == 200
    victim = await register(client)
    answers = [
        await client.post(
            "/api/v1/auth/login", json={"username": unique("ghost"), "password": PASSWORD}
        ),
        await client.post(
            "/api/v1/auth/login", json={"username": victim.username, "password": "wrong pass"}
        ),
        await client.post(
            "/api/v1/auth/login", json={"username": disabled.username, "password": PASSWORD}
        ),
    ]
    for answer in answers:
        assert answer.status_code == 401
        assert answer.json() == LOGIN_FAILED
        assert answer.headers["www-authenticate"] == "Bearer"


async def test_unknown_user_still_verifies_one_hash(
    client: httpx.AsyncClient, app: Litestar, monkeypatch: pytest.MonkeyPatch
) -> None:
    passwords = app.state.services.users._passwords
    calls: list[str | None] = []
    original = passwords._verify

    def counting(stored_hash: str | None, password: str) -> bool:
        calls.append(stored_hash)
        return bool(original(stored_hash, password))

    monkeypatch.setattr(passwords, "_verify", counting)
    response = await client.post(
        "/api/v1/auth/login", json={"username": unique("nobody"), "password": PASSWORD}
    )
    assert response.status_code == 401
    assert calls == [None]


async def test_failed_logins_are_throttled_per_account(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    account = await register(client)
    wrong = {"username": account.username, "password": "wrong password"}
    for _ in range(10):
        assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 401
    right = {"username": account.username, "password": PASSWORD}
    throttled = await client.post("/api/v1/auth/login", json=right)
    assert throttled.status_code == 429
    assert throttled.json() == status_body(
        429, "TooManyRequests", "too many failed logins for this account; retry later"
    )
    assert 0 < int(throttled.headers["retry-after"]) <= 900
    # Another account is not affected.
    other = await register(client)
    assert (
        await client.post(
            "/api/v1/auth/login", json={"username": other.username, "password": PASSWORD}
        )
    ).status_code == 200
    # Once the window has passed, the right password works and clears this address's count.
    await conn.execute(
        "UPDATE login_failures SET window_start = now() - interval '16 minutes' "
        "WHERE account = (SELECT id FROM users WHERE username = $1)",
        account.username,
    )
    assert (await client.post("/api/v1/auth/login", json=right)).status_code == 200
    left = await conn.fetchval(
        "SELECT count(*) FROM login_failures f JOIN users u ON u.id = f.account "
        "WHERE u.username = $1",
        account.username,
    )
    failed = await conn.fetchval(
        "SELECT failed_logins FROM users WHERE username = $1", account.username
    )
    assert (left, failed) == (0, 10)  # the account-wide count keeps the 10 checked failures


async def test_a_success_resets_the_failure_count(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    account = await register(client)
    for _ in range(9):
        await client.post(
            "/api/v1/auth/login", json={"username": account.username, "password": "nope nope"}
        )
    await login(client, account.username)
    for _ in range(9):
        await client.post(
            "/api/v1/auth/login", json={"username": account.username, "password": "nope nope"}
        )
    assert (
        await client.post(
            "/api/v1/auth/login", json={"username": account.username, "password": PASSWORD}
        )
    ).status_code == 200


async def test_login_rehashes_when_parameters_change(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    account = await register(client)
    old_hash = PasswordHasher(time_cost=1, memory_cost=16, parallelism=1).hash(PASSWORD)
    await conn.execute(
        "UPDATE users SET password_hash = $2 WHERE username = $1", account.username, old_hash
    )
    await login(client, account.username)
    new_hash = await conn.fetchval(
        "SELECT password_hash FROM users WHERE username = $1", account.username
    )
    assert new_hash != old_hash
    assert "m=8,t=1,p=1" in new_hash  # the test profile's parameters
    await login(client, account.username)


async def test_admin_lists_and_edits_users(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    listed = await client.get("/api/v1/users", headers=admin.headers)
    assert listed.status_code == 200
    names = [u["username"] for u in listed.json()["items"]]
    assert alice.username in names and admin.username in names
    assert names == sorted(names)
    promoted = await client.patch(
        f"/api/v1/users/{alice.username}", json={"role": "admin"}, headers=admin.headers
    )
    assert promoted.status_code == 200
    assert (promoted.json()["role"], promoted.json()["isActive"]) == ("admin", True)
    assert (await client.get("/api/v1/users", headers=alice.headers)).status_code == 200
    demoted = await client.patch(
        f"/api/v1/users/{alice.username}", json={"role": "user"}, headers=admin.headers
    )
    assert demoted.json()["role"] == "user"
    # The same (unexpired) token lost admin access at once.
    assert (await client.get("/api/v1/users", headers=alice.headers)).status_code == 403


async def test_disabled_user_loses_access_with_a_valid_token(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).status_code == 200
    await client.patch(
        f"/api/v1/users/{alice.username}", json={"isActive": False}, headers=admin.headers
    )
    response = await client.get("/api/v1/users/me", headers=alice.headers)
    assert response.status_code == 401
    assert response.json() == status_body(401, "Unauthorized", "authentication required")


async def test_patch_user_errors(client: httpx.AsyncClient, admin: Account) -> None:
    missing = await client.patch(
        f"/api/v1/users/{unique('nobody')}", json={"role": "user"}, headers=admin.headers
    )
    assert missing.status_code == 404
    bad_role = await client.patch(
        f"/api/v1/users/{admin.username}", json={"role": "root"}, headers=admin.headers
    )
    assert bad_role.status_code == 422
    assert bad_role.json()["details"]["causes"][0]["field"] == "role"


@pytest.fixture(scope="module")
async def lone_admin_app(
    make_database: object, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[httpx.AsyncClient, Account]]:
    """An app on a database of its own whose only admin comes from WEGENT_ADMIN_* settings."""
    url = await make_database()  # type: ignore[operator]
    settings = make_settings(
        url, tmp_path_factory.mktemp("lone"), admin_username="root-admin", admin_password=PASSWORD
    )
    async with started(settings) as (_, http):
        yield http, await login(http, "root-admin")


async def test_admin_from_settings_and_the_last_admin_stays(
    lone_admin_app: tuple[httpx.AsyncClient, Account],
) -> None:
    http, root = lone_admin_app
    me = await http.get("/api/v1/users/me", headers=root.headers)
    assert (me.json()["role"], me.json()["username"]) == ("admin", "root-admin")
    for change in ({"role": "user"}, {"isActive": False}):
        response = await http.patch("/api/v1/users/root-admin", json=change, headers=root.headers)
        assert response.status_code == 409
        assert response.json()["message"] == "the last active admin cannot be demoted or disabled"


async def test_registration_can_be_switched_off(make_database: object, tmp_path: object) -> None:
    url = await make_database()  # type: ignore[operator]
    settings = make_settings(url, tmp_path, allow_registration=False)  # type: ignore[arg-type]
    async with started(settings) as (_, http):
        response = await http.post(
            "/api/v1/auth/register", json={"username": unique(), "password": PASSWORD}
        )
    assert response.status_code == 403
    assert response.json() == status_body(
        403, "Forbidden", "registration is disabled on this server"
    )


def from_address(app: Litestar, host: str) -> httpx.AsyncClient:
    """A client whose requests come from ``host`` (the app is already started)."""
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://wegent.test")


async def test_concurrent_wrong_guesses_are_counted_before_checking(
    client: httpx.AsyncClient, app: Litestar
) -> None:
    account = await register(client)
    wrong = {"username": account.username, "password": "wrong password"}
    async with from_address(app, "10.1.0.1") as http:
        answers = await asyncio.gather(
            *(http.post("/api/v1/auth/login", json=wrong) for _ in range(100))
        )
    assert sorted(a.status_code for a in answers) == [401] * 10 + [429] * 90


async def test_one_address_cannot_lock_the_owner_out_elsewhere(
    client: httpx.AsyncClient, app: Litestar
) -> None:
    account = await register(client)
    wrong = {"username": account.username, "password": "wrong password"}
    right = {"username": account.username, "password": PASSWORD}
    async with from_address(app, "10.2.0.1") as attacker, from_address(app, "10.2.0.2") as owner:
        for _ in range(10):
            assert (await attacker.post("/api/v1/auth/login", json=wrong)).status_code == 401
        assert (await attacker.post("/api/v1/auth/login", json=right)).status_code == 429
        assert (await owner.post("/api/v1/auth/login", json=right)).status_code == 200


async def test_many_addresses_stop_at_the_account_ceiling(
    client: httpx.AsyncClient, app: Litestar
) -> None:
    account = await register(client)
    wrong = {"username": account.username, "password": "wrong password"}
    for host in range(10):
        async with from_address(app, f"10.3.0.{host}") as http:
            for _ in range(10):
                assert (await http.post("/api/v1/auth/login", json=wrong)).status_code == 401
    right = {"username": account.username, "password": PASSWORD}
    async with from_address(app, "10.3.1.1") as owner:
        refused = await owner.post("/api/v1/auth/login", json=right)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 900


async def test_passwords_are_compared_after_nfkc_normalization(client: httpx.AsyncClient) -> None:
    username = unique("nfkc")
    typed = "\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44\uff11\uff12\uff13"  # full-width "password123"
    created = await client.post(
        "/api/v1/auth/register", json={"username": username, "password": typed}
    )
    assert created.status_code == 201
    for password in ("password123", typed):
        assert (await login(client, username, password)).username == username
    composed, decomposed = "caf\u00e9-secret", "cafe\u0301-secret"
    other = unique("nfkc")
    await client.post("/api/v1/auth/register", json={"username": other, "password": composed})
    assert (await login(client, other, decomposed)).username == other


async def test_a_hash_made_before_normalization_still_logs_in_and_is_replaced(
    client: httpx.AsyncClient, app: Litestar, conn: asyncpg.Connection
) -> None:
    account = await register(client)
    typed = "\uff4c\uff45\uff47\uff41\uff43\uff59-password"  # full-width "legacy"
    legacy = await app.state.services.users._passwords.hash(typed)  # as stored before NFKC
    await conn.execute(
        "UPDATE users SET password_hash = $2 WHERE username = $1", account.username, legacy
    )
    await login(client, account.username, typed)
    stored = await conn.fetchval(
        "SELECT password_hash FROM users WHERE username = $1", account.username
    )
    assert stored != legacy
    await login(client, account.username, "legacy-password")  # the normalized form now works
