"""The auth caches remember answers for a few seconds, "nobody" and "no role" included."""

from __future__ import annotations

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
