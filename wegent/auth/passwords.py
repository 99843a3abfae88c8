"""argon2id password hashing, off the event loop and with bounded concurrency.

Each hash costs ~19 MiB with the OWASP profile, so at most ``MAX_CONCURRENT_HASHES`` run at once
per worker: a login flood queues instead of exhausting memory.
"""

from __future__ import annotations

import asyncio
import unicodedata
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# (time_cost, memory_cost KiB, parallelism). OWASP's minimum for argon2id: m=19 MiB, t=2, p=1.
OWASP = (2, 19 * 1024, 1)
# The cheapest argon2 allows; for test suites only (WEGENT_ARGON2_PROFILE=test).
TEST = (1, 8, 1)
MAX_CONCURRENT_HASHES = 4


def normalized(password: str) -> str:
    """Passwords are compared after Unicode NFKC normalization (API.md §11): the same password
    typed on another keyboard or input method (full-width digits, composed accents) matches."""
    return unicodedata.normalize("NFKC", password)


class Passwords:
    """Hash and verify passwords; a dummy hash keeps unknown-user logins as slow as real ones."""

    def __init__(self, profile: str) -> None:
        time_cost, memory_cost, parallelism = TEST if profile == "test" else OWASP
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
        self._dummy = self._hasher.hash("not a real password, only spends the same time")

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(
        self, stored_hash: str | None, password: str, *, legacy: str | None = None
    ) -> Literal["ok", "legacy", False]:
        """Whether ``password`` (normalized) matches; with no stored hash, the dummy is checked
        anyway. ``legacy``: the password as typed, tried too when it differs from the
        normalized one, for hashes made before passwords were normalized ("legacy": rehash)."""
        async with self._slots:
            if await asyncio.to_thread(self._verify, stored_hash, password):
                return "ok"
            if legacy is None or legacy == password:
                return False
            return "legacy" if await asyncio.to_thread(self._verify, stored_hash, legacy) else False

    def _verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._dummy, password) and bool(stored_hash)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the stored hash was made with other parameters than the current ones."""
        return self._hasher.check_needs_rehash(stored_hash)
