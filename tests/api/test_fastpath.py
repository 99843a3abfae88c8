"""The fast path answers exactly what the handlers would, and steps aside otherwise."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from litestar import Litestar

from tests.helpers import Account, register
from tests.resources.api import Api, bot, ghost, model

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


Exchange = tuple[str, int, dict[str, str], Any]
VOLATILE = re.compile(r'"(uid|resourceVersion|creationTimestamp|updateTimestamp)":"[^"]*"')


async def write_scenario(client: httpx.AsyncClient, family: str) -> list[Exchange]:
    """Every kind of answer a write can get, in a fresh namespace, names the same each run."""
    owner, stranger = await register(client), await register(client)
    api = Api(client, owner, owner.username, family)
    big = json.dumps(ghost("big", "x" * (1024 * 1024))).encode()
    calls: list[tuple[str, Any]] = [
        ("create", api.create("ghosts", ghost("g1"))),
        ("create again", api.create("ghosts", ghost("g1"))),
        ("unknown field", api.create("ghosts", ghost("g2", extra=1))),
        ("unknown, strict", api.create("ghosts", ghost("g3", extra=1), params=strict())),
        ("invalid", api.create("ghosts", {"metadata": {"name": "g3"}, "spec": {}})),
        ("not JSON", api.request("POST", "ghosts", content=b"{", headers=JSON)),
        ("empty", api.request("POST", "ghosts", content=b"", headers=JSON)),
        ("text/plain", api.request("POST", "ghosts", content=b"{}", headers=TEXT)),
        ("too big", api.request("POST", "ghosts", content=big, headers=JSON)),
        ("wrong kind", api.create("ghosts", {**ghost("g4"), "kind": "Bot"})),
        ("dry run", api.create("ghosts", ghost("g4"), params={"dryRun": "All"})),
        ("dry run left nothing", api.get("ghosts", "g4")),
        ("bot", api.create("bots", bot("b1", "g1"))),
        ("missing reference", api.create("bots", bot("b2", "nope"))),
        ("replace", api.replace("ghosts", "g1", ghost("g1", "New."))),
        ("replace stale", api.replace("ghosts", "g1", ghost("g1", resourceVersion="1"))),
        ("replace other name", api.replace("ghosts", "g1", ghost("g9"))),
        ("replace missing", api.replace("ghosts", "g9", ghost("g9"))),
        ("patch", api.patch("ghosts", "g1", {"spec": {"systemPrompt": "P."}})),
        ("patch unknown", api.patch("ghosts", "g1", {"spec": {"extra": 1}})),
        ("patch strict", api.patch("ghosts", "g1", {"spec": {"extra": 1}}, params=strict())),
        ("patch invalid", api.patch("ghosts", "g1", {"spec": {"systemPrompt": 5}})),
        ("patch not JSON", api.request("PATCH", "ghosts", "g1", content=b"[", headers=PATCH)),
        ("patch text/plain", api.request("PATCH", "ghosts", "g1", content=b"{}", headers=TEXT)),
        ("patch missing", api.patch("ghosts", "g9", {"spec": {"systemPrompt": "P."}})),
        ("delete referenced", api.delete("ghosts", "g1")),
        ("delete dry run", api.delete("bots", "b1", params={"dryRun": "All"})),
        ("delete", api.delete("ghosts", "g2")),
        ("delete again", api.delete("ghosts", "g2")),
        ("delete forced", api.delete("ghosts", "g1", params={"force": "true"})),
        ("no token", client.post(f"/api/v1/namespaces/{owner.username}/ghosts", json=ghost("x"))),
        ("stranger", Api(client, stranger, owner.username, family).create("ghosts", ghost("x"))),
        ("stranger delete", Api(client, stranger, owner.username, family).delete("bots", "b1")),
    ]
    exchanges: list[Exchange] = []
    for label, call in calls:
        response: httpx.Response = await call
        text = VOLATILE.sub(r'"\1":"*"', response.text)
        text = text.replace(owner.username, "OWNER").replace(stranger.username, "STRANGER")
        headers = {k: v for k, v in response.headers.items() if k != "content-length"}
        exchanges.append((label, response.status_code, headers, json.loads(text or "null")))
    return exchanges


JSON = {"content-type": "application/json"}
PATCH = {"content-type": "application/merge-patch+json"}
TEXT = {"content-type": "text/plain"}


def strict() -> dict[str, str]:
    return {"fieldValidation": "Strict"}


@pytest.mark.parametrize("family", ["A", "B"])
async def test_writes_answer_the_same_with_and_without_the_fast_path(
    app: Litestar, client: httpx.AsyncClient, family: str
) -> None:
    fast_path = app.fast_path  # type: ignore[attr-defined]
    fast = await write_scenario(client, family)
    app.fast_path = None  # type: ignore[attr-defined]
    try:
        slow = await write_scenario(client, family)
    finally:
        app.fast_path = fast_path  # type: ignore[attr-defined]
    assert [label for label, *_ in fast] == [label for label, *_ in slow]
    for f, s in zip(fast, slow, strict=True):
        if f[0] == "empty":  # Litestar never hands an empty body to the DTO: its own 400
            assert (f[1], s[1]) == (400, 400)
            assert f[3]["message"] == "request body is not valid JSON: Input data was truncated"
            continue
        assert f == s
    statuses = {label: status for label, status, *_ in fast}
    assert statuses == {
        "create": 201,
        "create again": 409,
        "unknown field": 201,
        "unknown, strict": 422,
        "invalid": 422,
        "not JSON": 400,
        "empty": 400,
        "text/plain": 415,
        "too big": 413,
        "wrong kind": 400,
        "dry run": 201,
        "dry run left nothing": 404,
        "bot": 201,
        "missing reference": 422,
        "replace": 200,
        "replace stale": 409,
        "replace other name": 400,
        "replace missing": 404,
        "patch": 200,
        "patch unknown": 200,
        "patch strict": 422,
        "patch invalid": 422,
        "patch not JSON": 400,
        "patch text/plain": 415,
        "patch missing": 404,
        "delete referenced": 409,
        "delete dry run": 204,
        "delete": 204,
        "delete again": 404,
        "delete forced": 204,
        "no token": 401,
        "stranger": 403,
        "stranger delete": 403,
    }
    warned = {label: h.get("warning") for label, _, h, _ in fast if "warning" in h}
    assert warned == {
        "unknown field": '299 - "unknown field \\"spec.extra\\""',
        "patch unknown": '299 - "unknown field \\"spec.extra\\""',
    }
