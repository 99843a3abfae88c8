"""Batch apply and delete from JSON arrays and YAML streams (API.md §9)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import Account, register, status_body
from tests.resources.api import Api, bot, ghost, model, team

pytestmark = pytest.mark.usefixtures("door")  # through both doors of the resource API

TEAM_YAML = b"""\
apiVersion: agent.wecode.io/v1
kind: Team
metadata:
  name: dev-team
spec:
  collaborationModel: pipeline
  members:
    - botRef: {name: dev-bot}
      role: leader
---
apiVersion: agent.wecode.io/v1
kind: Bot
metadata:
  name: dev-bot
spec:
  ghostRef: {name: dev-ghost}
  shellRef: {name: ClaudeCode}
  modelRef: {name: dev-model}
---
kind: Model
metadata:
  name: dev-model
spec:
  modelConfig:
    env: {MODEL: claude, ANTHROPIC_API_KEY: sk-ant-123}
---
kind: Ghost
metadata:
  name: dev-ghost
  labels: {team: core}
spec:
  systemPrompt: You write code.
"""
YAML = {"content-type": "application/yaml"}


@pytest.fixture
async def account(client: httpx.AsyncClient) -> Account:
    return await register(client)


def url(account: Account, verb: str) -> str:
    return f"/api/v1/namespaces/{account.username}/{verb}"


def result(
    kind: str, name: str, namespace: str, operation: str, error: str | None = None
) -> dict[str, Any]:
    return {
        "kind": kind,
        "name": name,
        "namespace": namespace,
        "operation": operation,
        "success": error is None,
        "error": error,
    }


async def versions(conn: asyncpg.Connection, namespace: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT kind || '/' || name AS key, resource_version FROM kinds "
        "WHERE namespace = $1 AND deleted_at IS NULL",
        namespace,
    )
    return {r["key"]: r["resource_version"] for r in rows}


async def test_yaml_in_reverse_order_sets_up_a_team(
    client: httpx.AsyncClient, account: Account, conn: asyncpg.Connection
) -> None:
    ns = account.username
    response = await client.post(
        url(account, "apply"), content=TEAM_YAML, headers={**account.headers, **YAML}
    )
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "message": "Applied 4/4 resources",
        "results": [
            result("Team", "dev-team", ns, "created"),
            result("Bot", "dev-bot", ns, "created"),
            result("Model", "dev-model", ns, "created"),
            result("Ghost", "dev-ghost", ns, "created"),
        ],
    }
    team_obj = (await Api(client, account, ns, "B").get("teams", "dev-team")).json()
    assert team_obj["spec"]["members"][0]["botRef"] == {"name": "dev-bot", "namespace": ns}
    before = await versions(conn, ns)
    again = await client.post(
        url(account, "apply"), content=TEAM_YAML, headers={**account.headers, **YAML}
    )
    assert [r["operation"] for r in again.json()["results"]] == ["unchanged"] * 4
    assert await versions(conn, ns) == before


async def test_apply_updates_what_exists(client: httpx.AsyncClient, account: Account) -> None:
    api = Api(client, account, account.username, "B")
    await api.must_create("ghosts", ghost("g", prompt="old"))
    response = await client.post(
        url(account, "apply"), json=[ghost("g", prompt="new"), ghost("h")], headers=account.headers
    )
    assert [r["operation"] for r in response.json()["results"]] == ["updated", "created"]
    assert (await api.get("ghosts", "g")).json()["spec"]["systemPrompt"] == "new"
    assert (await api.get("ghosts", "g")).json()["metadata"]["generation"] == 2


async def test_failures_are_reported_per_item(client: httpx.AsyncClient, account: Account) -> None:
    ns = account.username
    body = [
        ghost("ok"),
        bot("broken", "missing-ghost"),
        {"kind": "Spaceship", "metadata": {"name": "x"}},
        {"metadata": {"name": "y"}},
    ]
    response = await client.post(url(account, "apply"), json=body, headers=account.headers)
    assert response.status_code == 200
    message = f'Bot "broken" is invalid: spec.ghostRef: Ghost "missing-ghost" not found in namespace "{ns}" or "public"'
    assert response.json() == {
        "success": False,
        "message": "Applied 1/4 resources",
        "results": [
            result("Ghost", "ok", ns, "created"),
            result("Bot", "broken", ns, "failed", message),
            result("Spaceship", "x", ns, "failed", 'unknown kind "Spaceship"'),
            result(None, "y", ns, "failed", "kind is required"),  # type: ignore[arg-type]
        ],
    }
    assert (await Api(client, account, ns, "B").get("ghosts", "ok")).status_code == 200


async def test_atomic_apply_with_one_broken_manifest_writes_nothing(
    client: httpx.AsyncClient, account: Account, conn: asyncpg.Connection
) -> None:
    ns = account.username
    body = [
        ghost("g1"),
        model("m1"),
        bot("b1", "g1", modelRef={"name": "m1"}),
        team("t1", "b1", "nobody"),
    ]
    response = await client.post(
        url(account, "apply"), params={"atomic": "true"}, json=body, headers=account.headers
    )
    assert response.status_code == 200
    answer = response.json()
    assert (answer["success"], answer["message"]) == (False, "Applied 0/4 resources")
    assert [(r["operation"], r["success"]) for r in answer["results"]] == [
        ("created", False),
        ("created", False),
        ("created", False),
        ("failed", False),
    ]
    assert (
        answer["results"][0]["error"] == "not applied: the batch is atomic and another item failed"
    )
    assert await versions(conn, ns) == {}
    fixed = [*body[:3], team("t1", "b1")]
    ok = await client.post(
        url(account, "apply"), params={"atomic": "true"}, json=fixed, headers=account.headers
    )
    assert ok.json()["success"] is True
    assert sorted(await versions(conn, ns)) == ["Bot/b1", "Ghost/g1", "Model/m1", "Team/t1"]


async def test_dry_run_apply_writes_nothing(
    client: httpx.AsyncClient, account: Account, conn: asyncpg.Connection
) -> None:
    response = await client.post(
        url(account, "apply"),
        params={"dryRun": "All"},
        content=TEAM_YAML,
        headers={**account.headers, **YAML},
    )
    assert response.json()["success"] is True
    assert await versions(conn, account.username) == {}


async def test_batch_delete_in_dependency_order(
    client: httpx.AsyncClient, account: Account, conn: asyncpg.Connection
) -> None:
    headers = {**account.headers, **YAML}
    await client.post(url(account, "apply"), content=TEAM_YAML, headers=headers)
    # The file lists the Team first; deleting the Ghost first would be refused, so order matters.
    response = await client.post(url(account, "delete"), content=TEAM_YAML[::1], headers=headers)
    assert response.json()["message"] == "Deleted 4/4 resources"
    assert {r["operation"] for r in response.json()["results"]} == {"deleted"}
    assert await versions(conn, account.username) == {}
    missing = await client.post(
        url(account, "delete"), json=[ghost("dev-ghost")], headers=account.headers
    )
    assert (
        missing.json()["results"][0]["error"]
        == f'Ghost "dev-ghost" not found in namespace "{account.username}"'
    )


async def test_yaml_errors_name_the_document_and_line(
    client: httpx.AsyncClient, account: Account
) -> None:
    body = b"kind: Ghost\nmetadata: {name: a}\nspec: {systemPrompt: x}\n---\nkind: Ghost\nmetadata: [unclosed\n"
    response = await client.post(
        url(account, "apply"), content=body, headers={**account.headers, **YAML}
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("invalid YAML in document 2 at line ")


async def test_batch_limits_and_media_types(client: httpx.AsyncClient, account: Account) -> None:
    too_many = [ghost(f"g{i}") for i in range(501)]
    response = await client.post(url(account, "apply"), json=too_many, headers=account.headers)
    assert response.status_code == 422
    assert response.json() == status_body(
        422, "Invalid", "at most 500 manifests per request, got 501"
    )
    text = await client.post(
        url(account, "apply"),
        content=b"x",
        headers={**account.headers, "content-type": "text/plain"},
    )
    assert text.status_code == 415


async def test_batch_needs_write_access(
    client: httpx.AsyncClient, account: Account, bob: Account
) -> None:
    response = await client.post(url(account, "apply"), json=[ghost("g")], headers=bob.headers)
    assert response.status_code == 403


@pytest.mark.parametrize("verb", ["apply", "delete"])
async def test_items_that_are_not_manifests_make_the_body_invalid(
    client: httpx.AsyncClient, account: Account, verb: str
) -> None:
    """Each item must be an object: anything else is a 422 naming it, and nothing is done."""
    body = [ghost("g1"), [None, None], "x", None, 1.5]
    response = await client.post(url(account, verb), json=body, headers=account.headers)
    assert response.status_code == 422
    causes = [
        {"reason": "FieldValueInvalid", "message": f"Expected `object`, got `{got}`", "field": at}
        for at, got in (("[1]", "array"), ("[2]", "str"), ("[3]", "null"), ("[4]", "float"))
    ]
    message = "every manifest must be an object: " + ", ".join(
        f"{c['field']}: {c['message']}" for c in causes
    )
    assert response.json() == status_body(422, "Invalid", message, details={"causes": causes})
    api = Api(client, account, account.username, "B")
    assert (await api.get("ghosts", "g1")).status_code == 404
    yaml_scalar = await client.post(
        url(account, verb), content=b"kind: Ghost\n---\n42\n", headers={**account.headers, **YAML}
    )
    assert yaml_scalar.status_code == 422
    assert yaml_scalar.json()["details"]["causes"] == [
        {"reason": "FieldValueInvalid", "message": "Expected `object`, got `int`", "field": "[1]"}
    ]


async def test_one_manifest_object_is_a_batch_of_one(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.post(url(account, "apply"), json=ghost("one"), headers=account.headers)
    assert response.json() == {
        "success": True,
        "message": "Applied 1/1 resources",
        "results": [result("Ghost", "one", account.username, "created")],
    }
    response = await client.post(url(account, "apply"), json={}, headers=account.headers)
    assert response.status_code == 200
    assert response.json()["results"] == [
        result(None, None, account.username, "failed", "kind is required")  # type: ignore[arg-type]
    ]
