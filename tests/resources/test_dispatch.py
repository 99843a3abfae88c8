"""Task dispatch (API.md §17): claims, leases, heartbeats, holders, attempts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import register, status_body, unique
from tests.resources.api import Api, bot, ghost, team
from tests.resources.test_tasks import task

TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"
CLAIM = "/api/v1/tasks/claim"


def instant(text: object) -> datetime:
    assert isinstance(text, str)
    return datetime.strptime(text, TIMESTAMP).replace(tzinfo=UTC)


@pytest.fixture
async def api(client: httpx.AsyncClient) -> Api:
    account = await register(client)
    api = Api(client, account, account.username, "B")
    await api.must_create("ghosts", ghost("g"))
    await api.must_create("bots", bot("b", "g"))
    await api.must_create("teams", team("t", "b"))
    await api.must_create("teams", team("other", "b"))
    return api


async def claim(api: Api, executor: str = "ex-1", **body: Any) -> list[dict[str, Any]]:
    response = await api.client.post(
        CLAIM,
        json={"executor": executor, "namespaces": [api.namespace], **body},
        headers=api.account.headers,
    )
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["items"]
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def beat(api: Api, name: str, **body: Any) -> httpx.Response:
    return await api.client.post(
        f"/api/v1/namespaces/{api.namespace}/tasks/{name}/heartbeat",
        json=body,
        headers=api.account.headers,
    )


async def expire(conn: asyncpg.Connection, api: Api, name: str) -> None:
    """As if the lease had run out: its end moved into the past."""
    await conn.execute(
        "UPDATE tasks SET status = jsonb_set(status, '{leaseExpiresAt}', "
        "'\"2000-01-01T00:00:00Z\"') WHERE namespace = $1 AND name = $2",
        api.namespace,
        name,
    )


async def test_a_claim_takes_the_oldest_pending_tasks_under_a_lease(api: Api) -> None:
    for name in ("first", "second", "third"):
        await api.must_create("tasks", task(name))
    before = datetime.now(UTC).replace(microsecond=0)
    [taken] = await claim(api, leaseSeconds=60)
    assert taken["metadata"]["name"] == "first"
    status = taken["status"]
    assert (status["phase"], status["executor"], status["attempt"], status["progress"]) == (
        "RUNNING",
        "ex-1",
        1,
        0,
    )
    lease = instant(status["leaseExpiresAt"]) - before
    assert timedelta(seconds=59) <= lease <= timedelta(seconds=62)
    assert instant(status["startedAt"]) >= before - timedelta(seconds=1)
    stored = (await api.get("tasks", "first")).json()
    assert stored == taken  # the answer is the task as stored
    rest = await claim(api, "ex-2", max=10)
    assert [t["metadata"]["name"] for t in rest] == ["second", "third"]
    assert {t["status"]["executor"] for t in rest} == {"ex-2"}
    assert await claim(api, "ex-3", max=10) == []


async def test_claims_filter_by_team_and_labels(api: Api) -> None:
    await api.must_create("tasks", task("plain"))
    other = task("for-other", "other")
    await api.must_create("tasks", other)
    labelled = task("gpu")
    labelled["metadata"]["labels"] = {"needs": "gpu"}
    await api.must_create("tasks", labelled)
    assert [t["metadata"]["name"] for t in await claim(api, team="other", max=5)] == ["for-other"]
    gpu = await claim(api, labelSelector="needs=gpu", max=5)
    assert [t["metadata"]["name"] for t in gpu] == ["gpu"]
    assert [t["metadata"]["name"] for t in await claim(api, max=5)] == ["plain"]


async def test_a_claim_never_reaches_a_namespace_the_caller_cannot_edit(
    api: Api, client: httpx.AsyncClient
) -> None:
    await api.must_create("tasks", task("mine"))
    viewer = await register(client)
    granted = await client.put(
        f"/api/v1/namespaces/{api.namespace}/members/{viewer.username}",
        json={"role": "view"},
        headers=api.account.headers,
    )
    assert granted.status_code == 200
    refused = await client.post(
        CLAIM,
        json={"executor": "ex", "namespaces": [api.namespace]},
        headers=viewer.headers,
    )
    assert refused.status_code == 403
    assert refused.json() == status_body(
        403,
        "Forbidden",
        f'user "{viewer.username}" cannot write in namespace "{api.namespace}"',
        details={"name": api.namespace, "kind": "Namespace"},
    )
    everywhere = await client.post(CLAIM, json={"executor": "ex"}, headers=viewer.headers)
    assert (everywhere.status_code, everywhere.json()) == (200, {"items": []})
    assert (await api.get("tasks", "mine")).json()["status"]["phase"] == "PENDING"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "executor"),
        ({"executor": "has space"}, "executor"),
        ({"executor": "e", "leaseSeconds": 9}, "leaseSeconds"),
        ({"executor": "e", "leaseSeconds": 3601}, "leaseSeconds"),
        ({"executor": "e", "max": 0}, "max"),
        ({"executor": "e", "max": 101}, "max"),
        ({"executor": "e", "namespaces": []}, "namespaces"),
        ({"executor": "e", "team": "bad name"}, "team"),
    ],
    ids=["none", "space", "short", "long", "zero", "many", "no-ns", "team"],
)
async def test_bad_claims_are_422(api: Api, body: dict[str, Any], field: str) -> None:
    await api.must_create("tasks", task("untouched"))
    response = await api.client.post(CLAIM, json=body, headers=api.account.headers)
    assert response.status_code == 422, response.text
    assert [c["field"] for c in response.json()["details"]["causes"]] == [field]
    assert (await api.get("tasks", "untouched")).json()["status"]["phase"] == "PENDING"


async def test_a_bad_selector_is_400(api: Api) -> None:
    response = await api.client.post(
        CLAIM, json={"executor": "e", "labelSelector": "a in"}, headers=api.account.headers
    )
    assert response.status_code == 400
    assert response.json()["reason"] == "BadRequest"


async def test_heartbeats_extend_the_lease_of_its_holder_only(api: Api) -> None:
    await api.must_create("tasks", task("work"))
    [taken] = await claim(api, leaseSeconds=10)
    beaten = await beat(api, "work", executor="ex-1", leaseSeconds=3600, progress=40)
    assert beaten.status_code == 200, beaten.text
    status = beaten.json()["status"]
    assert status["progress"] == 40
    assert instant(status["leaseExpiresAt"]) - instant(taken["status"]["leaseExpiresAt"]) >= (
        timedelta(seconds=3500)
    )
    other = await beat(api, "work", executor="ex-2")
    assert other.status_code == 409
    assert other.json()["message"] == (
        'Task "work": executor "ex-2" holds no lease on it: executor "ex-1" holds its lease now'
    )
    down = await beat(api, "work", executor="ex-1", progress=10)
    assert down.status_code == 422
    assert down.json()["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: 10: progress never goes down (it is 40)",
            "field": "progress",
        }
    ]
    cancelled = await api.client.post(
        f"/api/v1/namespaces/{api.namespace}/tasks/work/cancel", headers=api.account.headers
    )
    assert cancelled.status_code == 200  # a user cancels whoever holds the lease
    late = await beat(api, "work", executor="ex-1")
    assert late.status_code == 409
    assert late.json() == status_body(
        409,
        "Conflict",
        'Task "work": executor "ex-1" holds no lease on it: it is CANCELLED',
        details={"name": "work", "kind": "Task"},
    )


async def test_a_heartbeat_on_a_task_nobody_claimed_is_409(api: Api) -> None:
    await api.must_create("tasks", task("idle"))
    response = await beat(api, "idle", executor="ex-1")
    assert response.status_code == 409
    assert response.json()["message"] == (
        'Task "idle": executor "ex-1" holds no lease on it: it is PENDING'
    )
    missing = await beat(api, "nowhere", executor="ex-1")
    assert missing.status_code == 404


async def test_moves_of_a_leased_task_name_its_holder(api: Api) -> None:
    await api.must_create("tasks", task("job"))
    await claim(api)
    path = f"/api/v1/namespaces/{api.namespace}/tasks/job/status"
    anonymous = await api.client.put(path, json={"phase": "COMPLETED"}, headers=api.account.headers)
    assert anonymous.status_code == 409
    assert anonymous.json()["message"] == (
        'Task "job" is RUNNING under the lease of executor "ex-1"; this move names no executor '
        "(status.executor must name the lease holder)"
    )
    stranger = await api.client.put(
        path, json={"phase": "COMPLETED", "executor": "ex-9"}, headers=api.account.headers
    )
    assert stranger.status_code == 409
    progress = await api.client.put(
        path,
        json={"phase": "RUNNING", "progress": 50, "executor": "ex-1"},
        headers=api.account.headers,
    )
    assert progress.status_code == 200
    assert "leaseExpiresAt" in progress.json()["status"]
    done = await api.client.put(
        path,
        json={"phase": "COMPLETED", "executor": "ex-1", "result": {"ok": True}},
        headers=api.account.headers,
    )
    assert done.status_code == 200
    status = done.json()["status"]
    assert (status["phase"], status["executor"], status["attempt"], status["result"]) == (
        "COMPLETED",
        "ex-1",
        1,
        {"ok": True},
    )
    assert "leaseExpiresAt" not in status  # no lease runs on a finished task


async def test_an_expired_lease_is_claimed_again_and_its_old_holder_is_refused(
    api: Api, conn: asyncpg.Connection
) -> None:
    await api.must_create("tasks", task("slow"))
    await claim(api, "ex-1")
    assert await claim(api, "ex-2") == []  # the lease runs
    await expire(conn, api, "slow")
    [again] = await claim(api, "ex-2")
    assert (again["status"]["executor"], again["status"]["attempt"]) == ("ex-2", 2)
    stale = await beat(api, "slow", executor="ex-1")
    assert stale.status_code == 409
    assert stale.json()["message"].endswith('executor "ex-2" holds its lease now')
    overwrite = await api.client.put(
        f"/api/v1/namespaces/{api.namespace}/tasks/slow/status",
        json={"phase": "FAILED", "executor": "ex-1"},
        headers=api.account.headers,
    )
    assert overwrite.status_code == 409


async def test_a_task_whose_lease_expired_max_attempts_times_fails(
    api: Api, conn: asyncpg.Connection
) -> None:
    await api.must_create("tasks", task("flaky", maxAttempts=2))
    for attempt in (1, 2):
        [taken] = await claim(api, f"ex-{attempt}")
        assert taken["status"]["attempt"] == attempt
        await expire(conn, api, "flaky")
    assert await claim(api, "ex-3") == []
    status = (await api.get("tasks", "flaky")).json()["status"]
    assert (status["phase"], status["attempt"], status["executor"]) == ("FAILED", 2, "ex-2")
    assert status["errorMessage"] == (
        "the executor's lease expired 2 times (spec.maxAttempts is 2)"
    )
    assert status["completedAt"] is not None and "leaseExpiresAt" not in status


async def test_max_attempts_is_checked(api: Api) -> None:
    for value in (0, 101):
        response = await api.create("tasks", task(unique("t"), maxAttempts=value))
        assert response.status_code == 422
        assert [c["field"] for c in response.json()["details"]["causes"]] == ["spec.maxAttempts"]


async def test_a_view_token_claims_nothing(api: Api, client: httpx.AsyncClient) -> None:
    await api.must_create("tasks", task("kept"))
    made = await client.post(
        "/api/v1/tokens", json={"name": unique("t"), "role": "view"}, headers=api.account.headers
    )
    headers = {"Authorization": f"Bearer {made.json()['token']}"}
    refused = await client.post(
        CLAIM, json={"executor": "e", "namespaces": ["default"]}, headers=headers
    )
    assert refused.status_code == 403
    everywhere = await client.post(CLAIM, json={"executor": "e"}, headers=headers)
    assert everywhere.json() == {"items": []}
