"""The rules of the Kubernetes family (API.md §14) that families A and B do not have: delete
options and preconditions, generateName, the Task status subresource, field selectors, the
resourceVersion parameters, cluster-wide lists and the Table representation."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.helpers import Account, register, status_body
from tests.resources.api import Api, bot, ghost, manifest, shell, team

pytestmark = pytest.mark.usefixtures("client", "door")

GROUP = "/apis/agent.wecode.io/v1"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
JSON_PATCH = {"content-type": "application/json-patch+json"}


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> Account:
    return await register(client)


@pytest.fixture
def api(client: httpx.AsyncClient, owner: Account) -> Api:
    return Api(client, owner, owner.username, "C")


def task(name: str, team_name: str = "t") -> dict[str, Any]:
    return manifest("Task", name, {"title": "t", "teamRef": {"name": team_name}, "prompt": "do it"})


async def ready_task(api: Api, name: str) -> dict[str, Any]:
    await api.must_create("ghosts", ghost("g"))
    await api.must_create("bots", bot("b", "g"))
    await api.must_create("teams", team("t", "b"))
    return await api.must_create("tasks", task(name))


# -- generateName ------------------------------------------------------------------------------


async def test_generate_name_makes_a_fresh_name_each_time(api: Api) -> None:
    body = {**ghost("x"), "metadata": {"generateName": "helper-"}}
    names = set()
    for _ in range(3):
        created = await api.create("ghosts", body)
        assert created.status_code == 201, created.text
        name = created.json()["metadata"]["name"]
        assert re.fullmatch(r"helper-[bcdfghjklmnpqrstvwxz2456789]{5}", name), name
        names.add(name)
    assert len(names) == 3
    listed = await api.list("ghosts")
    assert sorted(i["metadata"]["name"] for i in listed.json()["items"]) == sorted(names)


async def test_a_name_wins_over_generate_name(api: Api) -> None:
    body = {**ghost("x"), "metadata": {"name": "given", "generateName": "helper-"}}
    created = await api.create("ghosts", body)
    assert created.status_code == 201
    assert created.json()["metadata"]["name"] == "given"


async def test_neither_name_nor_generate_name_is_422(api: Api) -> None:
    created = await api.create("ghosts", {**ghost("x"), "metadata": {}})
    assert created.status_code == 422
    assert created.json()["details"]["causes"] == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value: name or generateName is required",
            "field": "metadata.name",
        }
    ]


async def test_a_generate_name_that_cannot_make_a_name_is_422(api: Api) -> None:
    created = await api.create("ghosts", {**ghost("x"), "metadata": {"generateName": "-bad"}})
    assert created.status_code == 422
    assert created.json()["details"]["causes"][0]["field"] == "metadata.generateName"


# -- delete ----------------------------------------------------------------------------------


async def test_delete_answers_the_deleted_object(api: Api) -> None:
    made = await api.must_create("ghosts", ghost("d"))
    deleted = await api.delete("ghosts", "d")
    assert deleted.status_code == 200
    body = deleted.json()
    assert body["metadata"]["uid"] == made["metadata"]["uid"]
    assert body["metadata"]["deletionTimestamp"] is not None
    assert body["spec"] == made["spec"]
    assert (await api.get("ghosts", "d")).status_code == 404


async def delete_with(api: Api, name: str, options: Any) -> httpx.Response:
    return await api.request("DELETE", "ghosts", name, json=options)


async def test_delete_options_dry_run_deletes_nothing(api: Api) -> None:
    await api.must_create("ghosts", ghost("d"))
    dry = await delete_with(api, "d", {"kind": "DeleteOptions", "dryRun": ["All"]})
    assert dry.status_code == 200
    assert dry.json()["metadata"]["deletionTimestamp"] is not None
    assert (await api.get("ghosts", "d")).status_code == 200


async def test_delete_preconditions(api: Api) -> None:
    made = await api.must_create("ghosts", ghost("d"))
    uid, version = made["metadata"]["uid"], made["metadata"]["resourceVersion"]
    other = "00000000-0000-0000-0000-000000000000"
    wrong_uid = await delete_with(api, "d", {"preconditions": {"uid": other}})
    message = f"Precondition failed: UID in precondition: {other}, UID in object meta: {uid}"
    assert wrong_uid.status_code == 409
    details = {"kind": "Ghost", "name": "d"}
    assert wrong_uid.json() == status_body(409, "Conflict", message, details=details)
    stale = await delete_with(api, "d", {"preconditions": {"resourceVersion": "1"}})
    assert stale.status_code == 409
    assert stale.json()["reason"] == "Conflict"
    assert (await api.get("ghosts", "d")).status_code == 200
    matching = {"uid": uid, "resourceVersion": version}
    deleted = await delete_with(api, "d", {"preconditions": matching})
    assert deleted.status_code == 200, deleted.text


@pytest.mark.parametrize("policy", ["Orphan", "Background", "Foreground"])
async def test_every_propagation_policy_is_the_soft_delete(api: Api, policy: str) -> None:
    await api.must_create("ghosts", ghost("d"))
    deleted = await delete_with(api, "d", {"propagationPolicy": policy, "gracePeriodSeconds": 0})
    assert deleted.status_code == 200
    trash = await api.product.list("ghosts", params={"deleted": "true"})
    assert [i["metadata"]["name"] for i in trash.json()["items"]] == ["d"]


async def test_bad_delete_options_are_refused_and_delete_nothing(api: Api) -> None:
    await api.must_create("ghosts", ghost("d"))
    not_json = await api.request(
        "DELETE", "ghosts", "d", content=b"{", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400
    text = await api.request(
        "DELETE", "ghosts", "d", content=b"{}", headers={"content-type": "text/plain"}
    )
    assert text.status_code == 415
    policy = await delete_with(api, "d", {"propagationPolicy": "Sometimes"})
    assert policy.status_code == 400
    assert (await api.get("ghosts", "d")).status_code == 200


async def test_a_referenced_object_is_not_deleted(api: Api) -> None:
    await api.must_create("ghosts", ghost("g"))
    await api.must_create("bots", bot("b", "g"))
    refused = await api.delete("ghosts", "g")
    assert refused.status_code == 409
    assert refused.json()["reason"] == "Conflict"


# -- the Task status subresource ----------------------------------------------------------------


async def test_status_get_answers_the_whole_task(api: Api) -> None:
    made = await ready_task(api, "s")
    got = await api.request("GET", "tasks", "s", suffix="/status")
    assert got.status_code == 200
    assert got.json() == made


async def test_status_put_takes_only_the_status(api: Api) -> None:
    made = await ready_task(api, "s")
    sent = {**made, "spec": {"teamRef": {"name": "t"}, "prompt": "ignored"}}
    sent["status"] = {**made["status"], "phase": "RUNNING", "progress": 10}
    moved = await api.request("PUT", "tasks", "s", suffix="/status", json=sent)
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"]["phase"] == "RUNNING"
    assert moved.json()["status"]["progress"] == 10
    assert moved.json()["spec"] == made["spec"]
    # Its resourceVersion is a precondition: the one sent is now stale.
    stale = await api.request("PUT", "tasks", "s", suffix="/status", json=sent)
    assert stale.status_code == 409
    assert stale.json()["reason"] == "Conflict"


async def test_status_put_must_name_the_task_of_the_url(api: Api) -> None:
    made = await ready_task(api, "s")
    other = {**made, "metadata": {**made["metadata"], "name": "other"}}
    refused = await api.request("PUT", "tasks", "s", suffix="/status", json=other)
    message = 'metadata.name "other" does not match the name in the URL ("s")'
    assert refused.json() == status_body(400, "BadRequest", message)
    wrong_kind = await api.request(
        "PUT", "tasks", "s", suffix="/status", json={**made, "kind": "Bot"}
    )
    assert wrong_kind.status_code == 422
    assert wrong_kind.json()["details"]["causes"][0]["field"] == "kind"


async def test_status_patch_is_a_move(api: Api) -> None:
    await ready_task(api, "s")
    merge = {"content-type": "application/merge-patch+json"}
    patch = b'{"status": {"phase": "RUNNING", "progress": 40}}'
    moved = await api.request("PATCH", "tasks", "s", suffix="/status", content=patch, headers=merge)
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"]["progress"] == 40
    empty = await api.request("PATCH", "tasks", "s", suffix="/status", content=b"{}", headers=merge)
    assert empty.status_code == 200, empty.text
    json_patch = {"content-type": "application/json-patch+json"}
    ops = b'[{"op": "replace", "path": "/status/phase", "value": "COMPLETED"}]'
    done = await api.request(
        "PATCH", "tasks", "s", suffix="/status", content=ops, headers=json_patch
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"]["phase"] == "COMPLETED"
    back = b'[{"op": "replace", "path": "/status/phase", "value": "RUNNING"}]'
    refused = await api.request(
        "PATCH", "tasks", "s", suffix="/status", content=back, headers=json_patch
    )
    assert refused.status_code == 409


async def test_the_status_subresource_is_only_for_tasks(api: Api) -> None:
    await api.must_create("ghosts", ghost("g"))
    assert (await api.request("GET", "ghosts", "g", suffix="/status")).status_code == 404


# -- patch media types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "media_type",
    ["application/strategic-merge-patch+json", "application/apply-patch+yaml"],
)
async def test_patches_kubernetes_does_not_take_for_custom_resources_are_415(
    api: Api, media_type: str
) -> None:
    await api.must_create("ghosts", ghost("g"))
    refused = await api.request(
        "PATCH", "ghosts", "g", content=b"{}", headers={"content-type": media_type}
    )
    assert refused.status_code == 415
    assert refused.json()["reason"] == "UnsupportedMediaType"


async def test_a_failed_json_patch_test_is_422(api: Api) -> None:
    await api.must_create("ghosts", ghost("g"))
    ops = b'[{"op": "test", "path": "/spec/systemPrompt", "value": "other"}]'
    refused = await api.request(
        "PATCH", "ghosts", "g", content=ops, headers={"content-type": "application/json-patch+json"}
    )
    assert refused.status_code == 422


@pytest.mark.parametrize(
    ("ops", "problem"),
    [
        ('[{"op": "jump", "path": "/spec"}]', "Unknown operation 'jump'"),
        ('[{"op": "add", "value": 1}]', "Operation must have a 'path' member"),
        ('[{"op": "add", "path": "/spec/x"}]', "The operation does not contain a 'value' member"),
        ('[{"op": "add", "path": "/spec/a~2", "value": 1}]', "Found invalid escape ~2"),
    ],
)
async def test_a_malformed_json_patch_is_400(api: Api, ops: str, problem: str) -> None:
    await api.must_create("ghosts", ghost("g"))
    refused = await api.request("PATCH", "ghosts", "g", content=ops.encode(), headers=JSON_PATCH)
    assert (refused.status_code, refused.json()) == (
        400,
        status_body(400, "BadRequest", f"invalid JSON patch: {problem}"),
    )


async def test_a_json_patch_that_makes_no_object_is_422(api: Api) -> None:
    created = await api.must_create("ghosts", ghost("g"))
    whole = b'[{"op": "replace", "path": "", "value": [1]}]'
    refused = await api.request("PATCH", "ghosts", "g", content=whole, headers=JSON_PATCH)
    message = "the body must be a JSON object"
    assert (refused.status_code, refused.json()) == (
        422,
        status_body(
            422,
            "Invalid",
            message,
            details={
                "kind": "Ghost",
                "causes": [{"reason": "FieldValueInvalid", "message": message, "field": ""}],
            },
        ),
    )
    metadata = b'[{"op": "replace", "path": "/metadata", "value": 5}]'
    refused = await api.request("PATCH", "ghosts", "g", content=metadata, headers=JSON_PATCH)
    problem = "Expected `object`, got `int`"
    assert (refused.status_code, refused.json()) == (
        422,
        status_body(
            422,
            "Invalid",
            f"the object is invalid: metadata: {problem}",
            details={
                "kind": "Ghost",
                "causes": [
                    {"reason": "FieldValueInvalid", "message": problem, "field": "metadata"}
                ],
            },
        ),
    )
    assert (await api.get("ghosts", "g")).json() == created  # nothing was written


# -- lists -------------------------------------------------------------------------------------


async def names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [i["metadata"]["name"] for i in response.json()["items"]]


async def test_field_selectors(api: Api) -> None:
    for name in ("a", "b", "c"):
        await api.must_create("ghosts", ghost(name))

    async def selected(selector: str) -> list[str]:
        return await names(await api.list("ghosts", params={"fieldSelector": selector}))

    assert await selected("metadata.name=b") == ["b"]
    assert await selected("metadata.name==b") == ["b"]
    assert await selected("metadata.name!=b") == ["a", "c"]
    assert await selected(f"metadata.namespace={api.namespace}") == ["a", "b", "c"]
    assert await selected(f"metadata.namespace={api.namespace},metadata.name!=a") == ["b", "c"]
    assert await selected("metadata.namespace=elsewhere") == []
    unknown = await api.list("ghosts", params={"fieldSelector": "spec.systemPrompt=x"})
    assert unknown.status_code == 400
    assert "spec.systemPrompt" in unknown.json()["message"]


async def test_resource_version_parameters(api: Api) -> None:
    made = await api.must_create("ghosts", ghost("a"))
    version = made["metadata"]["resourceVersion"]
    for params in (
        {"resourceVersion": "0"},
        {"resourceVersion": version},
        {"resourceVersion": version, "resourceVersionMatch": "NotOlderThan"},
        {"timeoutSeconds": "5"},
    ):
        assert await names(await api.list("ghosts", params=params)) == ["a"], params
    # History the service does not keep: as after a compaction.
    exact = await api.list(
        "ghosts", params={"resourceVersion": "1", "resourceVersionMatch": "Exact"}
    )
    assert exact.status_code == 410
    assert exact.json()["reason"] == "Expired"
    # A match without a version, or an unknown match, is a bad request.
    for params in (
        {"resourceVersionMatch": "Exact"},
        {"resourceVersion": "x"},
        {"resourceVersion": version, "resourceVersionMatch": "Newest"},
    ):
        assert (await api.list("ghosts", params=params)).status_code == 400, params
    for params, message in (
        (
            {"resourceVersion": version, "continue": "x"},
            "specifying resource version is not allowed when using continue",
        ),
        (
            {"resourceVersion": "0", "resourceVersionMatch": "Exact"},
            'resourceVersionMatch "Exact" is forbidden for resourceVersion "0"',
        ),
    ):
        refused = await api.list("ghosts", params=params)
        assert (refused.status_code, refused.json()) == (
            400,
            status_body(400, "BadRequest", message),
        )
    got = await api.get("ghosts", "a", params={"resourceVersion": "0"})
    assert got.status_code == 200


async def test_lists_across_every_readable_namespace(
    client: httpx.AsyncClient, api: Api, owner: Account
) -> None:
    await api.must_create("ghosts", ghost("mine"))
    stranger = await register(client)
    await Api(client, stranger, stranger.username, "C").must_create("ghosts", ghost("theirs"))
    listed = await client.get(f"{GROUP}/ghosts", headers=owner.headers)
    assert listed.status_code == 200
    assert [
        (i["metadata"]["namespace"], i["metadata"]["name"]) for i in listed.json()["items"]
    ] == [(owner.username, "mine")]
    assert (await client.get(f"{GROUP}/ghosts")).status_code == 401


# -- Table -------------------------------------------------------------------------------------


async def test_a_table_of_bots_shows_their_references(api: Api) -> None:
    await api.must_create("ghosts", ghost("g"))
    await api.must_create("shells", shell("sh"))
    made = await api.must_create("bots", bot("b", "g", "sh"))
    table = await api.list("bots", headers={"accept": TABLE})
    assert table.status_code == 200
    assert table.headers["content-type"].startswith("application/json")
    body = table.json()
    assert (body["kind"], body["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    columns = [c["name"] for c in body["columnDefinitions"]]
    assert columns[0] == "Name" and columns[-1] == "Age"
    assert {"Ghost", "Shell", "Model"} <= set(columns)
    [row] = body["rows"]
    cells = dict(zip(columns, row["cells"], strict=True))
    assert (cells["Name"], cells["Ghost"], cells["Shell"]) == ("b", "g", "sh")
    assert re.fullmatch(r"\d+s", cells["Age"])
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["uid"] == made["metadata"]["uid"]
    one = await api.get("bots", "b", headers={"accept": TABLE}, params={"includeObject": "Object"})
    assert one.status_code == 200
    assert one.json()["rows"][0]["object"] == made


async def test_a_table_of_tasks_shows_phase_and_progress(api: Api) -> None:
    await ready_task(api, "s")
    table = (await api.list("tasks", headers={"accept": TABLE})).json()
    columns = [c["name"] for c in table["columnDefinitions"]]
    cells = dict(zip(columns, table["rows"][0]["cells"], strict=True))
    assert cells["Phase"] == "PENDING"
    assert cells["Team"] == "t"


async def test_plain_json_first_in_accept_means_the_object(api: Api) -> None:
    await api.must_create("ghosts", ghost("g"))
    got = await api.get("ghosts", "g", headers={"accept": f"application/json, {TABLE}"})
    assert got.json()["kind"] == "Ghost"
