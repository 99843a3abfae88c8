"""The rules of the upstream-shaped kinds (API.md §2, §3, §8): Retriever secrets, one default
Device per namespace, Template validation paths, input aliases and the system namespace."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import Account, register, status_body
from tests.resources.api import Api, ghost, manifest

pytestmark = pytest.mark.usefixtures("door")  # through both doors of the resource API


@pytest.fixture
async def api(client: httpx.AsyncClient) -> Api:
    account = await register(client)
    return Api(client, account, account.username, "B")


def retriever(name: str, password: str, api_key: str) -> dict[str, Any]:
    return manifest(
        "Retriever",
        name,
        {
            "storageConfig": {
                "type": "qdrant",
                "url": "http://qdrant:6333",
                "password": password,
                "apiKey": api_key,
                "indexStrategy": {"mode": "per_user", "prefix": "kb"},
            }
        },
    )


async def test_retriever_secrets_are_sealed_masked_and_kept(
    api: Api, client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    created = await api.create("retrievers", retriever("r1", "pw-1", "key-1"))
    assert created.status_code == 201, created.text
    storage = created.json()["spec"]["storageConfig"]
    assert (storage["password"], storage["apiKey"]) == ("***", "***")
    stored = await conn.fetchval(
        "SELECT spec::text FROM kinds WHERE kind = 'Retriever' AND namespace = $1",
        api.namespace,
    )
    assert "pw-1" not in stored and "key-1" not in stored and "enc:v1:" in stored
    revealed = (await api.get("retrievers", "r1", params={"reveal": "true"})).json()
    assert revealed["spec"]["storageConfig"]["password"] == "pw-1"
    assert revealed["spec"]["storageConfig"]["apiKey"] == "key-1"
    listed = (await api.list("retrievers")).json()["items"][0]
    assert listed["spec"]["storageConfig"]["password"] == "***"
    # GET -> edit -> PUT with the masks keeps the stored values; a new one replaces its own.
    edited = created.json()
    edited["spec"]["storageConfig"]["apiKey"] = "key-2"
    assert (await api.replace("retrievers", "r1", edited)).status_code == 200
    again = (await api.get("retrievers", "r1", params={"reveal": "true"})).json()
    assert again["spec"]["storageConfig"]["password"] == "pw-1"
    assert again["spec"]["storageConfig"]["apiKey"] == "key-2"
    # A viewer sees masks and may not reveal.
    viewer = await register(client)
    await client.put(
        f"/api/v1/namespaces/{api.namespace}/members/{viewer.username}",
        json={"role": "view"},
        headers=api.account.headers,
    )
    seen = Api(client, viewer, api.namespace, "B")
    assert (await seen.get("retrievers", "r1")).json()["spec"]["storageConfig"]["apiKey"] == "***"
    assert (await seen.get("retrievers", "r1", params={"reveal": "true"})).status_code == 403


def device(name: str, default: bool) -> dict[str, Any]:
    return manifest("Device", name, {"deviceId": f"id-{name}", "isDefault": default})


def taken(name: str, holder: str, namespace: str) -> dict[str, Any]:
    return status_body(
        409,
        "Conflict",
        f'Device "{name}" cannot set isDefault: Device "{holder}" already has it in '
        f'namespace "{namespace}"',
        details={"name": name, "kind": "Device"},
    )


async def test_one_default_device_per_namespace(api: Api) -> None:
    ns = api.namespace
    assert (await api.create("devices", device("d1", True))).status_code == 201
    second = await api.create("devices", device("d2", True))
    assert (second.status_code, second.json()) == (409, taken("d2", "d1", ns))
    assert (await api.create("devices", device("d2", False))).status_code == 201
    patched = await api.patch("devices", "d2", {"spec": {"isDefault": True}})
    assert (patched.status_code, patched.json()) == (409, taken("d2", "d1", ns))
    replaced = await api.replace("devices", "d2", device("d2", True))
    assert (replaced.status_code, replaced.json()) == (409, taken("d2", "d1", ns))
    assert (await api.delete("devices", "d1")).status_code == 204
    assert (await api.patch("devices", "d2", {"spec": {"isDefault": True}})).status_code == 200
    restored = await api.restore("devices", "d1")  # the old default comes back: d2 has it now
    assert (restored.status_code, restored.json()) == (409, taken("d1", "d2", ns))
    # Each namespace has its own default.
    other = Api(api.client, await register(api.client), "", "B")
    other.namespace = other.account.username
    assert (await other.create("devices", device("d1", True))).status_code == 201


async def test_concurrent_default_devices_have_one_winner(api: Api) -> None:
    answers = await asyncio.gather(
        *(api.create("devices", device(f"d{i}", True)) for i in range(10))
    )
    assert sorted(a.status_code for a in answers) == [201] + [409] * 9


async def test_template_resources_are_validated_with_their_full_path(api: Api) -> None:
    body = manifest(
        "Template",
        "t1",
        {
            "resources": {
                "ghost": {"mcpServers": {}},
                "subscription": {"promptTemplate": "p", "retryCount": 4},
            }
        },
    )
    response = await api.create("templates", body)
    assert response.status_code == 422
    causes = response.json()["details"]["causes"]
    assert [(c["reason"], c["field"]) for c in causes] == [
        ("FieldValueRequired", "spec.resources.ghost.systemPrompt"),
        ("FieldValueInvalid", "spec.resources.subscription.retryCount"),
    ]


async def test_an_alias_and_its_field_must_agree(api: Api) -> None:
    body = ghost("g1", skills=["s"], preloadSkills=["s"])
    body["spec"]["preload_skills"] = ["t"]
    response = await api.create("ghosts", body)
    assert response.status_code == 422
    assert response.json()["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: ["t"]: must equal preloadSkills (["s"])',
            "field": "spec.preload_skills",
        }
    ]


async def test_the_document_shows_each_alias_beside_its_field(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/schema/openapi.json")).json()["components"]["schemas"]
    for component, alias, field in (
        ("GhostSpec", "preload_skills", "preloadSkills"),
        ("TeamSpec", "bind_mode", "bindMode"),
        ("TeamSpec", "quick_phrases", "quickPhrases"),
        ("TaskSpec", "is_group_chat", "isGroupChat"),
        ("TaskSpec", "device_id", "deviceId"),
        ("ShellSpec", "runtime", "shellType"),
    ):
        shown = schemas[component]["properties"][alias]
        assert shown["deprecated"] is True, alias
        assert shown["description"] == f"Input alias of {field}; answers use {field}."


async def test_the_system_namespace(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    """Readable by every user, writable by global admins only, seeded empty (§3)."""
    namespace = await client.get("/api/v1/namespaces/system", headers=alice.headers)
    assert (namespace.status_code, namespace.json()["role"]) == (200, "view")
    reader = Api(client, alice, "system", "B")
    assert (await reader.list("templates")).status_code == 200
    refused = await reader.create("templates", manifest("Template", "t", {"resources": {}}))
    assert refused.status_code == 403
    writer = Api(client, admin, "system", "B")
    made = await writer.create("connectorapps", manifest("ConnectorApp", "ca", {"name": "App"}))
    assert made.status_code == 201, made.text
    assert (await reader.get("connectorapps", "ca")).status_code == 200
    assert (await writer.delete("connectorapps", "ca")).status_code == 204
    gone = await client.delete("/api/v1/namespaces/system", headers=admin.headers)
    assert gone.status_code == 403
