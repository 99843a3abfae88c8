"""The fast read path answers exactly what the handler would, and steps aside otherwise."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import Account, register
from tests.resources.api import Api, ghost, model

SECRET = "sk-123456"


@pytest.fixture
async def api(client: httpx.AsyncClient) -> Api:
    account = await register(client)
    api = Api(client, account, account.username, "B")
    for name in ("a", "b", "c"):
        await api.must_create("ghosts", ghost(name, labels={"n": name}))
    return api


async def test_same_answer_with_and_without_the_fast_path(
    api: Api, client: httpx.AsyncClient
) -> None:
    fast = await api.get("ghosts", "a")
    # ?reveal=false is not a parameter the fast path takes: the handler answers it.
    slow = await api.get("ghosts", "a", params={"reveal": "false"})
    assert (fast.status_code, fast.content) == (slow.status_code, slow.content)
    assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"
    fast_list = await api.list("ghosts", params={"limit": "2", "labelSelector": "n!=b"})
    slow_list = await api.list(
        "ghosts", params={"limit": "2", "labelSelector": "n!=b", "reveal": "false"}
    )
    assert fast_list.content == slow_list.content


async def test_errors_are_the_same_status_bodies(
    api: Api, client: httpx.AsyncClient, bob: Account
) -> None:
    for params in ({}, {"reveal": "false"}):
        missing = await api.get("ghosts", "zzz", params=params)
        assert missing.status_code == 404
        other = await Api(client, bob, api.namespace, "A").get("ghosts", "a", params=params)
        assert other.status_code == 403
        anonymous = await client.get(f"/api/v1/namespaces/{api.namespace}/ghosts/a", params=params)
        assert (anonymous.status_code, anonymous.headers["www-authenticate"]) == (401, "Bearer")
    pairs = [
        (
            await api.get("ghosts", "zzz"),
            await api.get("ghosts", "zzz", params={"reveal": "false"}),
        ),
        (
            await api.list("ghosts", params={"continue": "bad"}),
            await api.list("ghosts", params={"continue": "bad", "reveal": "false"}),
        ),
    ]
    for fast, slow in pairs:
        assert (fast.status_code, fast.json()) == (slow.status_code, slow.json())


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "x"},
        {"deleted": "maybe"},
        {"limit": "5", "limit2": "1"},
        {"allNamespaces": "yes"},
    ],
)
async def test_odd_queries_fall_through_to_the_handler(api: Api, params: dict[str, str]) -> None:
    response = await api.list("ghosts", params=params)
    assert response.status_code in (200, 400)
    assert response.headers["content-type"] == "application/json"


async def test_model_secrets_stay_masked_on_the_fast_path(client: httpx.AsyncClient) -> None:
    account = await register(client)
    api = Api(client, account, account.username, "A")
    await api.must_create("models", model("m", modelConfig={"env": {"API_KEY": SECRET}}))
    assert (await api.get("models", "m")).json()["spec"]["modelConfig"]["env"] == {"API_KEY": "***"}
    assert SECRET not in (await api.list("models")).text
