"""Every failure is a Kubernetes ``Status`` body, framework errors included (API.md §12)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import asyncpg
import httpx
import pytest
from litestar import Litestar, get, post
from litestar.params import Body

from tests.helpers import started, status_body
from wegent.auth.policy import policy
from wegent.errors import Cause, Invalid, TooManyRequests
from wegent.settings import Settings


@get("/test-errors/boom", opt=policy("public"), include_in_schema=False, sync_to_thread=False)
def boom() -> None:
    raise RuntimeError("SELECT secret FROM users -- constraint users_pkey")


@get("/test-errors/db-down", opt=policy("public"), include_in_schema=False, sync_to_thread=False)
def db_down() -> None:
    raise asyncpg.CannotConnectNowError("the database system is starting up")


@get("/test-errors/invalid", opt=policy("public"), include_in_schema=False, sync_to_thread=False)
def invalid() -> None:
    causes = [Cause(reason="FieldValueRequired", message="required", field="spec.systemPrompt")]
    raise Invalid('Ghost "g" is invalid', kind="Ghost", name="g", causes=causes)


@get("/test-errors/throttled", opt=policy("public"), include_in_schema=False, sync_to_thread=False)
def throttled() -> None:
    raise TooManyRequests("slow down", retry_after=7)


@post("/test-errors/echo", opt=policy("public"), include_in_schema=False, sync_to_thread=False)
def echo(data: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    return data


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app of its own, so these test-only routes never reach the shared app's route table."""

    def register(app: Litestar) -> None:
        for handler in (boom, db_down, invalid, throttled, echo):
            app.register(handler)

    async with started(settings, register) as (_, http):
        yield http


async def test_unknown_path_is_404_status_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/path")
    assert response.status_code == 404
    assert response.json() == status_body(404, "NotFound", "the requested path was not found")


async def test_wrong_method_is_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/healthz")
    assert response.status_code == 405
    assert response.json() == status_body(
        405, "MethodNotAllowed", "the method is not allowed on this path"
    )
    assert "GET" in response.headers["allow"]


async def test_unexpected_error_is_500_without_internals(client: httpx.AsyncClient) -> None:
    response = await client.get("/test-errors/boom")
    assert response.status_code == 500
    assert response.json() == status_body(500, "InternalError", "an internal error occurred")
    assert "SELECT" not in response.text and "users_pkey" not in response.text


async def test_database_outage_is_503(client: httpx.AsyncClient) -> None:
    response = await client.get("/test-errors/db-down")
    assert response.status_code == 503
    assert response.json() == status_body(
        503, "ServiceUnavailable", "the database is unavailable; retry later"
    )


async def test_domain_error_carries_details_and_causes(client: httpx.AsyncClient) -> None:
    response = await client.get("/test-errors/invalid")
    assert response.status_code == 422
    assert response.json() == status_body(
        422,
        "Invalid",
        'Ghost "g" is invalid',
        details={
            "name": "g",
            "kind": "Ghost",
            "causes": [
                {
                    "reason": "FieldValueRequired",
                    "message": "required",
                    "field": "spec.systemPrompt",
                }
            ],
        },
    )


async def test_throttle_carries_retry_after(client: httpx.AsyncClient) -> None:
    response = await client.get("/test-errors/throttled")
    assert (response.status_code, response.headers["retry-after"]) == (429, "7")
    assert response.json() == status_body(429, "TooManyRequests", "slow down")


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/test-errors/echo",
        content=b"{" + b" " * (1024 * 1024 + 10) + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == status_body(
        413, "RequestEntityTooLarge", "the request body is too large"
    )
