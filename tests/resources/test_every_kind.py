"""Every kind of the registry through the generic path: create, get, list, replace, merge
patch, delete, restore, batch apply and delete, on every path family and through both doors.

The kinds come from the registry; their samples from ``upstream_manifests.yaml`` (one manifest
per kind in upstream Wegent's shapes), so a kind added to the registry without a sample fails
here. The file itself is applied as one YAML stream first: the samples that reference other
objects find them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.helpers import register
from tests.resources.api import Api
from wegent.resources.registry import KINDS, KindInfo

pytestmark = pytest.mark.usefixtures("door")  # through both doors of the resource API

MANIFESTS = Path(__file__).with_name("upstream_manifests.yaml")
SNAKE_CASE = ("preload_skills", "bind_mode", "quick_phrases", "is_group_chat", "device_id")


def samples() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFESTS.read_text()) if doc}


async def apply_file(api: Api) -> httpx.Response:
    return await api.client.post(
        f"/api/v1/namespaces/{api.namespace}/apply",
        content=MANIFESTS.read_bytes(),
        headers={**api.account.headers, "Content-Type": "application/yaml"},
    )


@pytest.fixture(params=["A", "B", "C"])
async def api(client: httpx.AsyncClient, request: pytest.FixtureRequest) -> Api:
    """A fresh namespace holding one object of every kind, from the upstream manifests."""
    account = await register(client)
    api = Api(client, account, account.username, str(request.param))
    applied = await apply_file(api)
    assert applied.status_code == 200, applied.text
    assert applied.json()["success"], applied.text
    return api


def test_every_kind_has_a_sample() -> None:
    assert sorted(samples()) == sorted(info.kind for info in KINDS)


async def test_the_upstream_manifests_of_all_13_kinds_apply_in_one_stream(api: Api) -> None:
    """Created on the first apply (by the fixture); unchanged on the second; answered in
    camelCase, the snake_case aliases of upstream taken as their fields."""
    again = await apply_file(api)
    results = again.json()["results"]
    assert [(r["kind"], r["operation"]) for r in results] == [
        (doc["kind"], "unchanged") for doc in samples().values()
    ]
    for kind, doc in samples().items():
        plural = next(info.plural for info in KINDS if info.kind == kind)
        got = await api.get(plural, doc["metadata"]["name"])
        assert got.status_code == 200, (kind, got.text)
        assert not set(SNAKE_CASE) & set(got.json()["spec"]), kind
    ghost = (await api.get("ghosts", "developer-ghost")).json()["spec"]
    assert ghost["preloadSkills"] == ["python-debugger"]
    team = (await api.get("teams", "dev-team")).json()["spec"]
    assert (team["bindMode"], team["quickPhrases"]) == (
        ["code"],
        ["Fix the failing tests", "Review my last commit"],
    )
    task = (await api.get("tasks", "implement-feature")).json()["spec"]
    assert (task["isGroupChat"], task["deviceId"]) == (
        False,
        "7b7c9d64-0f1e-4c2a-9d55-3f70c6f4a931",
    )


def sample(info: KindInfo, name: str, **labels: str) -> dict[str, Any]:
    doc = copy.deepcopy(samples()[info.kind])
    doc["metadata"] = {"name": name, "labels": labels}
    if info.kind == "Device":
        doc["spec"]["isDefault"] = False  # the file's Device is the namespace's default
    return doc


@pytest.mark.parametrize("info", KINDS, ids=[info.kind for info in KINDS])
async def test_every_kind_through_every_verb(api: Api, info: KindInfo) -> None:
    plural = info.plural
    created = await api.create(plural, sample(info, "copy", tier="a"))
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["kind"], body["metadata"]["name"]) == (info.kind, "copy")
    assert (await api.get(plural, "copy")).json() == body

    listed = await api.list(plural, params={"labelSelector": "tier=a"})
    assert [item["metadata"]["name"] for item in listed.json()["items"]] == ["copy"]

    replaced = await api.replace(plural, "copy", sample(info, "copy", tier="b"))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["metadata"]["labels"] == {"tier": "b"}
    assert replaced.json()["metadata"]["generation"] == 1  # labels only

    patched = await api.patch(plural, "copy", {"metadata": {"annotations": {"a.io/n": "x"}}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["metadata"]["annotations"] == {"a.io/n": "x"}
    assert patched.json()["spec"] == replaced.json()["spec"]

    assert (await api.delete(plural, "copy")).status_code == api.deleted
    assert (await api.get(plural, "copy")).status_code == 404
    trash = await api.list(plural, params={"deleted": "true"})
    assert [item["metadata"]["name"] for item in trash.json()["items"]] == ["copy"]
    restored = await api.product.restore(plural, "copy")
    assert restored.status_code == 200, restored.text
    assert restored.json()["spec"] == patched.json()["spec"]


@pytest.mark.parametrize("info", KINDS, ids=[info.kind for info in KINDS])
async def test_every_kind_through_batch_apply_and_delete(api: Api, info: KindInfo) -> None:
    base = f"/api/v1/namespaces/{api.namespace}"
    manifest = sample(info, "batched")
    for expected in ("created", "unchanged"):
        applied = await api.client.post(
            f"{base}/apply", json=[manifest], headers=api.account.headers
        )
        result = applied.json()["results"][0]
        assert (result["operation"], result["success"]) == (expected, True), applied.text
    deleted = await api.client.post(f"{base}/delete", json=[manifest], headers=api.account.headers)
    assert deleted.json()["results"][0]["operation"] == "deleted", deleted.text
    assert (await api.get(info.plural, "batched")).status_code == 404
