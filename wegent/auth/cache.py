"""A tiny in-process cache with a time to live: per-request auth checks cost no SQL.

Entries expire after ``ttl`` seconds, so changes made by other workers take effect within it;
changes made by this worker invalidate their entries at once.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from enum import Enum
from typing import Final, Generic, Literal, TypeVar

V = TypeVar("V")


class _Missing(Enum):
    MISSING = "missing"


#: What :meth:`TTLCache.get` answers for a key it does not hold (``None`` may be a value).
MISSING: Final = _Missing.MISSING


class TTLCache(Generic[V]):
    """Maps keys to values for ``ttl`` seconds; bounded by ``max_entries`` (cleared when full)."""

    def __init__(self, ttl: float, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._data: dict[Hashable, tuple[float, V]] = {}

    def get(self, key: Hashable) -> V | Literal[_Missing.MISSING]:
        entry = self._data.get(key)
        if entry is None:
            return MISSING
        expires, value = entry
        if expires < time.monotonic():
            self._data.pop(key, None)
            return MISSING
        return value

    def put(self, key: Hashable, value: V) -> None:
        if len(self._data) >= self.max_entries:
            self._data.clear()
        self._data[key] = (time.monotonic() + self.ttl, value)

    def invalidate(self, key: Hashable | None = None) -> None:
        """Forget one key, or everything when no key is given."""
        if key is None:
            self._data.clear()
        else:
            self._data.pop(key, None)
