"""Namespaces and their members (API.md §3, §11). Access is checked by the route's policy
before any of these run; these methods hold the rules about the namespaces themselves."""

from __future__ import annotations

import asyncpg

from wegent.auth.access import Access, Principal, describe
from wegent.auth.models import (
    MemberList,
    MemberOut,
    NamespaceCreate,
    NamespaceList,
    NamespaceListMeta,
    NamespaceMeta,
    NamespaceOut,
)
from wegent.auth.users import rfc3339
from wegent.db.engine import Database
from wegent.errors import (
    AlreadyExists,
    Cause,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    namespace_not_found,
)
from wegent.names import SHARED, is_reserved
from wegent.paging import Pager

_NAMESPACE = (
    "SELECT n.id, n.name, u.username AS owner, n.personal, n.created_at, n.uid, "
    "n.resource_version, m.role "
    "FROM namespaces n LEFT JOIN users u ON u.id = n.owner"
)


def _within(principal: Principal) -> list[str] | None:
    """The namespaces the caller's token is limited to, or None."""
    token = principal.token
    return None if token is None or token.namespaces is None else sorted(token.namespaces)


class Namespaces:
    """Create, read and delete namespaces; manage who is a member with which role."""

    def __init__(self, db: Database, access: Access, pager: Pager, max_per_user: int) -> None:
        self._db = db
        self._access = access
        self._pager = pager
        self.max_per_user = max_per_user

    async def list(
        self, principal: Principal, limit: int, continue_token: str | None
    ) -> NamespaceList:
        """The namespaces the caller can access, with its role in each, a page at a time in
        name order (keyset-paged, as resource lists are: API.md §7)."""
        scope = f"namespaces|{principal.id}"
        after = self._pager.decode(continue_token, scope)[0] if continue_token else ""
        async with self._db.acquire() as conn:
            rows = await conn.fetch(
                f"{_NAMESPACE} LEFT JOIN namespace_members m "
                "ON m.namespace = n.id AND m.member = $1 "
                "WHERE ($2 OR m.role IS NOT NULL OR n.name IN ('public', 'system')) "
                "AND ($5::text[] IS NULL OR n.name = ANY($5)) AND n.name > $3 "
                "ORDER BY n.name LIMIT $4",
                principal.id,
                principal.role == "admin",
                after,
                limit + 1,
                _within(principal),
            )
        token = None
        if len(rows) > limit:
            rows = rows[:limit]
            token = self._pager.encode(scope, rows[-1]["name"], "")
        items = [self._out(row, self._role(principal, row)) for row in rows]
        return NamespaceList(items=items, metadata=NamespaceListMeta(continue_=token))

    async def create(
        self, principal: Principal, body: NamespaceCreate, dry_run: bool = False
    ) -> NamespaceOut:
        """A shared namespace; its creator is its admin. Names share one space with users.
        A dry run makes every check and writes nothing (its transaction is rolled back)."""
        name = body.wanted
        token = principal.token
        if token is not None and token.narrow(name, "admin") in (None, "view"):
            raise Forbidden(
                f'{describe(principal)} cannot create namespace "{name}"',
                kind="Namespace",
                name=name,
            )
        if is_reserved(name):
            raise Invalid(
                f'namespace name "{name}" is reserved',
                kind="Namespace",
                name=name,
                causes=[Cause("FieldValueForbidden", "reserved name", "name")],
            )
        try:
            # Every user owns a namespace of its name, so this unique name covers users too.
            async with self._db.acquire() as conn:
                transaction = conn.transaction()
                await transaction.start()
                try:
                    await self._check_quota(conn, principal)
                    row = await conn.fetchrow(
                        "WITH n AS (INSERT INTO namespaces (name, owner, personal, created_at) "
                        "VALUES ($1, $2, false, now()) "
                        "RETURNING id, name, personal, created_at, uid, resource_version), "
                        "m AS (INSERT INTO namespace_members (namespace, member, role, created_at)"
                        " SELECT id, $2, 'admin', now() FROM n) "
                        "SELECT id, name, $3::text AS owner, personal, created_at, uid, "
                        "resource_version FROM n",
                        name,
                        principal.id,
                        principal.username,
                    )
                except BaseException:
                    await transaction.rollback()
                    raise
                await (transaction.rollback() if dry_run else transaction.commit())
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(
                f'the name "{name}" is already taken', kind="Namespace", name=name
            ) from None
        if not dry_run:
            self._access.forget_roles()
        assert row is not None
        return self._out(row, "admin")

    async def _check_quota(self, conn: asyncpg.Connection, principal: Principal) -> None:
        """At most ``max_per_user`` shared namespaces per user (global admins are exempt).

        The user's row is locked first and the count read after the lock, so concurrent
        creates by one user are counted one after the other and cannot pass the limit together.
        """
        if principal.role == "admin":
            return
        await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE", principal.id)
        owned = await conn.fetchval(
            "SELECT count(*) FROM namespaces WHERE owner = $1 AND NOT personal", principal.id
        )
        if owned >= self.max_per_user:
            raise Forbidden(
                f'user "{principal.username}" has reached the limit of {self.max_per_user} '
                "namespaces; delete one first",
                kind="Namespace",
            )

    async def get(self, principal: Principal, name: str) -> NamespaceOut:
        async with self._db.acquire() as conn:
            row = await conn.fetchrow(
                f"{_NAMESPACE} LEFT JOIN namespace_members m "
                "ON m.namespace = n.id AND m.member = $2 WHERE n.name = $1",
                name,
                principal.id,
            )
        if row is None:
            raise namespace_not_found(name)
        return self._out(row, self._role(principal, row))

    async def delete(self, principal: Principal, name: str, dry_run: bool = False) -> NamespaceOut:
        """Only an empty shared namespace; its trash goes with it. Answers it as it was."""
        if name in SHARED:
            raise Forbidden(f'namespace "{name}" cannot be deleted', kind="Namespace", name=name)
        async with self._db.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"{_NAMESPACE} LEFT JOIN namespace_members m "
                "ON m.namespace = n.id AND m.member = $2 WHERE n.name = $1 FOR UPDATE OF n",
                name,
                principal.id,
            )
            if row is None:
                raise namespace_not_found(name)
            if row["personal"]:
                raise Forbidden(
                    f'namespace "{name}" is a personal namespace and cannot be deleted',
                    kind="Namespace",
                    name=name,
                )
            live = await conn.fetchval(
                "SELECT (SELECT count(*) FROM kinds WHERE namespace = $1 AND deleted_at IS NULL)"
                " + (SELECT count(*) FROM tasks WHERE namespace = $1 AND deleted_at IS NULL)",
                name,
            )
            if live:
                raise Conflict(
                    f'namespace "{name}" still holds {live} live objects',
                    kind="Namespace",
                    name=name,
                )
            if not dry_run:
                # Its objects (all in the trash now) go with it: the foreign keys cascade.
                await conn.execute("DELETE FROM namespaces WHERE id = $1", row["id"])
        if not dry_run:
            self._access.forget_roles()
        return self._out(row, self._role(principal, row))

    async def members(self, name: str) -> MemberList:
        async with self._db.acquire() as conn:
            ns_id = await conn.fetchval("SELECT id FROM namespaces WHERE name = $1", name)
            if ns_id is None:
                raise namespace_not_found(name)
            rows = await conn.fetch(
                "SELECT u.username, m.role FROM namespace_members m "
                "JOIN users u ON u.id = m.member WHERE m.namespace = $1 ORDER BY u.username",
                ns_id,
            )
        return MemberList(items=[MemberOut(name, r["username"], r["role"]) for r in rows])

    async def put_member(self, name: str, username: str, role: str) -> MemberOut:
        async with self._db.acquire() as conn, conn.transaction():
            ns, user_id = await self._namespace_and_user(conn, name, username)
            self._protect_owner(ns, user_id, username)
            await conn.execute(
                "INSERT INTO namespace_members (namespace, member, role, created_at) "
                "VALUES ($1, $2, $3, now()) "
                "ON CONFLICT (namespace, member) DO UPDATE SET role = EXCLUDED.role",
                ns["id"],
                user_id,
                role,
            )
        self._access.forget_roles()
        return MemberOut(name, username, role)

    async def delete_member(self, name: str, username: str) -> None:
        async with self._db.acquire() as conn, conn.transaction():
            ns, user_id = await self._namespace_and_user(conn, name, username)
            self._protect_owner(ns, user_id, username)
            status = await conn.execute(
                "DELETE FROM namespace_members WHERE namespace = $1 AND member = $2",
                ns["id"],
                user_id,
            )
        if status != "DELETE 1":
            raise NotFound(
                f'user "{username}" is not a member of namespace "{name}"',
                kind="Member",
                name=username,
            )
        self._access.forget_roles()

    async def _namespace_and_user(
        self, conn: asyncpg.Connection, name: str, username: str
    ) -> tuple[asyncpg.Record, int]:
        ns = await conn.fetchrow(
            "SELECT id, owner, personal FROM namespaces WHERE name = $1 FOR UPDATE", name
        )
        if ns is None:
            raise namespace_not_found(name)
        user_id = await conn.fetchval("SELECT id FROM users WHERE username = $1", username)
        if user_id is None:
            raise NotFound(f'user "{username}" not found', kind="User", name=username)
        return ns, user_id

    @staticmethod
    def _protect_owner(ns: asyncpg.Record, user_id: int, username: str) -> None:
        if ns["personal"] and ns["owner"] == user_id:
            raise Conflict(
                f'"{username}" owns this personal namespace; its role cannot change',
                kind="Member",
                name=username,
            )

    @staticmethod
    def _role(principal: Principal, row: asyncpg.Record) -> str:
        """Global admins are admins everywhere; everyone else reads ``public`` and ``system``;
        a token's caller has what its token allows of that (the route let it in: not None)."""
        role: str = "admin" if principal.role == "admin" else row["role"] or "view"
        if principal.token is not None:
            return principal.token.narrow(row["name"], role) or "view"
        return role

    @staticmethod
    def _out(row: asyncpg.Record, role: str) -> NamespaceOut:
        created = rfc3339(row["created_at"])
        return NamespaceOut(
            name=row["name"],
            owner=row["owner"],
            personal=row["personal"],
            role=role,
            createdAt=created,
            metadata=NamespaceMeta(
                name=row["name"],
                uid=str(row["uid"]),
                resourceVersion=str(row["resource_version"]),
                creationTimestamp=created,
            ),
        )
