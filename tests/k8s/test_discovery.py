"""Discovery, ``/version``, OpenAPI v3 and the self-reviews (API.md §14), over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import Account, register, unique
from tests.k8s.test_protobuf import KUBECTL_CAN_I_CREATE, KUBECTL_WHOAMI
from wegent.k8s import protobuf
from wegent.resources.registry import KINDS

pytestmark = pytest.mark.usefixtures("client")

GROUP = "agent.wecode.io"
VERBS = ["delete", "get", "list", "patch", "create", "update", "watch"]


async def got(
    client: httpx.AsyncClient, account: Account, path: str, headers: dict[str, str] | None = None
) -> Any:
    response = await client.get(path, headers={**account.headers, **(headers or {})})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def group(name: str) -> dict[str, Any]:
    version = {"groupVersion": f"{name}/v1", "version": "v1"}
    return {"name": name, "versions": [version], "preferredVersion": version}


async def test_the_core_and_group_lists(client: httpx.AsyncClient, alice: Account) -> None:
    assert await got(client, alice, "/api") == {
        "kind": "APIVersions",
        "apiVersion": "v1",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [],
    }
    aggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    groups = await got(client, alice, "/apis", headers={"accept": f"{aggregated},application/json"})
    assert groups == {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [group(GROUP), group("authentication.k8s.io"), group("authorization.k8s.io")],
    }
    for name in (GROUP, "authentication.k8s.io", "authorization.k8s.io"):
        assert await got(client, alice, f"/apis/{name}") == {
            "kind": "APIGroup",
            "apiVersion": "v1",
            **group(name),
        }


async def test_every_listed_group_version_answers(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for listed in (await got(client, alice, "/apis"))["groups"]:
        for version in listed["versions"]:
            document = await got(client, alice, f"/apis/{version['groupVersion']}")
            assert document["groupVersion"] == version["groupVersion"]
            assert document["resources"]


async def test_the_resources_of_the_group(client: httpx.AsyncClient, alice: Account) -> None:
    document = await got(client, alice, f"/apis/{GROUP}/v1")
    assert (document["kind"], document["groupVersion"]) == ("APIResourceList", f"{GROUP}/v1")
    expected = []
    for info in KINDS:
        expected.append(
            {
                "name": info.plural,
                "singularName": info.kind.lower(),
                "namespaced": True,
                "kind": info.kind,
                "verbs": VERBS,
                "shortNames": list(info.short_names),
                "categories": ["wegent"],
            }
        )
        if info.kind == "Task":
            expected.append(
                {
                    "name": "tasks/status",
                    "singularName": "",
                    "namespaced": True,
                    "kind": "Task",
                    "verbs": ["get", "patch", "update"],
                }
            )
    assert document["resources"] == expected
    bots = next(r for r in document["resources"] if r["name"] == "bots")
    assert bots["shortNames"] == ["bo"]


async def test_core_v1_and_the_review_groups(client: httpx.AsyncClient, alice: Account) -> None:
    assert (await got(client, alice, "/api/v1"))["resources"] == [
        {
            "name": "namespaces",
            "singularName": "namespace",
            "namespaced": False,
            "kind": "Namespace",
            "verbs": ["delete", "get", "list", "create"],
            "shortNames": ["ns"],
        }
    ]
    authentication = await got(client, alice, "/apis/authentication.k8s.io/v1")
    assert [r["name"] for r in authentication["resources"]] == ["selfsubjectreviews"]
    authorization = await got(client, alice, "/apis/authorization.k8s.io/v1")
    assert [r["name"] for r in authorization["resources"]] == ["selfsubjectaccessreviews"]


async def test_discovery_needs_a_token_and_version_does_not(client: httpx.AsyncClient) -> None:
    for path in ("/api", "/apis", f"/apis/{GROUP}/v1", "/openapi/v3"):
        assert (await client.get(path)).status_code == 401, path
    version = await client.get("/version")
    assert version.status_code == 200
    info = version.json()
    assert set(info) == {
        "major",
        "minor",
        "gitVersion",
        "gitCommit",
        "gitTreeState",
        "buildDate",
        "goVersion",
        "compiler",
        "platform",
    }
    assert all(isinstance(value, str) for value in info.values())
    assert (info["major"], info["minor"]) == ("1", "32")
    assert info["gitVersion"].startswith("v1.32.0-wegent.")


# -- OpenAPI v3 ---------------------------------------------------------------------------------


async def test_the_openapi_index_and_documents(client: httpx.AsyncClient, alice: Account) -> None:
    index = await got(client, alice, "/openapi/v3")
    assert set(index["paths"]) == {f"apis/{GROUP}/v1", "api/v1"}
    for path, entry in index["paths"].items():
        url = entry["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{path}?hash=")
        digest = url.split("hash=")[1]
        response = await client.get(url, headers=alice.headers)
        assert response.status_code == 200
        assert response.headers["etag"] == f'"{digest}"'
        again = await client.get(
            url, headers={**alice.headers, "if-none-match": response.headers["etag"]}
        )
        assert (again.status_code, again.content) == (304, b"")


async def group_document(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    return await got(client, account, f"/openapi/v3/apis/{GROUP}/v1")  # type: ignore[no-any-return]


async def test_every_operation_names_its_kind(client: httpx.AsyncClient, alice: Account) -> None:
    document = await group_document(client, alice)
    kinds = {info.plural: info.kind for info in KINDS}
    for path, item in document["paths"].items():
        plural = path.split("/")[6 if "/namespaces/" in path else 4]
        for method, operation in item.items():
            gvk = {"group": GROUP, "version": "v1", "kind": kinds[plural]}
            assert operation["x-kubernetes-group-version-kind"] == gvk, (path, method)
            if method == "patch":  # what kubectl apply checks (kubectl-protocol.md §6.2)
                names = [p["name"] for p in operation["parameters"]]
                assert "fieldValidation" in names, path
                media = set(operation["requestBody"]["content"])
                assert "application/strategic-merge-patch+json" not in media
                assert "application/merge-patch+json" in media
    explained = f"/apis/{GROUP}/v1/namespaces/{{namespace}}/bots"
    assert explained in document["paths"]


async def test_each_kind_schema_carries_its_kind(client: httpx.AsyncClient, alice: Account) -> None:
    schemas = (await group_document(client, alice))["components"]["schemas"]
    for info in KINDS:
        assert schemas[info.kind]["x-kubernetes-group-version-kind"] == [
            {"group": GROUP, "version": "v1", "kind": info.kind}
        ]
    refs = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"].split("/")[-1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schemas)
    assert set(refs) <= set(schemas)  # the document is whole
    # In the 3.0 form kubectl reads: a described reference keeps its description.
    assert schemas["BotSpec"]["properties"]["ghostRef"] == {
        "description": "The Ghost that gives the bot its system prompt and tools.",
        "allOf": [{"$ref": "#/components/schemas/ResourceRef"}],
    }
    assert schemas["ResourceRef"]["properties"]["namespace"]["nullable"] is True


# -- whoami and can-i ---------------------------------------------------------------------------


async def test_whoami(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post(
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        headers=alice.headers,
    )
    assert response.status_code == 201
    info = response.json()["status"]["userInfo"]
    assert info["username"] == alice.username
    assert info["groups"] == ["system:authenticated", "wegent:user"]
    assert info["extra"] == {"wegent.io/role": ["user"]}
    assert info["uid"].isdigit()


async def test_whoami_in_protobuf(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post(
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        content=bytes.fromhex(KUBECTL_WHOAMI),
        headers={**alice.headers, "content-type": protobuf.CONTENT_TYPE},
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"]["userInfo"]["username"] == alice.username


async def test_can_i_in_protobuf(client: httpx.AsyncClient, alice: Account) -> None:
    """kubectl's own body for ``kubectl auth can-i create ghosts -n foo``."""
    response = await client.post(
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        content=bytes.fromhex(KUBECTL_CAN_I_CREATE),
        headers={**alice.headers, "content-type": protobuf.CONTENT_TYPE},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["spec"]["resourceAttributes"]["resource"] == "ghosts"
    assert body["status"]["allowed"] is False  # alice is no member of "foo"


async def can_i(
    client: httpx.AsyncClient, account: Account, **attributes: str
) -> tuple[bool, dict[str, Any]]:
    spec = (
        {"nonResourceAttributes": attributes}
        if "path" in attributes
        else {"resourceAttributes": attributes}
    )
    response = await client.post(
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        json={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": spec,
        },
        headers=account.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["spec"] == spec
    return body["status"]["allowed"], body["status"]


async def test_can_i_follows_the_route_policies(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    viewer = await register(client)
    shared = unique("shared")
    assert (
        await client.post("/api/v1/namespaces", json={"name": shared}, headers=alice.headers)
    ).status_code == 201
    await client.put(
        f"/api/v1/namespaces/{shared}/members/{viewer.username}",
        json={"role": "view"},
        headers=alice.headers,
    )

    async def allowed(account: Account, **attributes: str) -> bool:
        return (await can_i(client, account, **attributes))[0]

    for verb in ("create", "get", "list", "update", "patch", "delete", "watch"):
        assert await allowed(alice, group=GROUP, resource="ghosts", verb=verb, namespace=shared)
    assert await allowed(viewer, group=GROUP, resource="ghosts", verb="get", namespace=shared)
    assert await allowed(viewer, group=GROUP, resource="ghosts", verb="list", namespace=shared)
    denied, status = await can_i(
        client, viewer, group=GROUP, resource="ghosts", verb="create", namespace=shared
    )
    assert not denied
    assert status["reason"] == f'user "{viewer.username}" cannot write in namespace "{shared}"'
    assert await allowed(
        viewer, group=GROUP, resource="tasks", subresource="status", verb="get", namespace=shared
    )
    assert not await allowed(
        viewer, group=GROUP, resource="tasks", subresource="status", verb="update", namespace=shared
    )
    # Namespaces: anyone lists and creates; deleting takes the namespace's admin.
    assert await allowed(viewer, resource="namespaces", verb="create")
    assert not await allowed(viewer, resource="namespaces", verb="delete", name=shared)
    assert await allowed(alice, resource="namespaces", verb="delete", name=shared)
    # Across every namespace: lists are filtered, so allowed; writes only for a global admin.
    assert await allowed(viewer, group=GROUP, resource="ghosts", verb="list")
    assert not await allowed(viewer, group=GROUP, resource="ghosts", verb="delete")
    assert await allowed(admin, group=GROUP, resource="ghosts", verb="delete")
    # What is not served is never allowed.
    assert not await allowed(
        alice, group=GROUP, resource="ghosts", verb="deletecollection", namespace=alice.username
    )
    assert not await allowed(
        alice, group=GROUP, resource="widgets", verb="get", namespace=alice.username
    )
    assert not await allowed(alice, group="apps", resource="deployments", verb="get")
    # Non-resource paths: the open ones.
    assert await allowed(alice, path="/healthz", verb="get")
    assert await allowed(alice, path="/apis/agent.wecode.io/v1", verb="get")
    assert not await allowed(alice, path="/metrics-secret", verb="get")


async def test_can_i_is_authorization_only(client: httpx.AsyncClient, alice: Account) -> None:
    """docs/decisions.md: as Kubernetes' can-i (yes to an admin for kube-system, whose deletion
    admission refuses), the review says whether the caller may act, not whether the object
    lets it: alice may delete namespaces she administers, her personal one is still kept."""
    mine = alice.username
    assert (await can_i(client, alice, resource="namespaces", verb="delete", name=mine))[0]
    response = await client.delete(f"/api/v1/namespaces/{mine}", headers=alice.headers)
    assert response.status_code == 403
    assert response.json()["message"] == (
        f'namespace "{mine}" is a personal namespace and cannot be deleted'
    )
    assert (
        await client.get(f"/api/v1/namespaces/{mine}", headers=alice.headers)
    ).status_code == 200


async def test_a_review_that_cannot_be_read_is_400(
    client: httpx.AsyncClient, alice: Account
) -> None:
    url = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    not_json = await client.post(
        url, content=b"{", headers={**alice.headers, "content-type": "application/json"}
    )
    assert not_json.status_code == 400
    no_spec = await client.post(
        url, json={"kind": "SelfSubjectAccessReview"}, headers=alice.headers
    )
    assert no_spec.status_code == 400
    text = await client.post(
        url, content=b"{}", headers={**alice.headers, "content-type": "text/plain"}
    )
    assert text.status_code == 415
