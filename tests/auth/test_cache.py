"""The auth caches remember answers for a few seconds, "nobody" and "no role" included."""

from __future__ import annotations

import asyncio
import time

import pytest

from wegent.auth.cache import MISSING, TTLCache


def test_none_is_a_value_that_is_remembered() -> None:
    cache: TTLCache[str | None] = TTLCache(60)
    assert cache.get("k") is MISSING
    cache.put("k", None)
    assert cache.get("k") is None  # a hit: an unknown user is not looked up again
    cache.invalidate("k")
    assert cache.get("k") is MISSING


def test_entries_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    cache: TTLCache[int] = TTLCache(5)
    cache.put("k", 1)
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 6)
    assert cache.get("k") is MISSING


def test_a_full_cache_starts_over() -> None:
    cache: TTLCache[int] = TTLCache(60, max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("c")) == (MISSING, 3)
    cache.invalidate()
    assert cache.get("c") is MISSING


async def test_concurrent_misses_of_one_key_share_one_load() -> None:
    cache: TTLCache[int] = TTLCache(60)
    loads = 0
    release = asyncio.Event()

    async def load() -> int:
        nonlocal loads
        loads += 1
        await release.wait()
        return 7

    waiting = [asyncio.create_task(cache.fetch("k", load)) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == [7] * 50
    assert loads == 1
    assert cache.get("k") == 7
    assert await cache.fetch("k", load) == 7  # a hit: no load
    assert loads == 1


async def test_a_failed_load_fails_its_waiters_and_is_not_remembered() -> None:
    cache: TTLCache[int] = TTLCache(60)
    release = asyncio.Event()

    async def broken() -> int:
        await release.wait()
        raise OSError("database gone")

    waiting = [asyncio.create_task(cache.fetch("k", broken)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert [str(o) for o in outcomes] == ["database gone"] * 3
    assert cache.get("k") is MISSING

    async def fine() -> int:
        return 1

    assert await cache.fetch("k", fine) == 1  # the next miss loads again


async def test_a_cancelled_loader_hands_the_load_to_a_waiter() -> None:
    cache: TTLCache[str] = TTLCache(60)
    started = asyncio.Event()

    async def stuck() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    async def fine() -> str:
        return "loaded"

    leader = asyncio.create_task(cache.fetch("k", stuck))
    await started.wait()
    waiter = asyncio.create_task(cache.fetch("k", fine))
    await asyncio.sleep(0)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert await waiter == "loaded"  # not the leader's cancellation: its own load
    assert cache.get("k") == "loaded"


async def test_a_load_begun_before_an_invalidation_is_answered_but_not_kept() -> None:
    cache: TTLCache[str] = TTLCache(60)
    release = asyncio.Event()

    async def old_record() -> str:
        await release.wait()
        return "before the change"

    async def new_record() -> str:
        return "after the change"

    reading = asyncio.create_task(cache.fetch("k", old_record))
    await asyncio.sleep(0)
    cache.invalidate("k")  # this worker changed the record while it was being read
    assert await cache.fetch("k", new_record) == "after the change"  # not the stale load's
    release.set()
    assert await reading == "before the change"
    assert cache.get("k") == "after the change"
