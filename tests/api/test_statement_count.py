"""SQL per request, counted on the wire: one statement for a read, at most two for a write with
references (besides BEGIN/COMMIT). Token, user and membership checks come from caches, for a
login JWT and an API token alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.helpers import Account, register, started, unique
from tests.resources.api import Api, bot, ghost, model

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


class Counter:
    """The statements sent for execution, whatever asyncpg API sent them."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def record(self, query: str) -> None:
        text = query.strip()
        if not text.upper().startswith(TRANSACTION_CONTROL):
            self.statements.append(text)


class CountingProtocol:
    """Stands in for a connection's wire protocol: every Bind+Execute and every simple query
    is counted (prepared statements included), then passed on unchanged."""

    def __init__(self, protocol: Any, counter: Counter) -> None:
        self._protocol = protocol
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._protocol, name)

    def bind_execute(self, state: Any, *args: Any, **kwargs: Any) -> Any:
        self._counter.record(state.query)
        return self._protocol.bind_execute(state, *args, **kwargs)

    def bind_execute_many(self, state: Any, *args: Any, **kwargs: Any) -> Any:
        self._counter.record(state.query)
        return self._protocol.bind_execute_many(state, *args, **kwargs)

    def bind(self, state: Any, *args: Any, **kwargs: Any) -> Any:
        self._counter.record(state.query)
        return self._protocol.bind(state, *args, **kwargs)

    def query(self, query: str, *args: Any, **kwargs: Any) -> Any:
        self._counter.record(query)
        return self._protocol.query(query, *args, **kwargs)


Counted = tuple[httpx.AsyncClient, Counter, Api, Any]  # the client, the counter, an Api, the app


@pytest.fixture(scope="module")
async def counted(
    make_database: object, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Counted]:
    """An app whose two pooled connections all report their statements to one counter."""
    url = await make_database()  # type: ignore[operator]
    settings = make_settings(
        url,
        Path(tmp_path_factory.mktemp("count")),
        pool_min_size=2,
        pool_max_size=2,
        user_cache_ttl_s=60.0,
    )
    counter = Counter()
    async with started(settings) as (app, http):
        pool = app.state.db.pool
        connections = [await pool.acquire() for _ in range(2)]
        for connection in connections:
            connection._protocol = CountingProtocol(connection._protocol, counter)
        for connection in connections:
            await pool.release(connection)
        account: Account = await register(http)
        api = Api(http, account, account.username, "B")
        await api.must_create("ghosts", ghost("g"))
        await api.must_create("models", model("m"))
        await api.get("ghosts", "g")  # warms the user and membership caches
        # A token's row is remembered 5 s at most; as long as the user's here, so that a slow
        # moment between two requests of a test cannot make the second one cold.
        app.state.services.api_tokens._grants.ttl = 60.0
        yield http, counter, api, app


async def count(counter: Counter, call: object) -> list[str]:
    counter.statements.clear()
    response = await call  # type: ignore[misc]
    assert response.status_code < 300, response.text
    return list(counter.statements)


async def test_get_one_is_one_statement(counted: Counted) -> None:
    _, counter, api, _ = counted
    assert len(await count(counter, api.get("ghosts", "g"))) == 1


async def test_a_list_page_is_one_statement(
    counted: Counted,
) -> None:
    _, counter, api, _ = counted
    for params in ({"limit": "100"}, {"labelSelector": "a=b"}):
        # The first coalesced list on a connection also has asyncpg read its array types.
        await api.list("ghosts", params=params)
        statements = await count(counter, api.list("ghosts", params=params))
        assert len(statements) == 1, statements
        assert "unnest" in statements[0]  # coalesced (wegent.db.coalesce)


async def test_create_without_references_is_one_statement(
    counted: Counted,
) -> None:
    _, counter, api, _ = counted
    statements = await count(counter, api.create("ghosts", ghost("g2")))
    assert len(statements) == 1 and " INSERT INTO kinds " in statements[0]


async def test_create_with_three_references_is_two_statements(
    counted: Counted,
) -> None:
    _, counter, api, _ = counted
    statements = await count(
        counter, api.create("bots", bot("b", "g", "ClaudeCode", modelRef={"name": "m"}))
    )
    # the targets found (a coalesced read, no lock), then locked by the insert itself
    assert len(statements) == 2
    assert statements[0].startswith("SELECT") and " INSERT INTO kinds " in statements[1]
    assert "FOR SHARE" in statements[1]


async def test_replace_with_references_is_two_statements(
    counted: Counted,
) -> None:
    _, counter, api, _ = counted
    await api.must_create("bots", bot("b2", "g"))
    statements = await count(counter, api.replace("bots", "b2", bot("b2", "g", "Chat")))
    assert len(statements) == 2


async def test_replace_without_references_is_one_statement(
    counted: Counted,
) -> None:
    _, counter, api, _ = counted
    assert len(await count(counter, api.replace("ghosts", "g", ghost("g", prompt="new")))) == 1


@dataclass(frozen=True)
class KeyAccount(Account):
    """An account whose requests carry an API token as ``X-API-Key`` (API.md §16)."""

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.token}


async def token_api(api: Api, sent_as: str) -> Api:
    """The same user in the same namespace, through a new API token of theirs."""
    made = await api.client.post(
        "/api/v1/tokens", json={"name": unique("t")}, headers=api.account.headers
    )
    assert made.status_code == 201, made.text
    secret = made.json()["token"]
    account = (Account if sent_as == "bearer" else KeyAccount)(api.account.username, secret)
    return Api(api.client, account, api.namespace, api.family)


OPERATIONS: dict[str, Callable[[Api], Awaitable[httpx.Response]]] = {
    "get": lambda api: api.get("ghosts", "g"),
    "list": lambda api: api.list("ghosts", params={"limit": "100"}),
    "create": lambda api: api.create("ghosts", ghost(unique("g"))),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("sent_as", ["bearer", "x-api-key"])
async def test_a_warm_token_costs_what_a_jwt_costs(
    counted: Counted, sent_as: str, operation: str
) -> None:
    """Its first request looks the token up (one statement more); from the second on, a
    token's request sends exactly the statements of the same request with a login JWT."""
    _, counter, api, _ = counted
    tokened = await token_api(api, sent_as)
    call = OPERATIONS[operation]
    by_jwt = await count(counter, call(api))
    assert len(by_jwt) == 1
    cold = await count(counter, call(tokened))
    assert len(cold) == 2 and cold[0].startswith("WITH t AS") and "FROM api_tokens" in cold[0]
    assert cold[1:] == by_jwt
    assert await count(counter, call(tokened)) == by_jwt
    assert await count(counter, call(api)) == by_jwt


async def test_requests_that_miss_the_caches_together_send_one_lookup(counted: Counted) -> None:
    """When the user's and its roles' entries expire under load, the requests that miss them
    at the same moment wait for one lookup each instead of sending one apiece."""
    _, counter, api, app = counted
    access = app.state.services.access
    gets = await count(counter, api.get("ghosts", "g"))
    counter.statements.clear()
    access._users.invalidate()
    access.forget_roles()  # as when their time to live ends
    answers = await asyncio.gather(*(api.get("ghosts", "g") for _ in range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    looked_up = [s for s in counter.statements if s != gets[0]]
    assert len(looked_up) == 2, looked_up  # the user, then its role in the namespace
    assert "FROM users" in looked_up[0] and "namespace_members" in looked_up[1]
    # The 20 GETs queued together are read together (wegent.db.coalesce): one statement per
    # reader at most.
    assert 1 <= counter.statements.count(gets[0]) <= 2, counter.statements
    assert len({a.content for a in answers}) == 1
