"""Reference resolution and delete protection (API.md §4, §6)."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import Account, register, status_body, unique
from tests.resources.api import Api, bot, ghost, manifest, model, shell, skill, team

pytestmark = pytest.mark.usefixtures("door")  # through both doors of the resource API


@pytest.fixture(params=["A", "B", "C"])
async def api(client: httpx.AsyncClient, request: pytest.FixtureRequest) -> Api:
    account = await register(client)
    return Api(client, account, account.username, str(request.param))


async def test_bot_resolves_its_refs_and_stores_the_namespaces(api: Api) -> None:
    await api.must_create("ghosts", ghost("g"))
    await api.must_create("models", model("m"))
    created = await api.must_create(
        "bots", bot("b", "g", "ClaudeCode", modelRef={"name": "m", "namespace": "default"})
    )
    assert created["spec"] == {
        "ghostRef": {"name": "g", "namespace": api.namespace},
        "shellRef": {"name": "ClaudeCode", "namespace": "public"},
        "modelRef": {"name": "m", "namespace": api.namespace},
    }
    assert (await api.get("bots", "b")).json()["spec"] == created["spec"]


async def test_own_shell_wins_over_public(api: Api) -> None:
    await api.must_create("ghosts", ghost("g"))
    await api.must_create("shells", shell("ClaudeCode", "Chat"))
    created = await api.must_create("bots", bot("b", "g", "ClaudeCode"))
    assert created["spec"]["shellRef"] == {"name": "ClaudeCode", "namespace": api.namespace}


async def test_missing_target_is_422_naming_field_and_target(api: Api) -> None:
    response = await api.create("bots", bot("b1", "g9"))
    assert response.status_code == 422
    message = f'Ghost "g9" not found in namespace "{api.namespace}" or "public"'
    assert response.json() == status_body(
        422,
        "Invalid",
        f'Bot "b1" is invalid: spec.ghostRef: {message}',
        details={
            "name": "b1",
            "kind": "Bot",
            "causes": [
                {"reason": "FieldValueNotFound", "message": message, "field": "spec.ghostRef"}
            ],
        },
    )


async def test_every_missing_reference_is_listed(api: Api) -> None:
    response = await api.create(
        "bots",
        bot("b2", "nog", "NoShell", modelRef={"name": "nom"}, secondaryModelRef={"name": "nom2"}),
    )
    assert response.status_code == 422
    assert [c["field"] for c in response.json()["details"]["causes"]] == [
        "spec.ghostRef",
        "spec.shellRef",
        "spec.modelRef",
        "spec.secondaryModelRef",
    ]


async def test_explicit_namespace_is_not_widened_to_public(api: Api) -> None:
    await api.must_create("ghosts", ghost("g"))
    spec = {
        "ghostRef": {"name": "g"},
        "shellRef": {"name": "ClaudeCode", "namespace": api.namespace},
    }
    response = await api.create("bots", manifest("Bot", "b3", spec))
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["message"] == (
        f'Shell "ClaudeCode" not found in namespace "{api.namespace}"'
    )


async def test_targets_in_unreadable_namespaces_are_not_found(
    client: httpx.AsyncClient, api: Api, bob: Account
) -> None:
    await Api(client, bob, bob.username, "B").must_create("ghosts", ghost("bobs"))
    response = await api.create(
        "bots",
        manifest(
            "Bot",
            "b4",
            {"ghostRef": {"name": "bobs", "namespace": bob.username}, "shellRef": {"name": "Chat"}},
        ),
    )
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["message"] == (
        f'Ghost "bobs" not found in namespace "{bob.username}"'
    )


async def test_references_only_into_unreadable_namespaces_are_all_not_found(
    client: httpx.AsyncClient, api: Api, bob: Account
) -> None:
    await Api(client, bob, bob.username, "B").must_create("ghosts", ghost("bobs"))
    await Api(client, bob, bob.username, "B").must_create("bots", bot("b", "bobs"))
    members = [{"botRef": {"name": "b", "namespace": bob.username}}]
    response = await api.create(
        "teams", manifest("Team", "t", {"members": members, "collaborationModel": "solo"})
    )
    message = f'Bot "b" not found in namespace "{bob.username}"'
    assert (response.status_code, response.json()) == (
        422,
        status_body(
            422,
            "Invalid",
            f'Team "t" is invalid: spec.members[0].botRef: {message}',
            details={
                "name": "t",
                "kind": "Team",
                "causes": [
                    {
                        "reason": "FieldValueNotFound",
                        "message": message,
                        "field": "spec.members[0].botRef",
                    }
                ],
            },
        ),
    )


async def test_shared_namespace_targets_resolve_for_members(
    client: httpx.AsyncClient, api: Api, bob: Account
) -> None:
    shared = unique("team")
    await client.post("/api/v1/namespaces", json={"name": shared}, headers=bob.headers)
    await client.put(
        f"/api/v1/namespaces/{shared}/members/{api.account.username}",
        json={"role": "view"},
        headers=bob.headers,
    )
    await Api(client, bob, shared, "B").must_create("ghosts", ghost("common"))
    created = await api.must_create(
        "bots",
        manifest(
            "Bot",
            "b5",
            {"ghostRef": {"name": "common", "namespace": shared}, "shellRef": {"name": "Chat"}},
        ),
    )
    assert created["spec"]["ghostRef"] == {"name": "common", "namespace": shared}


async def test_team_checks_every_member(api: Api) -> None:
    await api.must_create("ghosts", ghost("g"))
    await api.must_create("bots", bot("b", "g"))
    response = await api.create("teams", team("t", "b", "missing1", "missing2"))
    assert response.status_code == 422
    assert [c["field"] for c in response.json()["details"]["causes"]] == [
        "spec.members[1].botRef",
        "spec.members[2].botRef",
    ]
    created = await api.must_create("teams", team("t", "b"))
    assert created["spec"]["members"] == [
        {
            "botRef": {"name": "b", "namespace": api.namespace},
            "requireConfirmation": False,
            "contextPassing": "none",
        }
    ]


async def test_team_allows_one_leader(api: Api) -> None:
    await api.must_create("ghosts", ghost("g"))
    await api.must_create("bots", bot("b", "g"))
    body = team("t2", "b", "b")
    for member in body["spec"]["members"]:
        member["role"] = "leader"
    response = await api.create("teams", body)
    assert response.status_code == 422
    assert [c["field"] for c in response.json()["details"]["causes"]] == ["spec.members[1].role"]


async def test_ghost_skills_must_exist(api: Api) -> None:
    await api.must_create("skills", skill("search"))
    response = await api.create("ghosts", ghost("g", skills=["search", "nope"]))
    assert response.status_code == 422
    assert [c["field"] for c in response.json()["details"]["causes"]] == ["spec.skills[1]"]
    created = await api.must_create(
        "ghosts", ghost("g", skills=["search"], preloadSkills=["search"])
    )
    assert created["spec"]["skills"] == ["search"]


async def test_referenced_objects_cannot_be_deleted(api: Api) -> None:
    await api.must_create("ghosts", ghost("g"))
    await api.must_create("bots", bot("b", "g"))
    await api.must_create("teams", team("t", "b"))
    response = await api.delete("ghosts", "g")
    assert response.status_code == 409
    assert response.json() == status_body(
        409,
        "Conflict",
        'Ghost "g" is referenced by 1 live object(s); delete them first or use ?force=true',
        details={
            "name": "g",
            "kind": "Ghost",
            "causes": [
                {
                    "reason": "FieldValueReferenced",
                    "message": f'referenced by Bot "b" in namespace "{api.namespace}"',
                    "field": "metadata.name",
                }
            ],
        },
    )
    assert (await api.delete("bots", "b")).status_code == 409
    assert (await api.delete("teams", "t")).status_code == api.deleted
    assert (await api.delete("bots", "b")).status_code == api.deleted
    assert (await api.delete("ghosts", "g")).status_code == api.deleted


async def test_force_deletes_anyway_and_restore_needs_live_targets(api: Api) -> None:
    await api.must_create("ghosts", ghost("g"))
    await api.must_create("bots", bot("b", "g"))
    assert (await api.delete("ghosts", "g", params={"force": "true"})).status_code == api.deleted
    assert (await api.delete("bots", "b")).status_code == api.deleted
    response = await api.product.restore("bots", "b")
    assert response.status_code == 422
    assert response.json()["details"]["causes"] == [
        {
            "reason": "FieldValueNotFound",
            "message": f"Ghost/{api.namespace}/g is not live",
            "field": "spec",
        }
    ]
    assert (await api.product.restore("ghosts", "g")).status_code == 200
    assert (await api.product.restore("bots", "b")).status_code == 200


async def test_replace_rechecks_references(api: Api) -> None:
    await api.must_create("ghosts", ghost("g"))
    await api.must_create("bots", bot("b", "g"))
    response = await api.replace("bots", "b", bot("b", "gone"))
    assert response.status_code == 422
    assert (await api.get("bots", "b")).json()["spec"]["ghostRef"]["name"] == "g"
