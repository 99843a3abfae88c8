"""The resource API end to end: every verb, through both path families (API.md §5, §6)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar

from tests.helpers import Account, register, status_body, unique
from tests.resources.api import Api, assert_envelope, ghost, manifest, model, shell

pytestmark = pytest.mark.usefixtures("client", "door")


@pytest.fixture(params=["A", "B", "C"])
def family(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def api(client: httpx.AsyncClient, family: str) -> Api:
    account = await register(client)
    return Api(client, account, account.username, family)


async def test_create_answers_the_whole_object(api: Api) -> None:
    response = await api.create(
        "ghosts", ghost("dev", labels={"team": "core"}, annotations={"example.com/note": "free"})
    )
    assert response.status_code == 201
    assert_envelope(
        response.json(),
        kind="Ghost",
        name="dev",
        namespace=api.namespace,
        spec={"systemPrompt": "You are helpful."},
        user=api.account.username,
        labels={"team": "core"},
        annotations={"example.com/note": "free"},
    )
    got = await api.get("ghosts", "dev")
    assert (got.status_code, got.json()) == (200, response.json())


async def test_default_namespace_is_resolved_and_never_shown(
    client: httpx.AsyncClient, alice: Account, family: str
) -> None:
    api = Api(client, alice, "default", family)
    created = await api.must_create("ghosts", ghost("g1", namespace="default"))
    assert created["metadata"]["namespace"] == alice.username
    real = Api(client, alice, alice.username, family)
    assert (await real.get("ghosts", "g1")).json() == created


async def test_create_the_same_name_twice_is_409(api: Api) -> None:
    await api.must_create("ghosts", ghost("dup"))
    response = await api.create("ghosts", ghost("dup"))
    assert response.status_code == 409
    assert response.json() == status_body(
        409,
        "AlreadyExists",
        f'Ghost "dup" already exists in namespace "{api.namespace}"',
        details={"name": "dup", "kind": "Ghost"},
    )


async def test_same_name_in_other_kinds_is_fine(api: Api) -> None:
    await api.must_create("ghosts", ghost("same"))
    await api.must_create("models", model("same"))
    await api.must_create("shells", shell("same"))


async def test_concurrent_creates_of_one_name_give_one_201(api: Api) -> None:
    answers = await asyncio.gather(*(api.create("ghosts", ghost("race")) for _ in range(8)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * 7


async def test_create_without_a_name_is_422(api: Api) -> None:
    response = await api.create(
        "ghosts", {"kind": "Ghost", "metadata": {}, "spec": {"systemPrompt": "p"}}
    )
    assert response.status_code == 422
    assert response.json() == status_body(
        422,
        "Invalid",
        "the object is invalid: metadata.name: Required value: name or generateName is required",
        details={
            "kind": "Ghost",
            "causes": [
                {
                    "reason": "FieldValueRequired",
                    "message": "Required value: name or generateName is required",
                    "field": "metadata.name",
                }
            ],
        },
    )


async def test_kind_must_match_the_url(api: Api) -> None:
    response = await api.create("ghosts", model("m1"))
    assert response.status_code == 422 or response.status_code == 400
    wrong = await api.create("ghosts", {**ghost("g2"), "kind": "Model"})
    assert wrong.status_code == 400
    assert wrong.json() == status_body(
        400, "BadRequest", 'kind "Model" does not match the kind of this URL ("Ghost")'
    )


async def test_api_version_must_be_ours(api: Api) -> None:
    response = await api.create("ghosts", {**ghost("g3"), "apiVersion": "v1"})
    assert response.status_code == 422
    assert [c["field"] for c in response.json()["details"]["causes"]] == ["apiVersion"]
    omitted = {
        key: value for key, value in ghost("g4").items() if key not in ("apiVersion", "kind")
    }
    assert (await api.create("ghosts", omitted)).status_code == 201


async def test_namespace_in_body_must_agree(api: Api) -> None:
    response = await api.create("ghosts", ghost("g5", namespace="someone-else"))
    assert response.status_code == 400
    assert response.json()["message"] == (
        f'metadata.namespace "someone-else" does not match the namespace of this request '
        f'("{api.namespace}")'
    )
    assert (await api.create("ghosts", ghost("g6", namespace=api.namespace))).status_code == 201


async def test_resource_version_on_create_is_422(api: Api) -> None:
    response = await api.create("ghosts", ghost("g7", resourceVersion="12"))
    assert response.status_code == 422
    assert response.json()["details"]["causes"] == [
        {
            "reason": "FieldValueForbidden",
            "message": "Forbidden: may not be set on create",
            "field": "metadata.resourceVersion",
        }
    ]


async def test_server_owned_fields_cannot_be_assigned(api: Api) -> None:
    body = ghost("owned")
    body["metadata"].update(
        uid="00000000-0000-0000-0000-000000000000",
        generation=99,
        createdBy="mallory",
        updatedBy="mallory",
        creationTimestamp="2000-01-01T00:00:00Z",
    )
    body["status"] = {"state": "Hacked", "message": "owned"}
    created = await api.create("ghosts", body)
    assert created.status_code == 201
    assert_envelope(
        created.json(),
        kind="Ghost",
        name="owned",
        namespace=api.namespace,
        spec={"systemPrompt": "You are helpful."},
        user=api.account.username,
    )
    assert created.json()["metadata"]["uid"] != "00000000-0000-0000-0000-000000000000"


async def test_get_what_is_not_there_is_404(api: Api) -> None:
    response = await api.get("ghosts", "nothing")
    assert response.status_code == 404
    assert response.json() == status_body(
        404,
        "NotFound",
        f'Ghost "nothing" not found in namespace "{api.namespace}"',
        details={"name": "nothing", "kind": "Ghost"},
    )


async def test_unknown_plural_is_404(api: Api) -> None:
    response = await api.list("spaceships")
    assert response.status_code == 404
    assert response.json()["reason"] == "NotFound"


async def test_list_is_ordered_by_name(api: Api, app: Litestar) -> None:
    for name in ("b", "a", "C", "c"):
        await api.must_create("ghosts", ghost(name))
    # A list's version is the watch's watermark (§15): once settled, the latest write's.
    await app.state.services.watch.settle()
    response = await api.list("ghosts")
    assert response.status_code == 200
    body = response.json()
    assert (body["apiVersion"], body["kind"]) == ("agent.wecode.io/v1", "GhostList")
    assert [i["metadata"]["name"] for i in body["items"]] == ["C", "a", "b", "c"]
    assert body["metadata"] == {
        "resourceVersion": str(max(int(i["metadata"]["resourceVersion"]) for i in body["items"]))
    }


async def test_replace_changes_spec_and_generation(api: Api) -> None:
    created = await api.must_create("ghosts", ghost("r1"))
    changed = ghost("r1", prompt="Be terse.")
    response = await api.replace("ghosts", "r1", changed)
    assert response.status_code == 200
    body = response.json()
    assert_envelope(
        body,
        kind="Ghost",
        name="r1",
        namespace=api.namespace,
        spec={"systemPrompt": "Be terse."},
        user=api.account.username,
        generation=2,
    )
    assert int(body["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert body["metadata"]["uid"] == created["metadata"]["uid"]


async def test_label_changes_do_not_bump_generation(api: Api) -> None:
    await api.must_create("ghosts", ghost("r2"))
    response = await api.replace("ghosts", "r2", ghost("r2", labels={"tier": "gold"}))
    assert response.json()["metadata"]["generation"] == 1
    assert response.json()["metadata"]["labels"] == {"tier": "gold"}


async def test_get_then_put_unchanged_is_a_no_op(api: Api) -> None:
    created = await api.must_create("ghosts", ghost("rt", labels={"a": "b"}))
    response = await api.replace("ghosts", "rt", created)
    assert response.status_code == 200
    assert response.json() == created


async def test_stale_resource_version_is_409_and_changes_nothing(api: Api) -> None:
    created = await api.must_create("ghosts", ghost("cas"))
    first = ghost("cas", prompt="one", resourceVersion=created["metadata"]["resourceVersion"])
    assert (await api.replace("ghosts", "cas", first)).status_code == 200
    stale = ghost("cas", prompt="two", resourceVersion=created["metadata"]["resourceVersion"])
    response = await api.replace("ghosts", "cas", stale)
    assert response.status_code == 409
    assert response.json() == status_body(
        409,
        "Conflict",
        'Operation cannot be fulfilled on ghosts "cas": the object has been modified; please '
        "apply your changes to the latest version and try again",
        details={"name": "cas", "kind": "Ghost"},
    )
    assert (await api.get("ghosts", "cas")).json()["spec"] == {"systemPrompt": "one"}


async def test_put_never_creates(api: Api) -> None:
    response = await api.replace("ghosts", "ghostly", ghost("ghostly"))
    assert response.status_code == 404


async def test_put_name_must_match_the_path(api: Api) -> None:
    await api.must_create("ghosts", ghost("n1"))
    response = await api.replace("ghosts", "n1", ghost("n2"))
    assert response.status_code == 400
    assert (
        response.json()["message"] == 'metadata.name "n2" does not match the name in the URL ("n1")'
    )


async def test_merge_patch(api: Api) -> None:
    await api.must_create("ghosts", ghost("p1", labels={"keep": "1", "drop": "2"}, skills=[]))
    response = await api.patch(
        "ghosts",
        "p1",
        {"metadata": {"labels": {"drop": None, "new": "3"}}, "spec": {"systemPrompt": "patched"}},
        headers={"content-type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["metadata"]["labels"] == {"keep": "1", "new": "3"}
    assert body["spec"] == {"systemPrompt": "patched", "skills": []}
    assert body["metadata"]["generation"] == 2


async def test_merge_patch_validates_the_result(api: Api) -> None:
    await api.must_create("ghosts", ghost("p2"))
    response = await api.patch("ghosts", "p2", {"spec": {"systemPrompt": None}})
    assert response.status_code == 422
    assert [c["field"] for c in response.json()["details"]["causes"]] == ["spec.systemPrompt"]


async def test_patch_content_types(api: Api) -> None:
    """Merge patch and JSON patch are taken; a strategic merge patch is 415, as for any custom
    resource in Kubernetes, and so is server-side apply."""
    await api.must_create("ghosts", ghost("p3"))

    async def patch(content_type: str, body: bytes) -> httpx.Response:
        return await api.request(
            "PATCH", "ghosts", "p3", content=body, headers={"content-type": content_type}
        )

    strategic = await patch("application/strategic-merge-patch+json", b"{}")
    assert (strategic.status_code, strategic.json()) == (
        415,
        status_body(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, application/json",
        ),
    )
    applied = await patch("application/apply-patch+yaml", b"{}")
    assert applied.status_code == 415
    assert "use client-side apply" in applied.json()["message"]
    not_a_patch = await patch("application/json-patch+json", b"{}")
    assert (not_a_patch.status_code, not_a_patch.json()["message"]) == (
        400,
        "a JSON patch (RFC 6902) is an array of operation objects",
    )
    ops = b'[{"op": "replace", "path": "/spec/systemPrompt", "value": "json patched"}]'
    replaced = await patch("application/json-patch+json", ops)
    assert replaced.status_code == 200
    assert replaced.json()["spec"]["systemPrompt"] == "json patched"
    failed = await patch(
        "application/json-patch+json",
        b'[{"op": "test", "path": "/spec/systemPrompt", "value": "x"}]',
    )
    assert (failed.status_code, failed.json()["reason"]) == (422, "Invalid")
    missing = await patch(
        "application/json-patch+json", b'[{"op": "remove", "path": "/spec/nothing"}]'
    )
    assert (missing.status_code, missing.json()["reason"]) == (422, "Invalid")


async def test_merge_patch_with_stale_version_is_409(api: Api) -> None:
    created = await api.must_create("ghosts", ghost("p4"))
    await api.patch("ghosts", "p4", {"spec": {"systemPrompt": "x"}})
    response = await api.patch(
        "ghosts",
        "p4",
        {
            "metadata": {"resourceVersion": created["metadata"]["resourceVersion"]},
            "spec": {"systemPrompt": "y"},
        },
    )
    assert response.status_code == 409


async def test_soft_delete_frees_the_name_and_keeps_the_trash(api: Api) -> None:
    await api.must_create("ghosts", ghost("d1", prompt="first"))
    deleted = await api.delete("ghosts", "d1")
    assert deleted.status_code == api.deleted
    if api.family == "C":  # the object as deleted
        assert deleted.json()["metadata"]["deletionTimestamp"] is not None
        assert deleted.json()["spec"] == {"systemPrompt": "first"}
    else:
        assert deleted.content == b""
    assert (await api.get("ghosts", "d1")).status_code == 404
    assert "d1" not in [i["metadata"]["name"] for i in (await api.list("ghosts")).json()["items"]]
    await api.must_create("ghosts", ghost("d1", prompt="second"))
    trash = (await api.list("ghosts", params={"deleted": "true"})).json()["items"]
    assert [(i["metadata"]["name"], i["spec"]["systemPrompt"]) for i in trash] == [("d1", "first")]
    assert_envelope(
        trash[0],
        kind="Ghost",
        name="d1",
        namespace=api.namespace,
        spec={"systemPrompt": "first"},
        user=api.account.username,
        deleted=True,
    )


async def test_delete_what_is_not_there_is_404(api: Api) -> None:
    assert (await api.delete("ghosts", "never")).status_code == 404


async def test_restore_brings_back_the_latest_deleted(api: Api) -> None:
    if api.family == "C":  # restore is a product operation (API.md §14)
        assert (await api.restore("ghosts", "d2")).status_code == 404
        return
    for prompt in ("old", "new"):
        await api.must_create("ghosts", ghost("d2", prompt=prompt))
        assert (await api.delete("ghosts", "d2")).status_code == 204
    restored = await api.restore("ghosts", "d2")
    assert restored.status_code == 200
    assert restored.json()["spec"] == {"systemPrompt": "new"}
    assert restored.json()["metadata"]["deletionTimestamp"] is None
    assert (await api.get("ghosts", "d2")).json()["spec"] == {"systemPrompt": "new"}
    again = await api.restore("ghosts", "d2")
    assert again.status_code == 409
    assert again.json()["reason"] == "AlreadyExists"


async def test_restore_without_trash_is_404(api: Api) -> None:
    response = await api.restore("ghosts", "nope")
    assert response.status_code == 404
    if api.family == "C":  # no restore in the Kubernetes family
        assert response.json()["message"] == "the requested path was not found"
        return
    assert response.json()["message"] == f'no deleted Ghost "nope" in namespace "{api.namespace}"'


async def test_dry_run_writes_nothing(api: Api) -> None:
    dry = await api.create("ghosts", ghost("dry"), params={"dryRun": "All"})
    assert dry.status_code == 201
    assert dry.json()["metadata"]["name"] == "dry"
    assert (await api.get("ghosts", "dry")).status_code == 404
    await api.must_create("ghosts", ghost("dry"))
    assert (await api.create("ghosts", ghost("dry"), params={"dryRun": "All"})).status_code == 409
    changed = await api.replace("ghosts", "dry", ghost("dry", prompt="x"), params={"dryRun": "All"})
    assert changed.json()["spec"] == {"systemPrompt": "x"}
    assert (await api.get("ghosts", "dry")).json()["spec"] == {"systemPrompt": "You are helpful."}
    assert (await api.delete("ghosts", "dry", params={"dryRun": "All"})).status_code == api.deleted
    assert (await api.get("ghosts", "dry")).status_code == 200
    assert (await api.create("ghosts", ghost("x"), params={"dryRun": "Yes"})).status_code == 400


async def test_field_validation_modes(api: Api) -> None:
    body = ghost("fv", color="red")
    body["metadata"]["colour"] = "blue"
    warned = await api.create("ghosts", body)
    assert warned.status_code == 201
    assert sorted(warned.headers.get_list("warning")) == [
        '299 - "unknown field \\"metadata.colour\\""',
        '299 - "unknown field \\"spec.color\\""',
    ]
    assert warned.json()["spec"] == {"systemPrompt": "You are helpful."}
    strict = await api.create(
        "ghosts",
        {**body, "metadata": {**body["metadata"], "name": "fv2"}},
        params={"fieldValidation": "Strict"},
    )
    assert strict.status_code == 422
    assert sorted(c["field"] for c in strict.json()["details"]["causes"]) == [
        "metadata.colour",
        "spec.color",
    ]
    ignored = await api.create(
        "ghosts",
        {**body, "metadata": {**body["metadata"], "name": "fv3"}},
        params={"fieldValidation": "Ignore"},
    )
    assert ignored.status_code == 201
    assert ignored.headers.get_list("warning") == []


async def test_body_that_is_not_json_is_400(api: Api) -> None:
    response = await api.request(
        "POST", "ghosts", content=b"not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["reason"] == "BadRequest"


async def test_every_bad_field_is_a_cause(api: Api) -> None:
    body: dict[str, Any] = manifest(
        "Team",
        "t-bad",
        {
            "members": [{"botRef": {}}, {"botRef": {"name": "ok"}, "contextPassing": "all"}],
            "collaborationModel": "anarchy",
        },
    )
    response = await api.create("teams", body)
    assert response.status_code == 422
    fields = sorted(c["field"] for c in response.json()["details"]["causes"])
    assert fields == [
        "spec.collaborationModel",
        "spec.members[0].botRef.name",
        "spec.members[1].contextPassing",
    ]


async def test_objects_are_isolated_per_namespace(
    client: httpx.AsyncClient, family: str, alice: Account, bob: Account
) -> None:
    alices = Api(client, alice, alice.username, family)
    await alices.must_create("ghosts", ghost("secret"))
    for namespace in (alice.username, unique("absent")):
        bobs = Api(client, bob, namespace, family)
        for response in (
            await bobs.get("ghosts", "secret"),
            await bobs.list("ghosts"),
            await bobs.create("ghosts", ghost("intruder")),
            await bobs.replace("ghosts", "secret", ghost("secret")),
            await bobs.patch("ghosts", "secret", {"spec": {"systemPrompt": "x"}}),
            await bobs.delete("ghosts", "secret"),
            *([] if family == "C" else [await bobs.restore("ghosts", "secret")]),
        ):
            assert response.status_code == 403, response.text
    assert (await Api(client, bob, bob.username, family).list("ghosts")).json()["items"] == []


async def test_all_namespaces_lists_what_the_caller_can_read(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    team_ns = unique("team")
    await client.post("/api/v1/namespaces", json={"name": team_ns}, headers=alice.headers)
    await client.put(
        f"/api/v1/namespaces/{team_ns}/members/{bob.username}",
        json={"role": "view"},
        headers=alice.headers,
    )
    await Api(client, alice, alice.username, "B").must_create("ghosts", ghost("mine"))
    await Api(client, alice, team_ns, "B").must_create("ghosts", ghost("shared"))
    await Api(client, bob, bob.username, "B").must_create("ghosts", ghost("bobs"))
    listed = await client.get(
        "/api/v1/kinds/ghosts", params={"allNamespaces": "true"}, headers=bob.headers
    )
    assert listed.status_code == 200
    assert [
        (i["metadata"]["namespace"], i["metadata"]["name"]) for i in listed.json()["items"]
    ] == sorted([(bob.username, "bobs"), (team_ns, "shared")], key=lambda p: p[1])
    # A viewer reads but does not write.
    viewer = Api(client, bob, team_ns, "A")
    assert (await viewer.get("ghosts", "shared")).status_code == 200
    assert (await viewer.create("ghosts", ghost("nope"))).status_code == 403


async def test_public_is_readable_and_admin_writable(
    client: httpx.AsyncClient, alice: Account, admin: Account, family: str
) -> None:
    public = Api(client, alice, "public", family)
    shells = (await public.list("shells")).json()["items"]
    assert {
        (s["metadata"]["name"], s["spec"]["shellType"], s["metadata"]["labels"]["type"])
        for s in shells
    } >= {
        ("Chat", "Chat", "direct_chat"),
        ("ClaudeCode", "ClaudeCode", "local_engine"),
        ("Agno", "Agno", "local_engine"),
        ("Dify", "Dify", "external_api"),
    }
    assert (await public.create("ghosts", ghost("mine"))).status_code == 403
    name = unique("pub")
    admin_public = Api(client, admin, "public", family)
    assert (await admin_public.create("ghosts", ghost(name))).status_code == 201
    assert (await admin_public.delete("ghosts", name)).status_code == admin_public.deleted


async def test_raw_row_records_who_did_what(api: Api, conn: asyncpg.Connection) -> None:
    await api.must_create("ghosts", ghost("who"))
    await api.delete("ghosts", "who")
    row = await conn.fetchrow(
        "SELECT created_by, updated_by, deleted_by FROM kinds WHERE namespace = $1 AND name = 'who'",
        api.namespace,
    )
    assert tuple(row) == (api.account.username,) * 3


async def test_an_empty_resource_version_means_unset(api: Api) -> None:
    created = await api.create("ghosts", ghost("rv0", resourceVersion=""))
    assert created.status_code == 201
    replaced = await api.replace("ghosts", "rv0", ghost("rv0", prompt="x", resourceVersion=""))
    assert replaced.status_code == 200
    assert replaced.json()["spec"]["systemPrompt"] == "x"


@pytest.mark.parametrize("version", ["abc", "1.5", "²", "٣", "1" * 19, "9" * 32, " 1", "1\n"])
async def test_a_resource_version_that_is_not_ours_is_422(api: Api, version: str) -> None:
    """Decimal digits only (not other scripts' digits, "²" was a 500), at most 18 of them
    (a longer one could not be compared with the stored bigint: it was a causeless 422)."""
    await api.must_create("ghosts", ghost("rv1"))
    for write in (
        api.replace("ghosts", "rv1", ghost("rv1", resourceVersion=version)),
        api.patch("ghosts", "rv1", {"metadata": {"resourceVersion": version}}),
    ):
        response = await write
        assert response.status_code == 422, response.text
        quoted = msgspec.json.encode(version).decode()
        message = f"Invalid value: {quoted}: must be a resourceVersion from this server"
        assert response.json()["details"]["causes"] == [
            {"reason": "FieldValueInvalid", "message": message, "field": "metadata.resourceVersion"}
        ]


async def test_the_longest_resource_version_is_a_stale_one(api: Api) -> None:
    await api.must_create("ghosts", ghost("rv2"))
    response = await api.replace("ghosts", "rv2", ghost("rv2", resourceVersion="9" * 18))
    assert response.status_code == 409
    assert response.json()["reason"] == "Conflict"


async def test_an_integral_float_is_an_integer(api: Api) -> None:
    """JSON Schema's integer includes 5.0, so the server takes it where an integer goes."""
    response = await api.create("models", model("m50", contextWindow=5.0, costIndex=1.0))
    assert response.status_code == 201, response.text
    assert response.json()["spec"] == {
        "modelConfig": {"env": {"MODEL": "gpt"}},
        "modelType": "llm",
        "contextWindow": 5,
        "costIndex": 1.0,
    }


async def test_a_nul_character_is_422_naming_the_field(api: Api) -> None:
    response = await api.create("ghosts", ghost("nul", prompt="a\x00b"))
    assert response.status_code == 422
    message = "Invalid value: must not contain U+0000 (NUL)"
    assert response.json() == status_body(
        422,
        "Invalid",
        f'Ghost "nul" is invalid: spec.systemPrompt: {message}',
        details={
            "name": "nul",
            "kind": "Ghost",
            "causes": [
                {"reason": "FieldValueInvalid", "message": message, "field": "spec.systemPrompt"}
            ],
        },
    )
    patched = await api.must_create("ghosts", ghost("nul2"))
    response = await api.patch("ghosts", "nul2", {"metadata": {"annotations": {"n": "\x00"}}})
    assert response.status_code == 422
    assert response.json()["details"]["causes"] == [
        {"reason": "FieldValueInvalid", "message": message, "field": "metadata.annotations[n]"}
    ]
    assert (await api.get("ghosts", "nul2")).json() == patched


async def test_only_a_merge_patch_takes_the_merge_patch_media_type(api: Api) -> None:
    headers = {"content-type": "application/merge-patch+json"}
    body = b'{"metadata": {"name": "mp"}, "spec": {"systemPrompt": "p"}}'
    response = await api.request("POST", "ghosts", content=body, headers=headers)
    assert response.status_code == 415
    assert response.json() == status_body(
        415,
        "UnsupportedMediaType",
        'content type "application/merge-patch+json" is not supported; use one of: '
        "application/json",
    )
    await api.must_create("ghosts", ghost("mp"))
    response = await api.request("PUT", "ghosts", "mp", content=body, headers=headers)
    assert response.status_code == 415
    response = await api.request(
        "PATCH", "ghosts", "mp", content=b'{"spec": {"systemPrompt": "q"}}', headers=headers
    )
    assert response.status_code == 200
