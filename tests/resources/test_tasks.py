"""Tasks: their own table, references, lifecycle, races, filters, immutability (API.md §10)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import register, status_body
from tests.resources.api import Api, bot, ghost, manifest, team

pytestmark = pytest.mark.usefixtures("door")  # through both doors of the resource API

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PENDING = {
    "phase": "PENDING",
    "progress": 0,
    "result": None,
    "errorMessage": None,
    "startedAt": None,
    "completedAt": None,
}


def task(name: str, team_name: str = "t", **spec: Any) -> dict[str, Any]:
    return manifest(
        "Task",
        name,
        {"title": f"do {name}", "prompt": "Please do it.", "teamRef": {"name": team_name}, **spec},
    )


@pytest.fixture(params=["A", "B", "C"])
async def api(client: httpx.AsyncClient, request: pytest.FixtureRequest) -> Api:
    account = await register(client)
    api = Api(client, account, account.username, str(request.param))
    await api.must_create("ghosts", ghost("g"))
    await api.must_create("bots", bot("b", "g"))
    await api.must_create("teams", team("t", "b"))
    return api


async def move(api: Api, name: str, **status: Any) -> httpx.Response:
    """A move: the status itself, or in the Kubernetes family a Task holding it (API.md §14)."""
    body = {"status": status} if api.family == "C" else status
    return await api.request("PUT", "tasks", name, suffix="/status", json=body)


async def test_a_task_is_created_pending_in_its_own_table(
    api: Api, conn: asyncpg.Connection
) -> None:
    body = task("t1")
    body["status"] = {"phase": "COMPLETED"}  # ignored: status is the server's
    created = await api.must_create("tasks", body)
    assert created["status"] == PENDING
    assert created["spec"] == {
        "title": "do t1",
        "prompt": "Please do it.",
        "teamRef": {"name": "t", "namespace": api.namespace},
    }
    row = await conn.fetchrow(
        "SELECT phase, progress, team_namespace, team_name FROM tasks WHERE namespace = $1 AND name = 't1'",
        api.namespace,
    )
    assert tuple(row) == ("PENDING", 0, api.namespace, "t")
    assert await conn.fetchval("SELECT count(*) FROM kinds WHERE kind = 'Task'") == 0


async def test_task_references_are_checked(api: Api) -> None:
    response = await api.create("tasks", task("t2", "no-team", workspaceRef={"name": "no-ws"}))
    assert response.status_code == 422
    assert [c["field"] for c in response.json()["details"]["causes"]] == [
        "spec.teamRef",
        "spec.workspaceRef",
    ]


async def test_the_whole_lifecycle(api: Api) -> None:
    await api.must_create("tasks", task("life"))
    running = await move(api, "life", phase="RUNNING", progress=10)
    assert running.status_code == 200
    status = running.json()["status"]
    assert (status["phase"], status["progress"], status["completedAt"]) == ("RUNNING", 10, None)
    assert TIMESTAMP.match(status["startedAt"])
    progress = await move(api, "life", phase="RUNNING", progress=60, result={"partial": [1, 2]})
    assert (progress.json()["status"]["progress"], progress.json()["status"]["result"]) == (
        60,
        {"partial": [1, 2]},
    )
    assert progress.json()["status"]["startedAt"] == status["startedAt"]
    done = await move(api, "life", phase="COMPLETED", result={"answer": 42})
    final = done.json()["status"]
    assert (final["phase"], final["progress"], final["result"]) == (
        "COMPLETED",
        100,
        {"answer": 42},
    )
    assert TIMESTAMP.match(final["completedAt"])
    assert (await api.get("tasks", "life")).json()["status"] == final


@pytest.mark.parametrize(
    ("path", "last"),
    [
        (["CANCELLED"], "CANCELLED"),
        (["RUNNING", "FAILED"], "FAILED"),
        (["RUNNING", "CANCELLED"], "CANCELLED"),
    ],
)
async def test_allowed_endings(api: Api, path: list[str], last: str) -> None:
    await api.must_create("tasks", task("end"))
    for phase in path:
        response = await move(
            api, "end", phase=phase, errorMessage="boom" if phase == "FAILED" else None
        )
        assert response.status_code == 200, response.text
    status = (await api.get("tasks", "end")).json()["status"]
    assert status["phase"] == last
    if last == "FAILED":
        assert status["errorMessage"] == "boom"


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([], "COMPLETED"),
        ([], "FAILED"),
        ([], "PENDING"),
        (["RUNNING"], "PENDING"),
        (["RUNNING", "COMPLETED"], "RUNNING"),
        (["RUNNING", "COMPLETED"], "CANCELLED"),
        (["RUNNING", "FAILED"], "COMPLETED"),
        (["CANCELLED"], "RUNNING"),
        (["CANCELLED"], "CANCELLED"),
    ],
)
async def test_refused_moves_are_409_naming_the_phase(
    api: Api, path: list[str], refused: str
) -> None:
    await api.must_create("tasks", task("no"))
    for phase in path:
        assert (await move(api, "no", phase=phase)).status_code == 200
    current = path[-1] if path else "PENDING"
    response = await move(api, "no", phase=refused)
    assert response.status_code == 409
    assert response.json() == status_body(
        409,
        "Conflict",
        f'Task "no" is {current}; it cannot move to {refused}',
        details={"name": "no", "kind": "Task"},
    )


async def test_progress_never_goes_down(api: Api) -> None:
    await api.must_create("tasks", task("p"))
    await move(api, "p", phase="RUNNING", progress=50)
    response = await move(api, "p", phase="RUNNING", progress=40)
    assert response.status_code == 422
    assert response.json()["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: 40: progress never goes down (it is 50)",
            "field": "progress",
        }
    ]
    for bad in (-1, 101):
        assert (await move(api, "p", phase="RUNNING", progress=bad)).status_code == 422
    assert (await move(api, "p", phase="SLEEPING")).status_code == 422
    assert (await api.get("tasks", "p")).json()["status"]["progress"] == 50


async def test_cancel(api: Api) -> None:
    await api.must_create("tasks", task("c"))
    cancelled = await api.product.request("POST", "tasks", "c", suffix="/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"]["phase"] == "CANCELLED"
    again = await api.product.request("POST", "tasks", "c", suffix="/cancel")
    assert again.status_code == 409
    assert again.json()["message"] == 'Task "c" is CANCELLED; it cannot move to CANCELLED'
    assert (
        await api.product.request("POST", "tasks", "missing", suffix="/cancel")
    ).status_code == 404


async def test_racing_moves_out_of_running_one_wins(api: Api) -> None:
    await api.must_create("tasks", task("race"))
    await move(api, "race", phase="RUNNING")
    answers = await asyncio.gather(
        move(api, "race", phase="COMPLETED"),
        move(api, "race", phase="FAILED"),
        move(api, "race", phase="CANCELLED"),
        api.product.request("POST", "tasks", "race", suffix="/cancel"),
    )
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    winner = next(a for a in answers if a.status_code == 200).json()["status"]["phase"]
    assert (await api.get("tasks", "race")).json()["status"]["phase"] == winner


async def test_spec_is_immutable_while_active_labels_are_not(api: Api) -> None:
    created = await api.must_create("tasks", task("im"))
    changed = task("im")
    changed["spec"]["prompt"] = "Something else."
    refused = await api.replace("tasks", "im", changed)
    assert refused.status_code == 422
    assert refused.json()["details"]["causes"] == [
        {
            "reason": "FieldValueForbidden",
            "message": "Forbidden: the spec cannot change while the task is PENDING or RUNNING",
            "field": "spec",
        }
    ]
    assert (await api.patch("tasks", "im", {"spec": {"title": "new"}})).status_code == 422
    labelled = await api.patch("tasks", "im", {"metadata": {"labels": {"priority": "high"}}})
    assert labelled.status_code == 200
    assert labelled.json()["metadata"]["labels"] == {"priority": "high"}
    assert labelled.json()["spec"] == created["spec"]
    assert labelled.json()["status"]["phase"] == "PENDING"
    await api.product.request("POST", "tasks", "im", suffix="/cancel")
    assert (await api.replace("tasks", "im", changed)).status_code == 200


async def test_filters_by_phase_and_team(api: Api) -> None:
    await api.must_create("bots", bot("b2", "g"))
    await api.must_create("teams", team("t2", "b2"))
    for name, team_name in (("a", "t"), ("b", "t"), ("c", "t2"), ("d", "t2")):
        await api.must_create("tasks", task(name, team_name))
    await move(api, "b", phase="RUNNING")
    await move(api, "c", phase="RUNNING")

    async def names(**params: str) -> list[str]:
        response = await api.list("tasks", params=params)
        assert response.status_code == 200, response.text
        return [i["metadata"]["name"] for i in response.json()["items"]]

    assert await names(phase="RUNNING") == ["b", "c"]
    assert await names(phase="PENDING") == ["a", "d"]
    assert await names(team="t2") == ["c", "d"]
    assert await names(team="t", phase="RUNNING") == ["b"]
    assert await names(phase="COMPLETED") == []
    assert (await api.list("tasks", params={"phase": "LOST"})).status_code == 400
    first = await api.list("tasks", params={"team": "t", "limit": "1"})
    token = first.json()["metadata"]["continue"]
    second = await api.list("tasks", params={"team": "t", "limit": "1", "continue": token})
    assert [i["metadata"]["name"] for i in second.json()["items"]] == ["b"]
    foreign = await api.list("tasks", params={"team": "t2", "limit": "1", "continue": token})
    assert foreign.status_code == 400


async def test_a_team_with_live_tasks_cannot_be_deleted(api: Api) -> None:
    await api.must_create("tasks", task("keep"))
    response = await api.delete("teams", "t")
    assert response.status_code == 409
    assert (
        response.json()["details"]["causes"][0]["message"]
        == f'referenced by Task "keep" in namespace "{api.namespace}"'
    )
    assert (await api.delete("tasks", "keep")).status_code == api.deleted
    assert (await api.delete("teams", "t")).status_code == api.deleted


async def test_tasks_soft_delete_and_restore(api: Api) -> None:
    await api.must_create("tasks", task("sd"))
    await move(api, "sd", phase="RUNNING", progress=30)
    assert (await api.delete("tasks", "sd")).status_code == api.deleted
    assert (await api.get("tasks", "sd")).status_code == 404
    trash = (await api.list("tasks", params={"deleted": "true"})).json()["items"]
    assert [i["metadata"]["name"] for i in trash] == ["sd"]
    restored = await api.product.restore("tasks", "sd")
    assert restored.status_code == 200
    assert restored.json()["status"]["progress"] == 30


async def test_executor_round_trip_from_another_user(client: httpx.AsyncClient, api: Api) -> None:
    """A viewer sees tasks but cannot move them; an editor can."""
    viewer = await register(client)
    await client.put(
        f"/api/v1/namespaces/{api.namespace}/members/{viewer.username}",
        json={"role": "view"},
        headers=api.account.headers,
    )
    await api.must_create("tasks", task("shared"))
    as_viewer = Api(client, viewer, api.namespace, api.family)
    assert (await as_viewer.get("tasks", "shared")).status_code == 200
    assert (await move(as_viewer, "shared", phase="RUNNING")).status_code == 403
    assert (
        await as_viewer.product.request("POST", "tasks", "shared", suffix="/cancel")
    ).status_code == 403


async def test_progress_written_with_a_zero_fraction_is_an_integer(api: Api) -> None:
    await api.must_create("tasks", task("f"))
    response = await move(api, "f", phase="RUNNING", progress=5.0)
    assert response.status_code == 200, response.text
    assert response.json()["status"]["progress"] == 5
    assert (await move(api, "f", phase="RUNNING", progress=5.5)).status_code == 422


async def test_a_team_filter_holding_a_nul_is_400(api: Api) -> None:
    response = await api.list("tasks", params={"team": "t\x00"})
    assert response.status_code == 400
    assert response.json()["reason"] == "BadRequest"
