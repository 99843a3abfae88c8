"""Namespaces as the core ``v1`` ``Namespace`` resource (API.md §14), keeping §11's fields."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.helpers import Account, status_body, unique
from tests.k8s.test_protobuf import (
    KUBECTL_CREATE_NAMESPACE,
    KUBECTL_CREATE_NAMESPACE_SAVE_CONFIG,
)
from tests.resources.api import UID
from wegent.k8s import protobuf

pytestmark = pytest.mark.usefixtures("client")

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
PROTOBUF = {"content-type": protobuf.CONTENT_TYPE}


async def test_a_namespace_manifest_creates_a_namespace(
    client: httpx.AsyncClient, alice: Account
) -> None:
    name = unique("ns")
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    created = await client.post(
        "/api/v1/namespaces",
        json=manifest,
        params={"fieldManager": "kubectl-create", "fieldValidation": "Strict"},
        headers=alice.headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body == {
        "name": name,
        "owner": alice.username,
        "personal": False,
        "role": "admin",
        "createdAt": body["createdAt"],
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "uid": body["metadata"]["uid"],
            "resourceVersion": body["metadata"]["resourceVersion"],
            "creationTimestamp": body["createdAt"],
        },
        "spec": {},
        "status": {"phase": "Active"},
    }
    assert UID.match(body["metadata"]["uid"])
    got = await client.get(f"/api/v1/namespaces/{name}", headers=alice.headers)
    assert got.json() == body


@pytest.mark.parametrize(
    "fixture", [KUBECTL_CREATE_NAMESPACE, KUBECTL_CREATE_NAMESPACE_SAVE_CONFIG]
)
async def test_kubectls_protobuf_body_is_read(
    client: httpx.AsyncClient, alice: Account, fixture: str
) -> None:
    """kubectl 1.32's own bytes for ``kubectl create namespace x`` (as a dry run: ``x`` is one
    name for the whole test session)."""
    created = await client.post(
        "/api/v1/namespaces",
        content=bytes.fromhex(fixture),
        params={"dryRun": "All"},
        headers={**alice.headers, **PROTOBUF},
    )
    assert created.status_code == 201, created.text
    assert created.json()["metadata"]["name"] == "x"
    listed = (await client.get("/api/v1/namespaces", headers=alice.headers)).json()["items"]
    assert "x" not in [n["name"] for n in listed]


async def test_bad_namespace_bodies(client: httpx.AsyncClient, alice: Account) -> None:
    both = {"name": unique("a"), "metadata": {"name": unique("b")}}
    refused = await client.post("/api/v1/namespaces", json=both, headers=alice.headers)
    assert refused.status_code == 422
    neither = await client.post(
        "/api/v1/namespaces", json={"kind": "Namespace"}, headers=alice.headers
    )
    assert neither.status_code == 422
    wrong_kind = {"kind": "Ghost", "metadata": {"name": unique("c")}}
    assert (
        await client.post("/api/v1/namespaces", json=wrong_kind, headers=alice.headers)
    ).status_code == 422
    garbage = await client.post(
        "/api/v1/namespaces", content=b"k8s\x00\xff", headers={**alice.headers, **PROTOBUF}
    )
    assert garbage.status_code == 400


async def test_delete_answers_the_namespace(client: httpx.AsyncClient, alice: Account) -> None:
    name = unique("ns")
    await client.post("/api/v1/namespaces", json={"name": name}, headers=alice.headers)
    url = f"/api/v1/namespaces/{name}"
    dry = await client.request(
        "DELETE",
        url,
        json={"propagationPolicy": "Background", "dryRun": ["All"]},
        headers=alice.headers,
    )
    assert dry.status_code == 200
    assert (await client.get(url, headers=alice.headers)).status_code == 200
    deleted = await client.request(
        "DELETE", url, json={"propagationPolicy": "Background"}, headers=alice.headers
    )
    assert deleted.status_code == 200
    assert (deleted.json()["kind"], deleted.json()["metadata"]["name"]) == ("Namespace", name)
    assert (await client.get(url, headers=alice.headers)).status_code in (403, 404)


async def test_namespaces_as_a_table(client: httpx.AsyncClient, alice: Account) -> None:
    table = await client.get("/api/v1/namespaces", headers={**alice.headers, "accept": TABLE})
    assert table.status_code == 200
    body = table.json()
    assert [c["name"] for c in body["columnDefinitions"]] == ["Name", "Status", "Age"]
    rows = {row["cells"][0]: row for row in body["rows"]}
    assert rows[alice.username]["cells"][1] == "Active"
    assert re.fullmatch(r"\d+[smhd].*", rows[alice.username]["cells"][2])
    assert rows[alice.username]["object"]["kind"] == "PartialObjectMetadata"
    one = await client.get("/api/v1/namespaces/default", headers={**alice.headers, "accept": TABLE})
    assert one.status_code == 200
    assert one.json()["rows"][0]["cells"][:2] == [alice.username, "Active"]


async def test_namespaces_are_not_watched(client: httpx.AsyncClient, alice: Account) -> None:
    refused = await client.get(
        "/api/v1/namespaces", params={"watch": "true"}, headers=alice.headers
    )
    assert refused.status_code == 405
    assert refused.json() == status_body(
        405, "MethodNotAllowed", "namespaces are not watched on this server (docs/watch.md)"
    )
