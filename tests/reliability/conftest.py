"""Each fault test gets its own PostgreSQL and its own service process, torn down after it."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.reliability.harness import Postgres, Service, remove_tree


@pytest.fixture
async def pg() -> AsyncIterator[Postgres]:
    # Not under pytest's tmp_path: every pytest session that starts (another checkout's, say)
    # makes /tmp/pytest-of-<user> private again, which locks the ``pgserver`` user out of it.
    folder = Path(tempfile.mkdtemp(prefix="wegent-faults-"))
    server = await Postgres.start_new(folder)
    try:
        yield server
    finally:
        await server.close()
        remove_tree(folder)


@pytest.fixture
async def service(pg: Postgres, tmp_path: Path) -> AsyncIterator[Service]:
    """Started and ready; stopped at the end if the test left it running."""
    svc = Service(pg.url, tmp_path / "service")
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


@pytest.fixture
async def http(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with service.client(timeout=30) as client:
        yield client
