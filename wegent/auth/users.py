"""Accounts: registration, login with throttling, the caller's view of itself, admin edits."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import asyncpg

from wegent import metrics
from wegent.auth.access import Access, Principal
from wegent.auth.models import (
    LoginRequest,
    Me,
    NamespaceAccess,
    RegisterRequest,
    TokenResponse,
    UserCreate,
    UserList,
    UserOut,
    UserPatch,
)
from wegent.auth.passwords import Passwords, normalized
from wegent.auth.tokens import TokenIssuer
from wegent.db.engine import Database
from wegent.errors import (
    AlreadyExists,
    Cause,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from wegent.names import SHARED, is_reserved

#: Checked failures per account and client address in a window, and per account across
#: addresses (API.md §11): one client cannot lock the owner out from elsewhere, and a spread
#: attack still stops at the account-wide ceiling.
MAX_FAILURES = 10
MAX_ACCOUNT_FAILURES = 100
FAILURE_WINDOW_S = 15 * 60
_LOGIN_FAILED = "invalid username or password"
_USER_COLUMNS = "id, username, email, role, is_active, created_at, updated_at, service_account"

_REGISTER = f"""
WITH u AS (
    INSERT INTO users (username, email, password_hash, role, is_active, failed_logins,
                       created_at, updated_at, service_account)
    VALUES ($1, $2, $3, $4, true, 0, now(), now(), $5)
    RETURNING {_USER_COLUMNS}
), n AS (
    INSERT INTO namespaces (name, owner, personal, created_at)
    SELECT username, id, true, now() FROM u RETURNING id, owner
), m AS (
    INSERT INTO namespace_members (namespace, member, role, created_at)
    SELECT id, owner, 'admin', now() FROM n
)
SELECT {_USER_COLUMNS} FROM u
"""

_WINDOW = f"make_interval(secs => {FAILURE_WINDOW_S})"
# Take one attempt from both budgets before the password is checked, in one statement: rows
# are locked and re-read at their newest version, so concurrent guesses are counted one by one
# and at most MAX_FAILURES of them are ever checked. No row back: refused.
_RESERVE = f"""
WITH a AS (
    INSERT INTO login_failures AS f (account, address, failures, window_start)
    VALUES ($1, $2, 1, now())
    ON CONFLICT (account, address) DO UPDATE SET
        failures = CASE WHEN f.window_start <= now() - {_WINDOW} THEN 1 ELSE f.failures + 1 END,
        window_start = CASE WHEN f.window_start <= now() - {_WINDOW}
            THEN now() ELSE f.window_start END
    WHERE f.window_start <= now() - {_WINDOW} OR f.failures < {MAX_FAILURES}
    RETURNING account
), u AS (
    UPDATE users SET
        failed_logins = CASE WHEN failed_window_start IS NULL
            OR failed_window_start <= now() - {_WINDOW} THEN 1 ELSE failed_logins + 1 END,
        failed_window_start = CASE WHEN failed_window_start IS NULL
            OR failed_window_start <= now() - {_WINDOW} THEN now() ELSE failed_window_start END
    WHERE id = (SELECT account FROM a) AND (failed_window_start IS NULL
        OR failed_window_start <= now() - {_WINDOW} OR failed_logins < {MAX_ACCOUNT_FAILURES})
    RETURNING id
)
SELECT EXISTS (SELECT 1 FROM u) AS granted, greatest(
    (SELECT EXTRACT(EPOCH FROM window_start + {_WINDOW} - now()) FROM login_failures
     WHERE account = $1 AND address = $2),
    (SELECT EXTRACT(EPOCH FROM failed_window_start + {_WINDOW} - now()) FROM users
     WHERE id = $1)) AS wait_s
"""
# A success gives its attempt back to the account and clears this address (and expired rows).
_RELEASE = f"""
WITH d AS (
    DELETE FROM login_failures
    WHERE account = $1 AND (address = $2 OR window_start <= now() - {_WINDOW})
)
UPDATE users SET failed_logins = greatest(failed_logins - 1, 0),
    password_hash = COALESCE($3, password_hash)
WHERE id = $1
"""


def rfc3339(value: datetime) -> str:
    """Kubernetes-style timestamps: UTC, second precision, ``Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def user_out(row: asyncpg.Record) -> UserOut:
    return UserOut(
        id=row["id"],
        username=row["username"],
        email=row["email"],
        role=row["role"],
        isActive=row["is_active"],
        createdAt=rfc3339(row["created_at"]),
        updatedAt=rfc3339(row["updated_at"]),
        serviceAccount=row["service_account"],
    )


class Users:
    """Account rules; every statement runs on the shared pool."""

    def __init__(
        self,
        db: Database,
        passwords: Passwords,
        tokens: TokenIssuer,
        access: Access,
        allow_registration: bool,
    ) -> None:
        self._db = db
        self._passwords = passwords
        self._tokens = tokens
        self._access = access
        self._allow_registration = allow_registration

    async def register(self, body: RegisterRequest) -> UserOut:
        """Create the user and its personal namespace in one statement. Nobody registers admin."""
        if not self._allow_registration:
            raise Forbidden("registration is disabled on this server")
        return await self.create(body.username, body.password, body.email, role="user")

    async def add(self, body: UserCreate) -> UserOut:
        """A global admin adds a service account (API.md §16)."""
        return await self.create(body.username, None, body.email, role="user")

    async def create(
        self, username: str, password: str | None, email: str | None, role: str
    ) -> UserOut:
        """The user and its personal namespace, in one statement. No password: a service
        account, which never logs in with one (its stored hash is empty and never matches)."""
        if is_reserved(username):
            raise Invalid(
                f'username "{username}" is reserved',
                kind="User",
                name=username,
                causes=[Cause("FieldValueForbidden", "reserved name", "username")],
            )
        service_account = password is None
        password_hash = "" if password is None else await self._passwords.hash(normalized(password))
        try:
            async with self._db.acquire() as conn:
                row = await conn.fetchrow(
                    _REGISTER, username, email, password_hash, role, service_account
                )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(
                f'the name "{username}" is already taken', kind="User", name=username
            ) from None
        assert row is not None
        return user_out(row)

    async def login(self, body: LoginRequest, address: str) -> TokenResponse:
        """Same 401 for unknown, wrong and disabled; 429 once the failures from this address,
        or from everywhere, reach their limit (counted before the hash is checked)."""
        username = body.username or body.user_name or ""
        password = normalized(body.password)
        async with self._db.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT id, username, role, is_active, password_hash, service_account FROM users "
                "WHERE username = $1",
                username,
            )
            if row is not None:
                reserved = await conn.fetchrow(_RESERVE, row["id"], address[:64])
                if not reserved["granted"]:
                    metrics.LOGIN_THROTTLED.inc()
                    raise TooManyRequests(
                        "too many failed logins for this account; retry later",
                        retry_after=math.ceil(float(reserved["wait_s"] or 1)),
                    )
        stored = row["password_hash"] if row else None
        ok = await self._passwords.verify(stored, password, legacy=body.password)
        if row is None or not ok or not row["is_active"] or row["service_account"]:
            metrics.LOGIN_FAILURES.inc()
            raise Unauthorized(_LOGIN_FAILED)  # the attempt stays counted
        new_hash = None
        if ok == "legacy" or self._passwords.needs_rehash(row["password_hash"]):
            new_hash = await self._passwords.hash(password)
        async with self._db.acquire() as conn:
            await conn.execute(_RELEASE, row["id"], address[:64], new_hash)
        token = self._tokens.issue(row["id"], row["username"], row["role"])
        return TokenResponse(access_token=token, expires_in=self._tokens.lifetime_s)

    async def me(self, principal: Principal) -> Me:
        async with self._db.acquire() as conn:
            user = await conn.fetchrow(
                f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1", principal.id
            )
            if principal.role == "admin":
                rows = await conn.fetch(
                    "SELECT name, 'admin' AS role FROM namespaces ORDER BY name"
                )
            else:
                rows = await conn.fetch(
                    "SELECT n.name, m.role FROM namespace_members m "
                    "JOIN namespaces n ON n.id = m.namespace WHERE m.member = $1 ORDER BY n.name",
                    principal.id,
                )
        if user is None:
            raise Unauthorized()
        roles = [(r["name"], r["role"]) for r in rows]
        if principal.role != "admin":
            roles += [(shared, "view") for shared in SHARED]
            roles.sort()
        token = principal.token
        if token is not None:  # what the token may use of them
            roles = [(name, token.narrow(name, role)) for name, role in roles]
        namespaces = [NamespaceAccess(name, role) for name, role in roles if role is not None]
        out = user_out(user)
        return Me(out.id, out.username, out.email, out.role, out.isActive, namespaces)

    async def list(self) -> UserList:
        async with self._db.acquire() as conn:
            rows = await conn.fetch(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username")
        return UserList(items=[user_out(r) for r in rows])

    async def patch(self, username: str, patch: UserPatch) -> UserOut:
        """Change a user's role or active state; the last active admin cannot be removed."""
        async with self._db.acquire() as conn, conn.transaction():
            # Serialise admin edits so two concurrent demotions cannot both pass the check.
            await conn.execute("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
            row = await conn.fetchrow(
                "SELECT id, role, is_active FROM users WHERE username = $1", username
            )
            if row is None:
                raise NotFound(f'user "{username}" not found', kind="User", name=username)
            stays_admin = (patch.role or row["role"]) == "admin" and (
                row["is_active"] if patch.isActive is None else patch.isActive
            )
            if row["role"] == "admin" and row["is_active"] and not stays_admin:
                others = await conn.fetchval(
                    "SELECT count(*) FROM users WHERE role = 'admin' AND is_active AND id <> $1",
                    row["id"],
                )
                if others == 0:
                    raise Conflict(
                        "the last active admin cannot be demoted or disabled",
                        kind="User",
                        name=username,
                    )
            updated = await conn.fetchrow(
                "UPDATE users SET role = COALESCE($2, role), is_active = COALESCE($3, is_active), "
                f"updated_at = now() WHERE id = $1 RETURNING {_USER_COLUMNS}",
                row["id"],
                patch.role,
                patch.isActive,
            )
        self._access.forget_user(row["id"])
        assert updated is not None
        return user_out(updated)

    async def ensure_admin(self, username: str, password: str, *, reset: bool) -> str:
        """Create ``username`` as an admin. If the user exists: leave it (start-up), or with
        ``reset`` promote it and set this password (``wegent create-admin``)."""
        try:
            await self.create(username, password, None, role="admin")
            return "created"
        except AlreadyExists:
            if not reset:
                return "exists"
        password_hash = await self._passwords.hash(normalized(password))
        async with self._db.acquire() as conn:
            status = await conn.execute(
                "UPDATE users SET role = 'admin', is_active = true, password_hash = $2, "
                "updated_at = now() WHERE username = $1",
                username,
                password_hash,
            )
        if status != "UPDATE 1":  # the name belongs to a namespace, not a user
            raise AlreadyExists(f'the name "{username}" is taken by a namespace')
        return "promoted"
