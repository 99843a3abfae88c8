"""API tokens (API.md §16): long-lived, narrow, revocable credentials for machines.

A token is ``wg-`` and 43 random URL-safe characters (256 bits). Only its SHA-256 digest is
stored, under a unique index: a request's token is hashed, looked up through the index and the
digests compared in constant time. A fast hash is enough for a secret this long (nobody guesses
2^256); a password hash would cost every request milliseconds.

What a request pays: nothing once warm. A token's row is remembered for at most
:data:`REVOCATION_S` seconds (unknown tokens too), its user through the same short cache as a
login token's, so revoking a token, its expiry or disabling its user refuses it everywhere
within seconds, and the lookup that refreshes the cache also records ``lastUsedAt`` — at most
once a minute per token, whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from datetime import datetime

import asyncpg
import msgspec

from wegent.auth.access import Access, Principal, TokenScope
from wegent.auth.cache import MISSING, Missing, TTLCache
from wegent.auth.models import TokenCreate, TokenCreated, TokenList, TokenOut
from wegent.auth.users import rfc3339
from wegent.db.engine import Database
from wegent.errors import AlreadyExists, Forbidden, NotFound, Unauthorized
from wegent.names import DEFAULT

PREFIX = "wg-"
_SECRET = re.compile(r"wg-[A-Za-z0-9_-]{43}")  # PREFIX + secrets.token_urlsafe(32)
DEFAULT_DAYS = 90
#: Tokens one user may hold; made under a lock on the user's row, so never more.
MAX_TOKENS_PER_USER = 100
#: The longest a revoked or expired token, or one whose user is disabled, is still accepted.
REVOCATION_S = 5.0
LAST_USED_EVERY_S = 60

_COLUMNS = "name, prefix, created_at, expires_at, last_used_at, namespaces, role"
# The lookup also records the use, once a minute at most: concurrent lookups of one token in
# several processes wait for the first one's row lock and then see a recent ``last_used_at``.
_LOOKUP = f"""
WITH t AS (
    SELECT id, owner, name, namespaces, role, expires_at, secret_hash FROM api_tokens
    WHERE secret_hash = $1
), used AS (
    UPDATE api_tokens SET last_used_at = now()
    WHERE id = (SELECT id FROM t) AND (expires_at IS NULL OR expires_at > now())
    AND (last_used_at IS NULL OR last_used_at <= now() - make_interval(secs => {LAST_USED_EVERY_S}))
)
SELECT id, owner, name, namespaces, role, extract(epoch FROM expires_at)::float8 AS expires,
    secret_hash FROM t
"""
_CREATE = f"""
INSERT INTO api_tokens (owner, name, prefix, secret_hash, namespaces, role, created_at,
    expires_at)
VALUES ($1, $2, $3, $4, $5, $6, now(), now() + make_interval(days => $7))
RETURNING {_COLUMNS}
"""
_OWNER = "SELECT id, service_account FROM users WHERE username = $1"
NOT_THROUGH_ONE = (
    "an API token cannot manage API tokens: log in with a password to create, list or revoke them"
)


class Grant(msgspec.Struct, frozen=True):
    """A stored token as a request needs it: whose it is and how it narrows its user."""

    owner: int
    digest: bytes
    scope: TokenScope


def digest_of(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _digest(secret: str) -> bytes:
    """The digest an API token is stored under; 401 for text that is not one."""
    if not _SECRET.fullmatch(secret):
        raise Unauthorized()
    return digest_of(secret)


def _valid(grant: Grant | None, digest: bytes) -> Grant:
    """The grant of a token that is known, matches and has not expired; else 401."""
    if grant is None or not hmac.compare_digest(grant.digest, digest):
        raise Unauthorized()
    expires_at = grant.scope.expires_at
    if expires_at is not None and expires_at <= time.time():
        raise Unauthorized()
    return grant


def _caller(user: Principal | None, scope: TokenScope) -> Principal:
    """The caller a token stands for: its user (active), narrowed by the token."""
    if user is None:
        raise Unauthorized()
    return Principal(user.id, user.username, user.role, scope)


def token_out(row: asyncpg.Record) -> TokenOut:
    return TokenOut(
        name=row["name"],
        prefix=row["prefix"],
        createdAt=rfc3339(row["created_at"]),
        expiresAt=_time(row["expires_at"]),
        lastUsedAt=_time(row["last_used_at"]),
        namespaces=row["namespaces"],
        role=row["role"],
    )


def _time(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value)


class ApiTokens:
    """Make, list and revoke tokens; turn a request's token into its caller."""

    def __init__(self, db: Database, access: Access, ttl: float) -> None:
        self._db = db
        self._access = access
        self._grants: TTLCache[Grant | None] = TTLCache(min(ttl, REVOCATION_S))

    def known(self, secret: str) -> Principal | Missing:
        """:meth:`authenticate` when the caches hold the token and its user (no coroutine),
        else MISSING; a refusal is the same 401."""
        digest = _digest(secret)
        grant = self._grants.get(digest)
        if grant is MISSING:
            return MISSING
        valid = _valid(grant, digest)
        user = self._access.known_user(valid.owner)
        return user if user is MISSING else _caller(user, valid.scope)

    async def authenticate(self, secret: str) -> Principal:
        """The caller behind ``secret``; unknown, revoked, expired and disabled are one 401."""
        digest = _digest(secret)
        grant = self._grants.get(digest)
        if grant is MISSING:  # an unknown token is remembered too, as None
            grant = await self._grants.fetch(digest, lambda: self._lookup(digest))
        valid = _valid(grant, digest)
        return _caller(await self._access.user(valid.owner), valid.scope)

    async def _lookup(self, digest: bytes) -> Grant | None:
        async with self._db.acquire() as conn:
            row = await conn.fetchrow(_LOOKUP, digest)
        if row is None:
            return None
        namespaces = row["namespaces"]
        scope = TokenScope(
            id=row["id"],
            name=row["name"],
            namespaces=None if namespaces is None else frozenset(namespaces),
            role=row["role"],
            expires_at=row["expires"],
        )
        return Grant(row["owner"], bytes(row["secret_hash"]), scope)

    async def create(
        self, principal: Principal, body: TokenCreate, username: str | None = None
    ) -> TokenCreated:
        """A token for the caller, or (a global admin, ``username``) for a service account.
        The secret is in this answer only."""
        owner_id, owner_name = await self._owner(principal, username, creating=True)
        namespaces = None
        if body.namespaces is not None:
            # "default" is the owner's personal namespace (API.md §3), fixed when made.
            namespaces = sorted({owner_name if n == DEFAULT else n for n in body.namespaces})
        days = DEFAULT_DAYS if body.expiresInDays is msgspec.UNSET else body.expiresInDays
        secret = PREFIX + secrets.token_urlsafe(32)
        try:
            async with self._db.acquire() as conn, conn.transaction():
                # The owner's row locked first: concurrent creates are counted one by one.
                await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE", owner_id)
                held = await conn.fetchval(
                    "SELECT count(*) FROM api_tokens WHERE owner = $1", owner_id
                )
                if held >= MAX_TOKENS_PER_USER:
                    raise Forbidden(
                        f'user "{owner_name}" has reached the limit of {MAX_TOKENS_PER_USER} '
                        "API tokens; revoke one first",
                        kind="Token",
                    )
                row = await conn.fetchrow(
                    _CREATE,
                    owner_id,
                    body.name,
                    secret[:8],
                    digest_of(secret),
                    namespaces,
                    body.role,
                    days,
                )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(
                f'user "{owner_name}" already has a token named "{body.name}"',
                kind="Token",
                name=body.name,
            ) from None
        assert row is not None
        listed = token_out(row)
        return TokenCreated(
            name=listed.name,
            token=secret,
            prefix=listed.prefix,
            createdAt=listed.createdAt,
            expiresAt=listed.expiresAt,
            namespaces=listed.namespaces,
            role=listed.role,
        )

    async def list(self, principal: Principal, username: str | None = None) -> TokenList:
        owner_id, _ = await self._owner(principal, username)
        async with self._db.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM api_tokens WHERE owner = $1 ORDER BY name", owner_id
            )
        return TokenList(items=[token_out(r) for r in rows])

    async def get(self, principal: Principal, name: str, username: str | None = None) -> TokenOut:
        owner_id, owner_name = await self._owner(principal, username)
        async with self._db.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM api_tokens WHERE owner = $1 AND name = $2",
                owner_id,
                name,
            )
        if row is None:
            raise _token_not_found(owner_name, name)
        return token_out(row)

    async def revoke(self, principal: Principal, name: str, username: str | None = None) -> None:
        """Delete the token: refused at once by this worker, by the others within seconds."""
        owner_id, owner_name = await self._owner(principal, username)
        async with self._db.acquire() as conn:
            digest = await conn.fetchval(
                "DELETE FROM api_tokens WHERE owner = $1 AND name = $2 RETURNING secret_hash",
                owner_id,
                name,
            )
        if digest is None:
            raise _token_not_found(owner_name, name)
        self._grants.invalidate(bytes(digest))

    async def _owner(
        self, principal: Principal, username: str | None, creating: bool = False
    ) -> tuple[int, str]:
        """Whose tokens a request manages: the caller's own, or (``username``, a global
        admin's routes) that user's. Never through a token."""
        if principal.token is not None:
            raise Forbidden(NOT_THROUGH_ONE, kind="Token")
        if username is None:
            return principal.id, principal.username
        async with self._db.acquire() as conn:
            row = await conn.fetchrow(_OWNER, username)
        if row is None:
            raise NotFound(f'user "{username}" not found', kind="User", name=username)
        if creating and not row["service_account"] and row["id"] != principal.id:
            raise Forbidden(
                f'user "{username}" is not a service account: people make their own tokens',
                kind="Token",
            )
        return row["id"], username


def _token_not_found(owner: str, name: str) -> NotFound:
    return NotFound(f'user "{owner}" has no token named "{name}"', kind="Token", name=name)
