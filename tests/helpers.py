"""Shared test helpers: accounts through the real API, unique names, Status bodies."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
from asgi_lifespan import LifespanManager
from litestar import Litestar

from wegent.settings import Settings

PASSWORD = "correct horse battery"


def env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    if raw:
        raise ValueError(f"{name} must be true or false, got {raw!r}")
    return default


# WEGENT_TEST_PREPARED_STATEMENTS=false: the apps and service processes the tests start run as
# behind PgBouncer in transaction mode, with no named prepared statements
# (WEGENT_DB_PREPARED_STATEMENTS=false); docs/operations.md runs the API tests that way.
PREPARED_STATEMENTS = env_flag("WEGENT_TEST_PREPARED_STATEMENTS", True)
SERVICE_PREPARED_STATEMENTS = {"WEGENT_DB_PREPARED_STATEMENTS": str(PREPARED_STATEMENTS).lower()}


def unique(prefix: str = "u") -> str:
    """A fresh DNS-label name, so tests never collide in the shared database."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Account:
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register(client: httpx.AsyncClient, username: str | None = None) -> Account:
    """Register through the API and log in."""
    username = username or unique()
    created = await client.post(
        "/api/v1/auth/register", json={"username": username, "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    return await login(client, username)


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> Account:
    response = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return Account(username, response.json()["access_token"])


def status_body(code: int, reason: str, message: str, **extra: object) -> dict[str, object]:
    """The exact Status body of API.md §12."""
    body: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
        "detail": message,
    }
    body.update(extra)
    return body


@contextlib.asynccontextmanager
async def started(
    settings: Settings, prepare: Callable[[Litestar], None] | None = None
) -> AsyncIterator[tuple[Litestar, httpx.AsyncClient]]:
    """An app of its own on ``settings``, started (its lifespan on the test's loop), with an
    in-process client; ``prepare`` may change the app before it starts."""
    from wegent.app import create_app

    app = create_app(settings)
    if prepare is not None:
        prepare(app)
    async with (
        LifespanManager(app, startup_timeout=60),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://own.test"
        ) as http,
    ):
        yield app, http
