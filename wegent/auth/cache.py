"""A tiny in-process cache with a time to live: per-request auth checks cost no SQL.

Entries expire after ``ttl`` seconds, so changes made by other workers take effect within it;
changes made by this worker invalidate their entries at once.

A miss is loaded once however many requests miss the same key at the same time
(:meth:`TTLCache.fetch`): when a popular entry expires under load, one query refills it and
the other requests wait for that query instead of each sending their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from enum import Enum
from typing import Final, Generic, Literal, TypeVar

V = TypeVar("V")


class _Missing(Enum):
    MISSING = "missing"


#: What :meth:`TTLCache.get` answers for a key it does not hold (``None`` may be a value).
MISSING: Final = _Missing.MISSING
#: Its type, for answers that may be it.
Missing = Literal[_Missing.MISSING]


class _LoaderGone(Exception):
    """The request loading an entry was cancelled: a waiter loads it itself."""


class TTLCache(Generic[V]):
    """Maps keys to values for ``ttl`` seconds; bounded by ``max_entries`` (cleared when full)."""

    def __init__(self, ttl: float, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._data: dict[Hashable, tuple[float, V]] = {}
        self._loading: dict[Hashable, asyncio.Future[V]] = {}
        self._generation = 0  # moved by every invalidation: a load begun before it is not kept

    def get(self, key: Hashable) -> V | Literal[_Missing.MISSING]:
        entry = self._data.get(key)
        if entry is None:
            return MISSING
        expires, value = entry
        if expires < time.monotonic():
            self._data.pop(key, None)
            return MISSING
        return value

    async def fetch(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        """The value of ``key``, loaded by ``load()`` on a miss; concurrent misses of one key
        share one load (its failure is theirs too, but not its cancellation)."""
        while True:
            value = self.get(key)
            if value is not MISSING:
                return value
            pending = self._loading.get(key)
            if pending is None:
                break
            try:
                return await asyncio.shield(pending)
            except _LoaderGone:
                continue
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        generation = self._generation
        try:
            value = await load()
        except BaseException as exc:
            shared = _LoaderGone() if isinstance(exc, asyncio.CancelledError) else exc
            self._settle(key, future, shared)
            raise
        if generation == self._generation:
            self.put(key, value)
        self._settle(key, future, value)
        return value

    def _settle(self, key: Hashable, future: asyncio.Future[V], outcome: V | BaseException) -> None:
        if self._loading.get(key) is future:
            del self._loading[key]
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
            future.exception()  # retrieved: nobody may be waiting, and that is fine
        else:
            future.set_result(outcome)

    def put(self, key: Hashable, value: V) -> None:
        if len(self._data) >= self.max_entries:
            self._data.clear()
        self._data[key] = (time.monotonic() + self.ttl, value)

    def invalidate(self, key: Hashable | None = None) -> None:
        """Forget one key, or everything when no key is given; a load under way is not kept
        (it may have read the record before the change)."""
        self._generation += 1
        if key is None:
            self._data.clear()
            self._loading.clear()
        else:
            self._data.pop(key, None)
            self._loading.pop(key, None)
