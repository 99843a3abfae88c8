"""Who the caller is and what it may do in a namespace, decided before any lookup.

Both answers come from the server's own records (never from token claims) through short-lived
in-process caches, so a request pays no SQL for them and a disabled or demoted user loses access
within ``user_cache_ttl_s`` seconds.
"""

from __future__ import annotations

from typing import Literal

import asyncpg
import msgspec

from wegent.auth.cache import MISSING, Missing, TTLCache
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
_EDITS_IN = (
    "SELECT n.name FROM namespace_members m JOIN namespaces n ON n.id = m.namespace "
    "WHERE m.member = $1 AND m.role IN ('edit', 'admin')"
)
_MEMBER_OF = (
    "SELECT n.name FROM namespace_members m JOIN namespaces n ON n.id = m.namespace "
    "WHERE m.member = $1"
)


_UNEXPIRED = (
    "SELECT true FROM api_tokens WHERE id = $1 AND (expires_at IS NULL OR expires_at > now())"
)


async def _readable(conn: asyncpg.Connection, principal: Principal) -> list[str] | None:
    """The namespaces a caller reads, or None for all of them: an admin's every one, anyone
    else's the shared ones and its own roles'; in both cases within its token's namespaces."""
    token = principal.token
    within = None if token is None else token.namespaces
    if principal.role == "admin":
        return None if within is None else sorted(within)
    rows = await conn.fetch(_MEMBER_OF, principal.id)
    names = {*SHARED, *(r["name"] for r in rows)}
    return sorted(names if within is None else names & within)


_RANK = {"view": 0, "edit": 1, "admin": 2}


class TokenScope(msgspec.Struct, frozen=True):
    """The API token a request came with (API.md §16): what narrows its user's rights."""

    id: int
    name: str
    namespaces: frozenset[str] | None  # None: every namespace its user may use
    role: str | None  # None: no cap
    expires_at: float | None  # Unix time; None: never

    @property
    def narrows(self) -> bool:
        return self.namespaces is not None or self.role is not None

    def narrow(self, namespace: str, role: str) -> str | None:
        """``role`` (its user's in ``namespace``) as far as this token may use it."""
        if self.namespaces is not None and namespace not in self.namespaces:
            return None
        if self.role is not None and _RANK[role] > _RANK[self.role]:
            return self.role
        return role


class Principal(msgspec.Struct, frozen=True):
    """The authenticated caller as the server's records describe it now, and the API token it
    came with, if any."""

    id: int
    username: str
    role: str
    token: TokenScope | None = None

    @property
    def is_admin(self) -> bool:
        """A global admin: an admin user, by password or through a token that narrows nothing."""
        return self.role == "admin" and (self.token is None or not self.token.narrows)


def describe(principal: Principal) -> str:
    """The caller as errors name it: ``user "alice"`` or ``token "ci" of user "alice"``."""
    if principal.token is None:
        return f'user "{principal.username}"'
    return f'token "{principal.token.name}" of user "{principal.username}"'


def _matching(claims: Claims, user: Principal | None) -> Principal:
    if user is None or user.username != claims.username:
        raise Unauthorized()
    return user


def _narrowed(principal: Principal, namespace: str, role: str | None) -> str | None:
    if principal.token is None or role is None:
        return role
    return principal.token.narrow(namespace, role)


def _allowed(role: str | None, verb: Verb) -> bool:
    return role is not None and verb in _ALLOWED[role]


class Access:
    """Resolves callers and their namespace roles, with caches a few seconds long."""

    def __init__(self, db: Database, ttl: float) -> None:
        self._db = db
        self._users: TTLCache[Principal | None] = TTLCache(ttl)
        self._roles: TTLCache[str | None] = TTLCache(ttl)
        self._editing: TTLCache[frozenset[str]] = TTLCache(ttl)

    # The checks every request makes answer from the caches without a coroutine: the
    # ``known_*`` methods give the answer, or MISSING when a cache must be filled first (then
    # the async method of the same name loads it and applies the same rule).

    def known_principal(self, claims: Claims) -> Principal | Missing:
        """:meth:`principal` when the user cache holds the user, else MISSING."""
        user = self._users.get(claims.user_id)
        return user if user is MISSING else _matching(claims, user)

    async def principal(self, claims: Claims) -> Principal:
        """The caller behind a valid login token; unknown or disabled users are the same 401."""
        return _matching(claims, await self.user(claims.user_id))

    def known_user(self, user_id: int) -> Principal | Missing | None:
        return self._users.get(user_id)

    async def user(self, user_id: int) -> Principal | None:
        """The active user ``user_id`` as its record says (within the cache's time to live), or
        None when it is unknown or disabled (remembered too)."""
        cached = self._users.get(user_id)
        if cached is not MISSING:
            return cached

        async def load() -> Principal | None:
            async with self._db.acquire() as conn:
                row = await conn.fetchrow(_ACTIVE_USER, user_id)
            return Principal(row["id"], row["username"], row["role"]) if row else None

        return await self._users.fetch(user_id, load)

    @staticmethod
    def resolve(principal: Principal, namespace: str) -> str:
        """``default`` is the caller's personal namespace, named after the user (§3)."""
        return principal.username if namespace == DEFAULT else namespace

    def known_role(self, principal: Principal, namespace: str) -> str | Missing | None:
        """:meth:`role` when it needs no lookup (or the cache holds it), else MISSING."""
        if principal.role == "admin":
            role: str | Missing | None = "admin"
        elif namespace in SHARED:
            role = "view"
        else:
            role = self._roles.get((principal.id, namespace))
        return role if role is MISSING else _narrowed(principal, namespace, role)

    def known_allows(self, principal: Principal, namespace: str, verb: Verb) -> bool | Missing:
        """:meth:`allows` when it needs no lookup (or the cache holds it), else MISSING."""
        role = self.known_role(principal, namespace)
        return role if role is MISSING else _allowed(role, verb)

    async def role(
        self, principal: Principal, namespace: str, conn: asyncpg.Connection | None = None
    ) -> str | None:
        """The caller's role in ``namespace`` (already resolved), or None; a token's caller
        gets its user's role as far as the token allows.

        A caller already holding a connection passes it: taking a second one from the pool
        while holding the first can exhaust the pool under load and wait forever.
        """
        role = self.known_role(principal, namespace)
        if role is not MISSING:
            return role
        key = (principal.id, namespace)
        if conn is not None:  # never waits for a load that waits for the pool: it holds a slot
            found: str | None = await conn.fetchval(_ROLE, namespace, principal.id)
            self._roles.put(key, found)  # None (no role) is remembered too
            return _narrowed(principal, namespace, found)

        async def load() -> str | None:
            async with self._db.acquire() as own:
                loaded: str | None = await own.fetchval(_ROLE, namespace, principal.id)
            return loaded

        return _narrowed(principal, namespace, await self._roles.fetch(key, load))

    async def allows(
        self,
        principal: Principal,
        namespace: str,
        verb: Verb,
        conn: asyncpg.Connection | None = None,
    ) -> bool:
        return _allowed(await self.role(principal, namespace, conn), verb)

    async def require(self, principal: Principal, namespace: str, verb: Verb) -> str:
        """Resolve ``namespace`` and check ``verb`` on it; 403 whether or not it exists."""
        resolved = self.resolve(principal, namespace)
        role = self.known_role(principal, resolved)
        if role is MISSING:
            role = await self.role(principal, resolved)
        if not _allowed(role, verb):
            raise Forbidden(
                f'{describe(principal)} cannot {verb} in namespace "{resolved}"',
                kind="Namespace",
                name=resolved,
            )
        return resolved

    async def readable(self, principal: Principal) -> list[str] | None:
        """Every namespace the caller can read, or None for all of them."""
        token = principal.token
        if principal.role == "admin" and (token is None or token.namespaces is None):
            return None
        async with self._db.acquire() as conn:
            return await _readable(conn, principal)

    async def writable(self, principal: Principal) -> list[str] | None:
        """Every namespace the caller can write in, or None for all of them (its user's, from a
        cache as short as the roles')."""
        token = principal.token
        if token is not None and token.role == "view":
            return []
        within = None if token is None else token.namespaces
        if principal.role == "admin":
            return None if within is None else sorted(within)

        async def load() -> frozenset[str]:
            async with self._db.acquire() as conn:
                rows = await conn.fetch(_EDITS_IN, principal.id)
            return frozenset(r["name"] for r in rows)

        names = self._editing.get(principal.id)
        if names is MISSING:
            names = await self._editing.fetch(principal.id, load)
        return sorted(names if within is None else names & within)

    async def current(self, principal: Principal) -> tuple[Principal | None, list[str] | None]:
        """The caller as the records say now, uncached (None when its user is gone or
        disabled, or its token revoked or expired), and what it may read (as
        :meth:`readable`): open watches re-check their callers with it."""
        token = principal.token
        async with self._db.acquire() as conn:
            row = await conn.fetchrow(_ACTIVE_USER, principal.id)
            if row is None or (token is not None and not await conn.fetchval(_UNEXPIRED, token.id)):
                return None, []
            now = Principal(row["id"], row["username"], row["role"], token)
            return now, await _readable(conn, now)

    def forget_user(self, user_id: int) -> None:
        self._users.invalidate(user_id)

    def forget_roles(self) -> None:
        """Membership changed in this worker: drop cached roles now rather than at expiry."""
        self._roles.invalidate()
        self._editing.invalidate()
