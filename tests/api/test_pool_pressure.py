"""A write never waits for a second pooled connection while holding one (no self-deadlock)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.conftest import make_settings
from tests.helpers import register, started
from tests.resources.api import Api, bot, ghost, manifest, team


async def test_writes_with_references_on_a_pool_of_one(
    make_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    settings = make_settings(
        await make_database(),
        tmp_path,
        pool_min_size=1,
        pool_max_size=1,
        user_cache_ttl_s=0.0,  # every access check asks the database
        pool_acquire_timeout_s=3.0,
    )
    async with started(settings) as (_, http):
        account = await register(http)
        api = Api(http, account, account.username, "B")
        await api.must_create("ghosts", ghost("g"))
        created = await asyncio.wait_for(api.create("bots", bot("b", "g", "ClaudeCode")), 10)
        assert created.status_code == 201, created.text
        answers = await asyncio.wait_for(
            asyncio.gather(*(api.create("bots", bot(f"b{i}", "g")) for i in range(6))), 20
        )
        assert [a.status_code for a in answers] == [201] * 6
        await api.must_create("teams", team("t", "b"))
        refused = await asyncio.wait_for(api.delete("bots", "b"), 10)
        assert refused.status_code == 409
        task = manifest("Task", "job", {"title": "t", "prompt": "p", "teamRef": {"name": "t"}})
        assert (await asyncio.wait_for(api.create("tasks", task), 10)).status_code == 201
