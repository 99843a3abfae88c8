"""Limits against resource exhaustion (OWASP API4) and closed-by-default CORS."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar

from tests.conftest import make_settings
from tests.helpers import Account, register, started, status_body
from tests.resources.api import Api, ghost, manifest
from wegent.api.limits import InFlight
from wegent.auth.passwords import MAX_CONCURRENT_HASHES, Passwords

MakeDatabase = Callable[[], Awaitable[str]]


async def test_in_flight_limit_refuses_fast_and_spares_the_probes(
    client: httpx.AsyncClient, app: Litestar, alice: Account
) -> None:
    in_flight: InFlight = app.front.in_flight  # type: ignore[attr-defined]
    saved = in_flight.limit
    in_flight.limit = 3
    in_flight.count = 3  # as if three requests were being served
    try:
        for method, path in (("GET", "/api/v1/kinds/ghosts"), ("POST", "/api/v1/namespaces")):
            refused = await client.request(method, path, headers=alice.headers, json={})
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            assert refused.headers["connection"] == "close"  # a flood must reconnect to retry
            assert refused.json() == status_body(
                503, "ServiceUnavailable", "the server is busy; retry later"
            )
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
    finally:
        in_flight.limit, in_flight.count = saved, 0
    assert (await client.get("/api/v1/kinds/ghosts", headers=alice.headers)).status_code == 200
    assert in_flight.count == 0


def test_no_limit_counts_but_never_refuses() -> None:
    unlimited = InFlight(0)
    assert [unlimited.enter("/api/v1/users/me") for _ in range(1000)] == [True] * 1000
    assert unlimited.enter("/healthz") is False


async def test_statement_timeout_is_a_503(make_database: MakeDatabase, tmp_path: Path) -> None:
    url = await make_database()
    async with started(make_settings(url, tmp_path, statement_timeout_ms=200)) as (_, http):
        account = await register(http)
        api = Api(http, account, account.username, "B")
        await api.must_create("ghosts", ghost("locked"))
        holder = await asyncpg.connect(url)
        try:
            async with holder.transaction():
                await holder.execute(
                    "SELECT 1 FROM kinds WHERE namespace = $1 AND name = 'locked' FOR UPDATE",
                    account.username,
                )
                response = await asyncio.wait_for(
                    api.replace("ghosts", "locked", ghost("locked", prompt="x")), 10
                )
        finally:
            await holder.close()
        assert response.status_code == 503
        assert response.json() == status_body(
            503, "ServiceUnavailable", "the request took too long; retry later"
        )


async def test_cors_is_closed_unless_configured(
    client: httpx.AsyncClient, make_database: MakeDatabase, tmp_path: Path
) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    closed = await client.options("/api/v1/kinds/ghosts", headers=preflight)
    assert "access-control-allow-origin" not in closed.headers
    plain = await client.get("/healthz", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in plain.headers
    settings = make_settings(await make_database(), tmp_path, cors_origins=("https://app.example",))
    async with started(settings) as (_, http):
        allowed = await http.options("/api/v1/kinds/ghosts", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = await http.options(
            "/api/v1/kinds/ghosts", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"
        for method in ("GET", "POST", "DELETE"):  # the fast path leaves these to the framework
            path = "/api/v1/kinds/ghosts" + ("/g" if method == "DELETE" else "")
            cross = await http.request(method, path, headers={"Origin": "https://app.example"})
            assert cross.status_code == 401
            assert cross.headers["access-control-allow-origin"] == "https://app.example"


async def test_options_needs_no_token(client: httpx.AsyncClient) -> None:
    response = await client.options("/api/v1/kinds/ghosts")
    assert response.status_code == 204
    assert "GET" in response.headers["allow"]


async def test_password_hashing_is_bounded() -> None:
    passwords = Passwords("test")
    running = peak = 0
    real = passwords._hasher

    class Counting:
        def hash(self, password: str) -> str:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            try:
                time.sleep(0.02)
                return real.hash(password)
            finally:
                running -= 1

    passwords._hasher = Counting()  # type: ignore[assignment]
    await asyncio.gather(*(passwords.hash(f"password-{i}") for i in range(12)))
    assert peak == MAX_CONCURRENT_HASHES


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": True}
    for _ in range(depth):
        value = {"next": value}
    return value


async def test_nesting_and_collections_are_bounded(
    client: httpx.AsyncClient, alice: Account
) -> None:
    api = Api(client, alice, alice.username, "B")
    deep = await api.create("ghosts", ghost("deep", mcpServers=nested(40)))
    assert deep.status_code == 422
    assert [c["field"] for c in deep.json()["details"]["causes"]] == ["spec.mcpServers"]
    labels = {f"k{i}": "v" for i in range(65)}
    too_many = await api.create("ghosts", ghost("labels", labels=labels))
    assert too_many.status_code == 422
    members = [{"botRef": {"name": f"b{i}"}} for i in range(65)]
    team = await api.create(
        "teams", manifest("Team", "big", {"members": members, "collaborationModel": "solo"})
    )
    assert team.status_code == 422
    assert [c["field"] for c in team.json()["details"]["causes"]] == ["spec.members"]
    huge = "x" * (300 * 1024)
    prompt = await api.create("ghosts", ghost("huge", prompt=huge))
    assert prompt.status_code == 422
    bomb = b'{"a":' * 5000 + b"1" + b"}" * 5000
    response = await api.request(
        "POST", "ghosts", content=bomb, headers={"content-type": "application/json"}
    )
    assert (response.status_code, response.json()) == (
        400,
        status_body(400, "BadRequest", "request body is nested too deeply"),
    )


async def test_no_answer_leaks_internals(client: httpx.AsyncClient, alice: Account) -> None:
    api = Api(client, alice, alice.username, "A")
    weird = [
        await api.create("ghosts", {"metadata": {"name": "x" * 64}, "spec": {"systemPrompt": 1}}),
        await api.get("ghosts", "%00"),
        await api.list("ghosts", params={"labelSelector": "'; DROP TABLE kinds; --"}),
        await api.create(
            "bots",
            manifest(
                "Bot", str(uuid.uuid4()), {"ghostRef": {"name": "a'b"}, "shellRef": {"name": "c"}}
            ),
        ),
        await api.create("ghosts", ghost("nul", prompt="a\u0000b")),
        await api.list("tasks", params={"team": "a\u0000"}),
        await api.client.get("/api/v1/namespaces/a%00b/ghosts", headers=alice.headers),
        await api.client.get("/api/v1/users/me%00", headers=alice.headers),
        await api.client.put(
            "/api/v1/namespaces/default/members/x%00", json={"role": "view"}, headers=alice.headers
        ),
    ]
    for response in weird:
        assert 400 <= response.status_code < 500, response.text
        text = response.text.lower()
        for leak in (
            "traceback",
            "select ",
            "insert ",
            "kinds_live_name",
            "asyncpg",
            "psycopg",
            "constraint",
        ):
            assert leak not in text, (leak, response.text)
        assert msgspec.json.decode(response.content)["kind"] == "Status"


async def test_warning_headers_are_capped(client: httpx.AsyncClient, alice: Account) -> None:
    """3,000 unknown fields: 20 warnings and one counting the rest (hardening finding 8)."""
    spec = {"systemPrompt": "p", **{f"x{i:04}": 1 for i in range(3000)}}
    created = await client.post(
        f"/api/v1/namespaces/{alice.username}/ghosts",
        json={"metadata": {"name": "noisy"}, "spec": spec},
        headers=alice.headers,
    )
    assert created.status_code == 201
    warnings = created.headers.get_list("warning")
    assert warnings == [
        *(f'299 - "unknown field \\"spec.x{i:04}\\""' for i in range(20)),
        '299 - "2980 more warnings not shown"',
    ]


@pytest.mark.parametrize(
    "path",
    ["/api/v1/kinds/ghosts", "/api/v1/users/me", "/healthz"],
)
async def test_a_repeated_query_parameter_is_400_everywhere(
    client: httpx.AsyncClient, alice: Account, path: str
) -> None:
    response = await client.get(f"{path}?limit=1&limit=2", headers=alice.headers)
    assert (response.status_code, response.json()) == (
        400,
        status_body(400, "BadRequest", "query parameter limit is given more than once"),
    )


@pytest.mark.parametrize("limit", ["\u0665", "\uff15", "5\u0665", " 5", "5 ", "+5", "0x5", "5.0"])
async def test_limit_takes_ascii_digits_only(
    client: httpx.AsyncClient, alice: Account, limit: str
) -> None:
    response = await client.get(
        f"/api/v1/namespaces/{alice.username}/ghosts",
        params={"limit": limit},
        headers=alice.headers,
    )
    shown = msgspec.json.encode(limit).decode()
    assert (response.status_code, response.json()) == (
        400,
        status_body(
            400,
            "BadRequest",
            f"invalid value {shown} for query parameter limit: must be an integer from 1 to 1000",
        ),
    )


async def test_a_query_string_that_is_not_utf8_is_400(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for query in ("labelSelector=%FF", "labelSelector=%C0%AF"):
        response = await client.get(
            f"/api/v1/namespaces/{alice.username}/ghosts?{query}", headers=alice.headers
        )
        assert (response.status_code, response.json()) == (
            400,
            status_body(400, "BadRequest", "the query string is not valid UTF-8"),
        )
