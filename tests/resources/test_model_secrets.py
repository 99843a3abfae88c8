"""Model secrets: sealed at rest, masked unless revealed to an editor (API.md §8)."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.helpers import Account, register, unique
from tests.resources.api import Api, manifest

pytestmark = pytest.mark.usefixtures("door")  # through both doors of the resource API

SECRET = "sk-live-0123456789abcdef"


def model(name: str, **env: str) -> dict[str, object]:
    return manifest("Model", name, {"modelConfig": {"env": {"MODEL": "gpt-4o", **env}}})


async def test_secrets_are_masked_and_sealed_at_rest(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    account = await register(client)
    api = Api(client, account, account.username, "B")
    env = {"OPENAI_API_KEY": SECRET, "auth_token": "tok-1", "db_password": "pw-1", "Region": "eu"}
    created = await api.must_create("models", model("m", **env))
    masked = {
        "MODEL": "gpt-4o",
        "OPENAI_API_KEY": "***",
        "auth_token": "***",
        "db_password": "***",
        "Region": "eu",
    }
    assert created["spec"] == {"modelConfig": {"env": masked}, "modelType": "llm"}
    assert (await api.get("models", "m")).json()["spec"]["modelConfig"]["env"] == masked
    assert (await api.list("models")).json()["items"][0]["spec"]["modelConfig"]["env"] == masked
    raw = await conn.fetchval(
        "SELECT spec::text FROM kinds WHERE kind = 'Model' AND namespace = $1 AND name = 'm'",
        account.username,
    )
    for plain in (SECRET, "tok-1", "pw-1"):
        assert plain not in raw
    assert raw.count("enc:v1:") == 3 and '"eu"' in raw


async def test_reveal_is_for_editors_only(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    shared = unique("team")
    await client.post("/api/v1/namespaces", json={"name": shared}, headers=alice.headers)
    await client.put(
        f"/api/v1/namespaces/{shared}/members/{bob.username}",
        json={"role": "view"},
        headers=alice.headers,
    )
    await Api(client, alice, shared, "B").must_create("models", model("m", API_KEY=SECRET))
    revealed = await Api(client, alice, shared, "A").get("models", "m", params={"reveal": "true"})
    assert revealed.json()["spec"]["modelConfig"]["env"]["API_KEY"] == SECRET
    viewer = Api(client, bob, shared, "A")
    assert (await viewer.get("models", "m")).json()["spec"]["modelConfig"]["env"][
        "API_KEY"
    ] == "***"
    refused = await viewer.get("models", "m", params={"reveal": "true"})
    assert refused.status_code == 403
    assert refused.json()["reason"] == "Forbidden"
    assert (await viewer.list("models", params={"reveal": "true"})).status_code == 403


async def test_a_list_reveals_every_item_to_an_editor(client: httpx.AsyncClient) -> None:
    account = await register(client)
    api = Api(client, account, account.username, "B")
    await api.must_create("models", model("m1", API_KEY=SECRET))
    await api.must_create("models", model("m2", API_KEY="sk-2"))

    async def envs(**params: str) -> list[object]:
        listed = await api.list("models", params=params)
        assert listed.status_code == 200, listed.text
        return [item["spec"]["modelConfig"]["env"] for item in listed.json()["items"]]

    assert await envs(reveal="true") == [
        {"MODEL": "gpt-4o", "API_KEY": SECRET},
        {"MODEL": "gpt-4o", "API_KEY": "sk-2"},
    ]
    assert await envs() == [{"MODEL": "gpt-4o", "API_KEY": "***"}] * 2


async def test_get_edit_put_round_trips_without_the_plain_text(client: httpx.AsyncClient) -> None:
    account = await register(client)
    api = Api(client, account, account.username, "A")
    await api.must_create("models", model("m", API_KEY=SECRET))
    current = (await api.get("models", "m")).json()
    current["spec"]["modelConfig"]["env"]["MODEL"] = "gpt-5"
    updated = await api.replace("models", "m", current)
    assert updated.status_code == 200
    assert updated.json()["spec"]["modelConfig"]["env"] == {"MODEL": "gpt-5", "API_KEY": "***"}
    revealed = (await api.get("models", "m", params={"reveal": "true"})).json()
    assert revealed["spec"]["modelConfig"]["env"] == {"MODEL": "gpt-5", "API_KEY": SECRET}
    # An unchanged PUT, with the secret masked or in plain text, writes nothing.
    same = await api.replace("models", "m", updated.json())
    again = await api.replace("models", "m", revealed)
    versions = {
        updated.json()["metadata"]["resourceVersion"],
        same.json()["metadata"]["resourceVersion"],
        again.json()["metadata"]["resourceVersion"],
    }
    assert len(versions) == 1
    # A new plain value replaces the secret.
    changed = model("m", API_KEY="sk-new")
    await api.replace("models", "m", changed)
    shown = (await api.get("models", "m", params={"reveal": "true"})).json()
    assert shown["spec"]["modelConfig"]["env"]["API_KEY"] == "sk-new"


async def test_patch_keeps_secrets_it_does_not_touch(client: httpx.AsyncClient) -> None:
    account = await register(client)
    api = Api(client, account, account.username, "B")
    await api.must_create("models", model("m", API_KEY=SECRET))
    patched = await api.patch("models", "m", {"spec": {"contextWindow": 128000}})
    assert patched.status_code == 200
    shown = (await api.get("models", "m", params={"reveal": "true"})).json()["spec"]
    assert shown["modelConfig"]["env"]["API_KEY"] == SECRET
    assert shown["contextWindow"] == 128000


async def test_mask_without_a_stored_secret_is_422(client: httpx.AsyncClient) -> None:
    account = await register(client)
    api = Api(client, account, account.username, "B")
    response = await api.create("models", model("m", API_KEY="***"))
    assert response.status_code == 422
    assert response.json()["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": '"***" keeps the stored secret, but there is none',
            "field": "spec.modelConfig.env.API_KEY",
        }
    ]
