"""Who the caller is and what it may do in a namespace, decided before any lookup.

Both answers come from the server's own records (never from token claims) through short-lived
in-process caches, so a request pays no SQL for them and a disabled or demoted user loses access
within ``user_cache_ttl_s`` seconds.
"""

from __future__ import annotations

from typing import Literal

import asyncpg
import msgspec

from wegent.auth.cache import MISSING, TTLCache
from wegent.auth.tokens import Claims
from wegent.db.engine import Database
from wegent.errors import Forbidden, Unauthorized
from wegent.names import DEFAULT, SHARED

Verb = Literal["read", "write", "admin"]
_ALLOWED: dict[str, frozenset[str]] = {
    "view": frozenset({"read"}),
    "edit": frozenset({"read", "write"}),
    "admin": frozenset({"read", "write", "admin"}),
}
_ROLE = (
    "SELECT m.role FROM namespace_members m JOIN namespaces n ON n.id = m.namespace "
    "WHERE n.name = $1 AND m.member = $2"
)

_ACTIVE_USER = "SELECT id, username, role FROM users WHERE id = $1 AND is_active"
_MEMBER_OF = (
    "SELECT n.name FROM namespace_members m JOIN namespaces n ON n.id = m.namespace "
    "WHERE m.member = $1"
)


async def _readable(conn: asyncpg.Connection, user_id: int) -> list[str]:
    """The namespaces a user who is not an admin reads: the shared ones and its own roles'."""
    rows = await conn.fetch(_MEMBER_OF, user_id)
    return sorted({*SHARED, *(r["name"] for r in rows)})


class Principal(msgspec.Struct, frozen=True):
    """The authenticated caller as the server's records describe it now."""

    id: int
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class Access:
    """Resolves callers and their namespace roles, with caches a few seconds long."""

    def __init__(self, db: Database, ttl: float) -> None:
        self._db = db
        self._users: TTLCache[Principal | None] = TTLCache(ttl)
        self._roles: TTLCache[str | None] = TTLCache(ttl)

    async def principal(self, claims: Claims) -> Principal:
        """The caller behind a valid token; unknown or disabled users are the same 401."""
        cached = self._users.get(claims.user_id)
        if cached is MISSING:  # unknown and disabled users are remembered too, as None
            async with self._db.acquire() as conn:
                row = await conn.fetchrow(_ACTIVE_USER, claims.user_id)
            cached = Principal(row["id"], row["username"], row["role"]) if row else None
            self._users.put(claims.user_id, cached)
        if cached is None or cached.username != claims.username:
            raise Unauthorized()
        return cached

    @staticmethod
    def resolve(principal: Principal, namespace: str) -> str:
        """``default`` is the caller's personal namespace, named after the user (§3)."""
        return principal.username if namespace == DEFAULT else namespace

    async def role(
        self, principal: Principal, namespace: str, conn: asyncpg.Connection | None = None
    ) -> str | None:
        """The caller's role in ``namespace`` (already resolved), or None.

        A caller already holding a connection passes it: taking a second one from the pool
        while holding the first can exhaust the pool under load and wait forever.
        """
        if principal.is_admin:
            return "admin"
        if namespace in SHARED:
            return "view"
        key = (principal.id, namespace)
        role = self._roles.get(key)
        if role is MISSING:
            if conn is None:
                async with self._db.acquire() as own:
                    role = await own.fetchval(_ROLE, namespace, principal.id)
            else:
                role = await conn.fetchval(_ROLE, namespace, principal.id)
            self._roles.put(key, role)  # None (no role) is remembered too
        return role

    async def allows(
        self,
        principal: Principal,
        namespace: str,
        verb: Verb,
        conn: asyncpg.Connection | None = None,
    ) -> bool:
        role = await self.role(principal, namespace, conn)
        return role is not None and verb in _ALLOWED[role]

    async def require(self, principal: Principal, namespace: str, verb: Verb) -> str:
        """Resolve ``namespace`` and check ``verb`` on it; 403 whether or not it exists."""
        resolved = self.resolve(principal, namespace)
        if not await self.allows(principal, resolved, verb):
            raise Forbidden(
                f'user "{principal.username}" cannot {verb} in namespace "{resolved}"',
                kind="Namespace",
                name=resolved,
            )
        return resolved

    async def readable(self, principal: Principal) -> list[str] | None:
        """Every namespace the caller can read, or None for a global admin (all of them)."""
        if principal.is_admin:
            return None
        async with self._db.acquire() as conn:
            return await _readable(conn, principal.id)

    async def current(self, user_id: int) -> tuple[Principal | None, list[str] | None]:
        """The user as the records say now, uncached (None when gone or disabled), and what
        it may read (as :meth:`readable`): open watches re-check their callers with it."""
        async with self._db.acquire() as conn:
            row = await conn.fetchrow(_ACTIVE_USER, user_id)
            if row is None:
                return None, []
            principal = Principal(row["id"], row["username"], row["role"])
            if principal.is_admin:
                return principal, None
            return principal, await _readable(conn, user_id)

    def forget_user(self, user_id: int) -> None:
        self._users.invalidate(user_id)

    def forget_roles(self) -> None:
        """Membership changed in this worker: drop cached roles now rather than at expiry."""
        self._roles.invalidate()
