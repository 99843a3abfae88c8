"""``WEGENT_DB_PREPARED_STATEMENTS=false`` (PgBouncer in transaction mode): no named prepared
statement on any connection of the service, hot reads included; on: the hot reads are prepared.

The whole API suite runs that way with ``WEGENT_TEST_PREPARED_STATEMENTS=false`` (tests/conftest.py,
docs/operations.md); this test runs in every run.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from litestar import Litestar

from tests.conftest import make_settings
from tests.helpers import register, started
from tests.resources.api import Api, ghost

NAMED = "SELECT count(*) FROM pg_prepared_statements"


async def named_on_the_hub(app: Litestar) -> int:
    """Named statements on the watch hub's own connection (read under its lock)."""
    hub = app.state.services.watch
    async with hub._lock:
        conn: asyncpg.Connection = hub._conn
        return int(await conn.fetchval(NAMED))


@pytest.mark.parametrize("prepared", [True, False], ids=["on", "off"])
async def test_named_prepared_statements_only_when_on(
    prepared: bool, make_database: object, tmp_path: Path
) -> None:
    url = await make_database()  # type: ignore[operator]
    settings = make_settings(
        url, tmp_path, pool_min_size=1, pool_max_size=1, db_prepared_statements=prepared
    )
    async with started(settings) as (app, http):
        account = await register(http)
        api = Api(http, account, account.username, "B")
        await api.must_create("ghosts", ghost("g"))
        for _ in range(2):  # the hot reads, twice: a kept statement is used again
            assert (await api.get("ghosts", "g")).status_code == 200
            assert (await api.list("ghosts")).status_code == 200
        assert (await http.get("/api/v1/users/me", headers=api.account.headers)).status_code == 200
        async with app.state.db.pool.acquire() as conn:  # the pool's one connection: all of it
            on_the_pool = int(await conn.fetchval(NAMED))
        on_the_hub = await named_on_the_hub(app)
        engine_config = app.state.db.engine.config
    if prepared:
        assert on_the_pool >= 2 and on_the_hub >= 1
        assert engine_config == {"dsn": url}
    else:
        assert (on_the_pool, on_the_hub) == (0, 0)
        assert engine_config == {"dsn": url, "statement_cache_size": 0}
