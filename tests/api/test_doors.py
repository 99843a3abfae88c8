"""Both doors of the resource API give the same answers, and the fast one is the one used.

The fast dispatcher (``wegent.api.dispatch``) and the framework's routes (``wegent.api.routes``)
are built from the same operation table and end in the same ``ResourceApi.serve``; the resource
test modules run through both (the ``door`` fixture). Here: a scenario of every kind of write
answer compared request by request, a count proving the fast door answered every operation of
the table, and what it leaves to the framework.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from litestar import Litestar

from tests.helpers import register
from tests.resources.api import Api, bot, ghost
from wegent.api.dispatch import Dispatcher

Exchange = tuple[str, int, dict[str, str], Any]
VOLATILE = re.compile(
    r'"(uid|resourceVersion|creationTimestamp|updateTimestamp|deletionTimestamp)":"[^"]*"'
)


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
        headers = {
            k: v for k, v in response.headers.items() if k not in ("content-length", "x-request-id")
        }
        exchanges.append((label, response.status_code, headers, json.loads(text or "null")))
    return exchanges


JSON = {"content-type": "application/json"}
PATCH = {"content-type": "application/merge-patch+json"}
TEXT = {"content-type": "text/plain"}


def strict() -> dict[str, str]:
    return {"fieldValidation": "Strict"}


@pytest.mark.parametrize("family", ["A", "B", "C"])
async def test_writes_answer_the_same_through_both_doors(
    app: Litestar, client: httpx.AsyncClient, family: str
) -> None:
    fast = await write_scenario(client, family)
    app.front.fast = False  # type: ignore[attr-defined]
    try:
        slow = await write_scenario(client, family)
    finally:
        app.front.fast = True  # type: ignore[attr-defined]
    assert fast == slow
    statuses = {label: status for label, status, *_ in fast}
    deleted = 200 if family == "C" else 204  # Kubernetes answers the deleted object
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
        "delete dry run": deleted,
        "delete": deleted,
        "delete again": 404,
        "delete forced": deleted,
        "no token": 401,
        "stranger": 403,
        "stranger delete": 403,
    }
    warned = {label: h.get("warning") for label, _, h, _ in fast if "warning" in h}
    assert warned == {
        "unknown field": '299 - "unknown field \\"spec.extra\\""',
        "patch unknown": '299 - "unknown field \\"spec.extra\\""',
    }


async def test_the_fast_door_answers_every_operation_of_the_table(
    app: Litestar, client: httpx.AsyncClient
) -> None:
    """One request per route of the table (its answer does not matter here): each one is
    counted by the fast door, none reaches the framework."""
    dispatcher: Dispatcher = app.front.dispatcher  # type: ignore[attr-defined]
    account = await register(client)
    for route in dispatcher.api.routes:
        path = route.path.replace("{namespace}", account.username).replace("{name}", "x")
        before = dispatcher.answered
        response = await client.request(
            route.operation.method, path, headers=account.headers, content=b"{}"
        )
        assert response.status_code < 500, (route.operation_id, response.text)
        assert dispatcher.answered == before + 1, route.operation_id


async def test_what_the_table_does_not_serve_goes_to_the_framework(
    app: Litestar, client: httpx.AsyncClient
) -> None:
    dispatcher: Dispatcher = app.front.dispatcher  # type: ignore[attr-defined]
    account = await register(client)
    base = f"/api/v1/namespaces/{account.username}"
    before = dispatcher.answered
    wrong_method = await client.request("PATCH", f"{base}/ghosts", headers=account.headers)
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "GET, OPTIONS, POST")
    options = await client.options(f"{base}/ghosts/g1", headers=account.headers)
    assert options.headers["allow"] == "DELETE, GET, OPTIONS, PATCH, PUT"
    unknown = await client.get(f"{base}/gadgets", headers=account.headers)
    assert unknown.status_code == 404
    members = await client.get(f"{base}/members", headers=account.headers)
    assert members.status_code == 200
    assert dispatcher.answered == before
