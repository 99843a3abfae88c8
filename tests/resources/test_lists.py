"""Lists: order, keyset paging with tamper-evident tokens, label selectors (API.md §7)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses

import httpx
import pytest
from litestar import Litestar

from tests.helpers import register, status_body
from tests.resources.api import Api, ghost

pytestmark = pytest.mark.usefixtures("door")  # through both doors of the resource API


@pytest.fixture(params=["A", "B", "C"])
async def api(client: httpx.AsyncClient, request: pytest.FixtureRequest) -> Api:
    account = await register(client)
    return Api(client, account, account.username, str(request.param))


async def names_of(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["metadata"]["name"] for item in response.json()["items"]]


async def walk(api: Api, plural: str, limit: int, **params: str) -> list[str]:
    """Every name through every page."""
    seen: list[str] = []
    token = None
    while True:
        query = {"limit": str(limit), **params, **({"continue": token} if token else {})}
        response = await api.list(plural, params=query)
        seen += await names_of(response)
        token = response.json()["metadata"].get("continue")
        if token is None:
            return seen


async def test_pages_follow_each_other(api: Api) -> None:
    names = [f"g{i:02d}" for i in range(7)]
    for name in reversed(names):
        await api.must_create("ghosts", ghost(name))
    first = await api.list("ghosts", params={"limit": "3"})
    assert await names_of(first) == names[:3]
    assert sorted(first.json()["metadata"]) == ["continue", "resourceVersion"]
    assert await walk(api, "ghosts", 3) == names
    assert await walk(api, "ghosts", 7) == names
    assert await walk(api, "ghosts", 1000) == names


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "ten"])
async def test_limit_out_of_range_is_400(api: Api, limit: str) -> None:
    response = await api.list("ghosts", params={"limit": limit})
    assert response.status_code == 400
    assert response.json()["reason"] == "BadRequest"


async def test_tampered_or_foreign_tokens_are_400(api: Api) -> None:
    for i in range(3):
        await api.must_create("ghosts", ghost(f"g{i}", labels={"team": "a"}))
        await api.must_create(
            "skills", {"kind": "Skill", "metadata": {"name": f"s{i}"}, "spec": {"description": "d"}}
        )
    token = (await api.list("ghosts", params={"limit": "1"})).json()["metadata"]["continue"]
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[5] ^= 1
    forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for params, plural in (
        ({"continue": forged}, "ghosts"),
        ({"continue": "garbage"}, "ghosts"),
        ({"continue": token}, "skills"),
        ({"continue": token, "labelSelector": "team=a"}, "ghosts"),
        ({"continue": token, "deleted": "true"}, "ghosts"),
    ):
        response = await api.list(plural, params={"limit": "1", **params})
        assert response.status_code == 400, (params, plural)
        assert response.json()["message"].startswith("invalid continue token: ")
    assert (await api.list("ghosts", params={"limit": "1", "continue": token})).status_code == 200


async def test_label_selectors(api: Api) -> None:
    labels = {
        "a": {"team": "core", "tier": "gold"},
        "b": {"team": "web"},
        "c": {"tier": "std"},
        "d": {},
    }
    for name, value in labels.items():
        await api.must_create("ghosts", ghost(name, labels=value))
    cases = {
        "team=core": ["a"],
        "team==core": ["a"],
        "team!=core": ["b", "c", "d"],
        "team in (core,web)": ["a", "b"],
        "team notin (core)": ["b", "c", "d"],
        "tier": ["a", "c"],
        "!tier": ["b", "d"],
        "team,tier": ["a"],
        "team=core,tier=gold": ["a"],
        "": ["a", "b", "c", "d"],
    }
    for selector, expected in cases.items():
        response = await api.list("ghosts", params={"labelSelector": selector})
        assert await names_of(response) == expected, selector
    assert await walk(api, "ghosts", 1, labelSelector="team notin (core)") == ["b", "c", "d"]


async def test_bad_selector_is_400_with_the_position(api: Api) -> None:
    response = await api.list("ghosts", params={"labelSelector": "team in (core"})
    assert response.status_code == 400
    assert (
        response.json()["message"]
        == 'invalid labelSelector "team in (core": expected ")" at position 13'
    )


async def test_a_selector_over_4096_characters_is_400(api: Api) -> None:
    response = await api.list("ghosts", params={"labelSelector": "a" * 4097})
    shown = '"' + "a" * 100 + '"'  # the value is shown cut at 100 characters
    message = (
        f"invalid value {shown} for query parameter labelSelector: must be at most 4096 characters"
    )
    assert (response.status_code, response.json()) == (
        400,
        status_body(400, "BadRequest", message),
    )


async def test_trash_pages_too(api: Api) -> None:
    for i in range(5):
        await api.must_create("ghosts", ghost(f"t{i}"))
        await api.delete("ghosts", f"t{i}")
    assert await walk(api, "ghosts", 2, deleted="true") == [f"t{i}" for i in range(5)]
    assert await walk(api, "ghosts", 2) == []


async def test_booleans_are_read_as_kubernetes_reads_them(api: Api) -> None:
    """As Go's ``strconv.ParseBool``: 1, t, T, TRUE, true, True, and the same for false."""
    await api.must_create("ghosts", ghost("live"))
    await api.must_create("ghosts", ghost("gone"))
    assert (await api.delete("ghosts", "gone")).status_code == api.deleted
    for spelling in ("1", "t", "T", "TRUE", "true", "True"):
        trash = await api.list("ghosts", params={"deleted": spelling})
        assert await names_of(trash) == ["gone"], spelling
    for spelling in ("0", "f", "F", "FALSE", "false", "False"):
        live = await api.list("ghosts", params={"deleted": spelling})
        assert await names_of(live) == ["live"], spelling
    for spelling in ("yes", "", "tRUE"):
        response = await api.list("ghosts", params={"deleted": spelling})
        message = f'invalid value "{spelling}" for query parameter deleted: must be true or false'
        assert (response.status_code, response.json()) == (
            400,
            status_body(400, "BadRequest", message),
        )


async def test_paging_under_concurrent_writes_never_repeats_or_skips(api: Api) -> None:
    """Objects present for the whole walk appear exactly once, whatever else changes."""
    stable = [f"s{i:03d}" for i in range(0, 60, 2)]
    churn = [f"s{i:03d}" for i in range(1, 60, 2)]
    for name in stable + churn:
        await api.must_create("ghosts", ghost(name))
    stop = asyncio.Event()

    async def writer() -> None:
        round_ = 0
        while not stop.is_set():
            for name in churn:
                await api.delete("ghosts", name)
                await api.create("ghosts", ghost(f"{name}-{round_}"))
                await api.create("ghosts", ghost(name))
            round_ += 1

    task = asyncio.create_task(writer())
    try:
        seen = await walk(api, "ghosts", 7)
    finally:
        stop.set()
        await task
    assert len(seen) == len(set(seen))
    assert set(stable) <= set(seen)
    assert seen == sorted(seen)


async def test_all_namespaces_still_needs_a_well_formed_namespace(api: Api) -> None:
    """The namespace is ignored when listing every namespace, but a malformed one is still
    the 400 it is everywhere else."""
    bad = Api(api.client, api.account, "Not-A-Label", api.family)
    response = await bad.list("ghosts", params={"allNamespaces": "true"})
    assert response.status_code == 400
    assert response.json()["message"] == (
        'invalid value "Not-A-Label" for query parameter namespace: must be a DNS label'
        if api.family == "A"
        else "invalid namespace name 'Not-A-Label': must be a DNS label"
    )
    assert (await api.list("ghosts", params={"allNamespaces": "true"})).status_code == 200


async def test_a_page_stops_at_its_byte_budget(
    api: Api, app: Litestar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """API.md §7: items stop before the byte budget (a continue token follows); one object
    larger than the budget comes alone; walking the pages still yields every object once."""
    service = app.state.services.resources["Ghost"]
    monkeypatch.setattr(service, "deps", dataclasses.replace(service.deps, list_budget=250_000))
    for name, size in (("a", 100_000), ("b", 100_000), ("c", 100_000), ("d", 260_000), ("e", 10)):
        await api.must_create("ghosts", ghost(name, "x" * size))
    first = (await api.list("ghosts", params={"limit": "1000"})).json()
    assert [item["metadata"]["name"] for item in first["items"]] == ["a", "b"]
    token = first["metadata"]["continue"]
    second = (await api.list("ghosts", params={"limit": "1000", "continue": token})).json()
    assert [item["metadata"]["name"] for item in second["items"]] == ["c"]
    token = second["metadata"]["continue"]
    third = (await api.list("ghosts", params={"limit": "1000", "continue": token})).json()
    assert [item["metadata"]["name"] for item in third["items"]] == ["d"]  # alone, over budget
    token = third["metadata"]["continue"]
    last = (await api.list("ghosts", params={"limit": "1000", "continue": token})).json()
    assert [item["metadata"]["name"] for item in last["items"]] == ["e"]
    assert "continue" not in last["metadata"]
    assert await walk(api, "ghosts", 2) == ["a", "b", "c", "d", "e"]


async def test_a_large_object_just_after_a_full_page(
    api: Api, app: Litestar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row after a page (it only tells that a next page follows) is larger than an item's
    share of the budget: the page is still whole and its token starts the next page there."""
    service = app.state.services.resources["Ghost"]
    monkeypatch.setattr(service, "deps", dataclasses.replace(service.deps, list_budget=250_000))
    for name, size in (("a", 10), ("b", 10), ("c", 200_000), ("d", 10)):
        await api.must_create("ghosts", ghost(name, "x" * size))
    first = (await api.list("ghosts", params={"limit": "2"})).json()
    assert [item["metadata"]["name"] for item in first["items"]] == ["a", "b"]
    token = first["metadata"]["continue"]
    second = (await api.list("ghosts", params={"limit": "2", "continue": token})).json()
    assert [item["metadata"]["name"] for item in second["items"]] == ["c", "d"]
    assert "continue" not in second["metadata"]
    assert len(second["items"][0]["spec"]["systemPrompt"]) == 200_000
