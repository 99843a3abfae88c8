"""Every malformed credential is the same 401 with ``WWW-Authenticate: Bearer`` (RFC 8725)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import TEST_SECRET
from tests.helpers import Account, status_body
from wegent.auth.tokens import Claims, InvalidToken, TokenIssuer

UNAUTHORIZED = status_body(401, "Unauthorized", "authentication required")


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_of(account: Account) -> dict[str, Any]:
    return jwt.decode(account.token, TEST_SECRET, algorithms=["HS256"])


def signed(payload: dict[str, Any], key: str = TEST_SECRET, **headers: Any) -> str:
    return jwt.encode(payload, key, algorithm="HS256", headers=headers or None)


async def assert_401(client: httpx.AsyncClient, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.get("/api/v1/users/me", headers=headers)
    assert response.status_code == 401, response.text
    assert response.json() == UNAUTHORIZED
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_valid_token_works(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.get("/api/v1/users/me", headers=alice.headers)
    assert response.status_code == 200
    claims = claims_of(alice)
    assert sorted(claims) == ["exp", "iat", "role", "sub", "username"]
    assert (claims["username"], claims["role"]) == (alice.username, "user")
    assert claims["exp"] - claims["iat"] == 3600


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer garbage",
        "Bearer a.b.c",
        "Token x",
    ],
)
async def test_missing_or_garbage_credentials(
    client: httpx.AsyncClient, authorization: str | None
) -> None:
    await assert_401(client, authorization)


async def test_alg_none_is_refused(client: httpx.AsyncClient, alice: Account) -> None:
    claims = claims_of(alice)
    for alg in ("none", "None", "NONE"):
        token = f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims)}."
        await assert_401(client, f"Bearer {token}")


async def test_algorithm_confusion_is_refused(client: httpx.AsyncClient, alice: Account) -> None:
    claims = claims_of(alice)
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    await assert_401(client, f"Bearer {jwt.encode(claims, private, algorithm='RS256')}")
    await assert_401(client, f"Bearer {jwt.encode(claims, TEST_SECRET, algorithm='HS512')}")
    # An HS256 signature presented under another alg header is not accepted either.
    _, payload, signature = signed(claims).split(".")
    forged_header = b64({"alg": "HS384", "typ": "JWT"})
    await assert_401(client, f"Bearer {forged_header}.{payload}.{signature}")


async def test_wrong_key_is_refused(client: httpx.AsyncClient, alice: Account) -> None:
    await assert_401(client, f"Bearer {signed(claims_of(alice), key='x' * 48)}")


async def test_tampered_payload_is_refused(client: httpx.AsyncClient, alice: Account) -> None:
    header, _, signature = alice.token.split(".")
    claims = {**claims_of(alice), "role": "admin"}
    await assert_401(client, f"Bearer {header}.{b64(claims)}.{signature}")


async def test_expired_beyond_leeway_is_refused(client: httpx.AsyncClient, alice: Account) -> None:
    now = int(time.time())
    await assert_401(
        client, f"Bearer {signed({**claims_of(alice), 'iat': now - 7200, 'exp': now - 31})}"
    )
    within = signed({**claims_of(alice), "iat": now - 3600, "exp": now - 5})
    ok = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {within}"})
    assert ok.status_code == 200  # 30 s of leeway for clock skew


async def test_future_iat_is_refused(client: httpx.AsyncClient, alice: Account) -> None:
    now = int(time.time())
    await assert_401(
        client, f"Bearer {signed({**claims_of(alice), 'iat': now + 3600, 'exp': now + 7200})}"
    )


@pytest.mark.parametrize("claim", ["sub", "username", "role", "iat", "exp"])
async def test_missing_claims_are_refused(
    client: httpx.AsyncClient, alice: Account, claim: str
) -> None:
    claims = claims_of(alice)
    del claims[claim]
    await assert_401(client, f"Bearer {signed(claims)}")


@pytest.mark.parametrize(
    "change",
    [
        {"sub": "not-a-number"},
        {"sub": 12},
        {"sub": "999999999"},
        {"sub": "99999999999999999999"},  # beyond any user id: was a 422 from the database
        {"sub": "2147483648"},
        {"sub": "\u0661\u0662"},  # Arabic-Indic digits: a "digit string", not a user id
        {"sub": "-1"},
        {"sub": "007"},
        {"sub": ""},
        {"username": "someone-else"},
        {"iat": "yesterday"},
        {"exp": "tomorrow"},
    ],
)
async def test_wrong_claim_values_are_refused(
    client: httpx.AsyncClient, alice: Account, change: dict[str, Any]
) -> None:
    await assert_401(client, f"Bearer {signed({**claims_of(alice), **change})}")


async def test_role_claim_grants_nothing(client: httpx.AsyncClient, alice: Account) -> None:
    """The server authorizes on its own record: a token claiming admin is still a user."""
    token = signed({**claims_of(alice), "role": "admin"})
    response = await client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403


def test_a_remembered_token_still_expires() -> None:
    issuer = TokenIssuer(TEST_SECRET, 60)
    now = int(time.time())
    token = signed({"sub": "1", "username": "u", "role": "user", "iat": now - 120, "exp": now - 60})
    with pytest.raises(InvalidToken):
        issuer.decode(token)
    # Even if it had been verified while valid, it is refused once past its expiry.
    issuer._verified[token] = (now - 60.0, Claims(user_id=1, username="u"))
    with pytest.raises(InvalidToken):
        issuer.decode(token)
    assert token not in issuer._verified


def test_verified_tokens_are_remembered_within_bounds() -> None:
    issuer = TokenIssuer(TEST_SECRET, 60, cache_size=2)
    tokens = [issuer.issue(i, f"user{i}", "user") for i in range(1, 4)]
    for token in tokens:
        assert issuer.decode(token).user_id == tokens.index(token) + 1
    assert len(issuer._verified) <= 2
    assert issuer.decode(tokens[0]) == Claims(user_id=1, username="user1")
