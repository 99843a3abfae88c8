"""``CRDService``: get, list, create, replace, patch, delete and restore for any kind.

What differs between kinds is data on their registry entry (``wegent.resources.registry``):
the fields that reference other objects, where the spec holds secrets, the list filters. A
kind with rules of its own subclasses this (Task: its lifecycle). Every write is one
transaction of at most: the reference check (one query) and the write (one statement);
uniqueness and preconditions come from the database. Concurrent creates that need only their
INSERT share one statement (``CRDService._insert_many``, docs/decisions.md).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar, cast

import asyncpg
import msgspec

from wegent.auth.access import Access, Principal
from wegent.db.coalesce import Coalescer
from wegent.db.engine import Database
from wegent.errors import (
    AlreadyExists,
    BadRequest,
    Cause,
    Conflict,
    Forbidden,
    NotFound,
    invalid,
    namespace_not_found,
)
from wegent.names import RESOURCE_VERSION_PATTERN
from wegent.paging import Pager
from wegent.resources.decode import decode
from wegent.resources.envelope import ResourceInput, input_type
from wegent.resources.field_selectors import parse_field_selector
from wegent.resources.patching import Patch
from wegent.resources.references import Reference, References, ref_key, references_of
from wegent.resources.secrets import SecretBox, open_spec, seal_spec
from wegent.resources.selectors import parse_selector
from wegent.resources.store import (
    Page,
    Statements,
    batchable,
    list_statement,
    many_pages,
    param_types,
    wire_list,
)
from wegent.watch.changes import Interest

if TYPE_CHECKING:
    from wegent.resources.registry import KindInfo

SpecT = TypeVar("SpecT", bound=msgspec.Struct)
AVAILABLE = b'{"state":"Available","message":null}'
_json = msgspec.json.Encoder()
_RESOURCE_VERSION = re.compile(RESOURCE_VERSION_PATTERN)
#: Merge patches without a resourceVersion first read without a lock; after this many lost
#: races the next attempt holds the row lock from its read to its write.
OPTIMISTIC_PATCHES = 2


#: Names made from ``metadata.generateName`` that are taken are made again, this many times.
GENERATE_NAME_ATTEMPTS = 8
#: Lists read together in one statement at most (``wegent.db.coalesce``). Not more: while a
#: batch is read the worker waits for it, and a batch of every waiting list leaves it idle
#: (measured at 16 connections: 8 per batch served ~30 % more lists a second than 16, and
#: 4 fewer). Each page is at most the list byte budget; how many answers a worker holds at
#: once is bounded by the in-flight limit, batched or not.
LISTS_PER_BATCH = 8
_KINDS_GET_MANY = Statements.for_table("kinds").get_many
#: ``_insert_many``'s answer for a create to make again alone (see there).
_TARGET_GONE: Any = object()
_REFS_COLUMN = 8  # of the columns ``_together`` queues: namespace, name, ..., status, refs, by
#: At most this many creates (replaces) per coalesced statement (``CRDService._insert_many``,
#: ``_replace_many``).
WRITES_PER_BATCH = 32
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' (no vowels: no words)


def _refused(exc: Exception, namespace: str) -> Exception:
    """What a create refused by the database answers (as ``CRDService._insert`` does)."""
    if isinstance(exc, asyncpg.ForeignKeyViolationError):  # no such namespace (or it is going)
        return namespace_not_found(namespace)
    return exc


def generate_name(prefix: str) -> str:
    """``metadata.generateName`` made a name: the prefix (cut to leave room) and 5 random
    characters, as the Kubernetes API server makes them."""
    suffix = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
    return prefix[: 63 - len(suffix)] + suffix


class _KeyMeta(msgspec.Struct):
    name: str
    uid: str


class _Key(msgspec.Struct):
    """What a continue token needs of an answered object (the rest is skipped unparsed)."""

    metadata: _KeyMeta


def _joined_page(page: Page, limit: int) -> tuple[bytes | memoryview, memoryview | None]:
    """A coalesced page's items (joined), and its last object's body when more rows follow
    (its key starts the next page); slices of the one value read, not copies."""
    joined = memoryview(page.joined or b"")
    if page.read <= limit:
        return joined, None
    assert page.last_size is not None and page.next_size is not None
    end = len(joined) - page.next_size - 1  # the row after the page and its comma
    return joined[:end], joined[end - page.last_size : end]


class ExclusiveTaken(Conflict):
    """Another live object of the namespace holds the kind's exclusive field."""


@dataclass(frozen=True)
class ServiceDeps:
    """What every resource service works with."""

    db: Database
    access: Access
    references: References
    pager: Pager
    box: SecretBox
    list_budget: int  # bytes of items per list page (API.md §7)
    #: A list's resourceVersion, taken before its rows are read (the watch's watermark, §15).
    list_version: Callable[[], Awaitable[int]]


class Caller(NamedTuple):
    """Who is asking, and in which (resolved, authorized) namespace."""

    principal: Principal
    namespace: str


class ListQuery(NamedTuple):
    limit: int = 500
    continue_token: str | None = None
    label_selector: str | None = None
    deleted: bool = False
    all_namespaces: bool = False
    #: (column, value) equality filters: the kind's own list filters that were given.
    filters: tuple[tuple[str, str], ...] = ()
    field_selector: str | None = None


def unit(
    conn: asyncpg.Connection, *, needed: bool, dry_run: bool
) -> AbstractAsyncContextManager[None]:
    """A transaction when the work needs one; with ``dry_run`` everything is rolled back.
    (Most single writes need none: then nothing at all, not a generator per write.)"""
    if not needed and not dry_run:
        return _NOTHING
    return _transaction(conn, dry_run)


_NOTHING: AbstractAsyncContextManager[None] = nullcontext()


@asynccontextmanager
async def _transaction(conn: asyncpg.Connection, dry_run: bool) -> AsyncIterator[None]:
    transaction = conn.transaction()
    await transaction.start()
    try:
        yield
    except BaseException:
        await transaction.rollback()
        raise
    if dry_run:
        await transaction.rollback()
    else:
        await transaction.commit()


class CRDService(Generic[SpecT]):
    """The generic resource path; subclasses override the hooks at the bottom."""

    def __init__(self, info: KindInfo, deps: ServiceDeps) -> None:
        self.info = info
        self.kind = info.kind
        self.sql = Statements.for_table(info.table)
        self.deps = deps
        self._db = deps.db
        self._access = deps.access
        self._references = deps.references
        self._pager = deps.pager
        self._input: type[ResourceInput[Any]] = input_type(info.kind)
        self._objects = deps.db.coalesced(self.sql.get_many)  # GETs (wegent.db.coalesce)
        # What references can name lives in ``kinds``: found with the GETs of those kinds.
        self._targets = deps.db.coalesced(_KINDS_GET_MANY)
        # Creates that need nothing but their INSERT (no reference, no secret to seal, no
        # exclusive field, not a dry run, not in a batch's transaction) are inserted together:
        # one statement, one commit for every such create waiting at that moment.
        # Replaces (and merge patches' optimistic writes) that need nothing but their UPDATE
        # likewise: the same conditions, and a kind without rules of its own for a replace.
        self._inserts: Coalescer | None = None
        self._replaces: Coalescer | None = None
        if not (info.secrets or info.exclusive):
            writers = deps.db.settings.pool_max_size // 4
            self._inserts = Coalescer(
                self._insert_many, readers=writers, max_batch=WRITES_PER_BATCH
            )
            if type(self).check_replace is CRDService.check_replace:
                self._replaces = Coalescer(
                    self._replace_many, readers=writers, max_batch=WRITES_PER_BATCH
                )

    # -- reads -------------------------------------------------------------------------------

    async def get(self, caller: Caller, name: str, *, reveal: bool = False) -> bytes:
        if reveal:
            await self._check_reveal(caller, reveal)
            if self.info.secrets is not None:  # else nothing to reveal
                rows = await self._db.read(self.sql.get_revealed, self.kind, caller.namespace, name)
                if not rows:
                    raise self._not_found(name, caller.namespace)
                return self._revealed(rows[0])
        body: bytes | None = await self._objects.get((self.kind, caller.namespace, name))
        if body is None:
            raise self._not_found(name, caller.namespace)
        return body

    async def list_objects(
        self, caller: Caller, query: ListQuery, *, reveal: bool = False
    ) -> bytes:
        """One page in (name, uid) order, keyset-paged with a tamper-evident token (§7)."""
        reveal = reveal and not query.all_namespaces  # secrets are revealed one namespace at a time
        if reveal:
            await self._check_reveal(caller, reveal)
            reveal = self.info.secrets is not None  # nothing to reveal otherwise
        selector = parse_selector(query.label_selector or "")
        fields = parse_field_selector(query.field_selector or "")
        namespaces = await self._list_namespaces(caller, query.all_namespaces)
        scope = "|".join(
            [
                self.kind,
                "*" if query.all_namespaces else caller.namespace,
                selector.canonical,
                str(query.deleted),
                *(f"{column}={value}" for column, value in query.filters),
                *([f"fields:{fields.canonical}"] if fields.terms else []),
            ]
        )
        after = self._pager.decode(query.continue_token, scope) if query.continue_token else None
        filters = [(column, "=", value) for column, value in query.filters] + list(fields.terms)
        version = await self.deps.list_version()  # before the rows: see Hub.list_version
        items: bytes | memoryview = b""
        last: bytes | memoryview | None = None  # the page's last body, when more rows follow
        for quick in (True, False):  # the second only when a page holds a large object
            sql, params = list_statement(
                self.info.table,
                self.kind,
                namespaces,
                deleted=query.deleted,
                after=after,
                selector=selector,
                filters=filters,
                limit=query.limit + 1,
                budget=self.deps.list_budget,
                revealed=reveal,
                quick=quick,
            )
            # The page's bodies, the page and one more row. (A list's resourceVersion is the
            # watch's watermark, so the rows carry nothing else.)
            if quick and not reveal and batchable(params):  # most lists: coalesced, joined
                statement = many_pages(sql, param_types(params))
                found = self._db.coalesced(
                    statement, max_batch=LISTS_PER_BATCH, another_reader_at=1
                )
                page = Page(*await found.get(tuple(params)))
                if page.with_body == page.read:  # else a large object: the budgeted statement
                    items, last = _joined_page(page, query.limit)
                    break
                continue
            rows = await self._db.read(sql, *params)
            bodies: list[bytes | None] = [row[0] for row in rows]
            page_bodies = bodies[: query.limit]
            if quick and None in page_bodies:
                continue
            if None in page_bodies:  # the page's byte budget ends before this row
                page_bodies = page_bodies[: page_bodies.index(None)]
            shown = cast(list[bytes], page_bodies)
            if reveal:
                shown = [self._revealed(row) for row in rows[: len(shown)]]
            if len(page_bodies) < len(bodies):
                last = page_bodies[-1]
            items = b",".join(shown)
            break
        token = None
        if last is not None:  # more rows follow the page
            key = msgspec.json.decode(last, type=_Key).metadata
            token = self._pager.encode(scope, key.name, key.uid)
        return wire_list(self.kind, items, token, version)

    async def interest(self, caller: Caller, query: ListQuery) -> Interest:
        """What a watch of this list shows (API.md §15): the list's namespaces, selectors and
        filters, checked as the list checks them."""
        selector = parse_selector(query.label_selector or "")
        fields = parse_field_selector(query.field_selector or "")
        namespaces = await self._list_namespaces(caller, query.all_namespaces)
        return Interest(
            self.kind,
            None if namespaces is None else frozenset(namespaces),
            selector,
            fields.terms,
            query.filters,
        )

    async def _check_reveal(self, caller: Caller, reveal: bool) -> None:
        """Secrets are shown only to those who may edit the namespace (§8)."""
        if reveal and not await self._access.allows(caller.principal, caller.namespace, "write"):
            raise Forbidden(
                f'user "{caller.principal.username}" cannot reveal secrets in namespace '
                f'"{caller.namespace}"',
                kind=self.kind,
            )

    async def _list_namespaces(self, caller: Caller, all_namespaces: bool) -> list[str] | None:
        if not all_namespaces:
            return [caller.namespace]
        return await self._access.readable(caller.principal)

    # -- writes ------------------------------------------------------------------------------

    async def create(
        self,
        caller: Caller,
        body: ResourceInput[Any],
        *,
        dry_run: bool,
        conn: asyncpg.Connection | None = None,
    ) -> bytes:
        name = self._check_envelope(caller, body, path_name=None)
        generated = body.metadata.name is None  # from metadata.generateName
        references = self.references(body.spec)
        answer: bytes | None = None
        together = self._inserts is not None and conn is None
        if together and not (dry_run or generated):
            answer = await self._insert_together(caller, name, body, references)
        else:
            for _ in range(GENERATE_NAME_ATTEMPTS if generated else 1):
                async with self._exclusive(caller, name), self._connection(conn) as db:
                    row = await self._insert(
                        db, caller, name, body, references=references, dry_run=dry_run
                    )
                if row is not None:
                    answer = row["body"]
                    break
                if generated:
                    name = generate_name(body.metadata.generateName or "")
        if answer is None:
            raise AlreadyExists(
                f'{self.kind} "{name}" already exists in namespace "{caller.namespace}"',
                kind=self.kind,
                name=name,
            )
        return answer

    async def replace(
        self, caller: Caller, name: str, body: ResourceInput[Any], *, dry_run: bool
    ) -> bytes:
        """PUT never creates; a stale resourceVersion is 409; a no-op writes nothing."""
        self._check_envelope(caller, body, path_name=name)
        precondition = self._precondition(name, body.metadata.resourceVersion)
        async with self._exclusive(caller, name):
            row = await self._write_replace(caller, name, body, precondition, dry_run=dry_run)
        return self._replaced(caller, name, row)["body"]  # type: ignore[no-any-return]

    async def apply(
        self,
        caller: Caller,
        body: ResourceInput[Any],
        *,
        dry_run: bool,
        conn: asyncpg.Connection | None = None,
    ) -> str:
        """Create or replace (API.md §9); answers created, updated or unchanged."""
        name = body.metadata.name
        if name is None:
            self._check_envelope(caller, body, path_name=None)  # raises: name required
            raise AssertionError("unreachable")
        self._check_envelope(caller, body, path_name=name)
        precondition = self._precondition(name, body.metadata.resourceVersion)
        async with self._exclusive(caller, name), self._connection(conn) as db:
            for _ in range(2):  # a concurrent create or delete can move us once
                row = await self._replace(db, caller, name, body, precondition, dry_run=dry_run)
                if row is not None:
                    return str(self._replaced(caller, name, row)["outcome"])
                if precondition is not None:
                    raise self._not_found(name, caller.namespace)
                references = self.references(body.spec)
                inserted = await self._insert(
                    db, caller, name, body, references=references, dry_run=dry_run
                )
                if inserted is not None:
                    return "created"
        raise self._conflict(name)

    def _exclusive(self, caller: Caller, name: str) -> AbstractAsyncContextManager[None]:
        """A write refused by the kind's exclusive-field index (API.md §2: one default Device
        per namespace) becomes a 409 naming the object that has the field. Wraps the
        connection's use, so the holder is read once that connection is back. Kinds without
        such a field get nothing."""
        if self.info.exclusive is None:
            return _NOTHING
        return self._exclusive_field(caller, name)

    @asynccontextmanager
    async def _exclusive_field(self, caller: Caller, name: str) -> AsyncIterator[None]:
        try:
            yield
        except asyncpg.UniqueViolationError as exc:
            field = self.info.exclusive
            if field is None or exc.constraint_name != self.info.exclusive_index:
                raise
            rows = await self._db.read(self.sql.holder, self.kind, caller.namespace, field)
            holder = f'{self.kind} "{rows[0]["name"]}"' if rows else f"another {self.kind}"
            raise ExclusiveTaken(
                f'{self.kind} "{name}" cannot set {field}: {holder} already has it in '
                f'namespace "{caller.namespace}"',
                kind=self.kind,
                name=name,
            ) from None

    def _connection(self, conn: asyncpg.Connection | None) -> AbstractAsyncContextManager[Any]:
        """The caller's connection (a batch's transaction), or one from the pool."""
        if conn is not None:
            return nullcontext(conn)
        return self._db.acquire()

    async def _insert(
        self,
        conn: Any,
        caller: Caller,
        name: str,
        body: ResourceInput[Any],
        *,
        references: list[Reference],
        dry_run: bool,
    ) -> asyncpg.Record | None:
        """INSERT … ON CONFLICT DO NOTHING: None when a live object has the name."""
        async with unit(conn, needed=bool(references), dry_run=dry_run):
            keys = await self._resolve(conn, caller, name, references)
            spec, shown = await self.stored_spec(conn, caller, name, body.spec)
            try:
                row: asyncpg.Record | None = await conn.fetchrow(
                    self.sql.insert,
                    self.kind,
                    caller.namespace,
                    name,
                    body.metadata.displayName,
                    _json.encode(body.metadata.labels).decode(),
                    _json.encode(body.metadata.annotations).decode(),
                    spec,
                    shown,
                    self.initial_status(),
                    _json.encode(keys).decode(),
                    caller.principal.username,
                )
            except asyncpg.ForeignKeyViolationError:  # no such namespace (or it is going)
                raise namespace_not_found(caller.namespace) from None
        return row

    async def _insert_together(
        self, caller: Caller, name: str, body: ResourceInput[Any], references: list[Reference]
    ) -> bytes | None:
        """``_insert`` through the kind's insert coalescer: the answered object, or None when
        a live object has the name. References are found first with coalesced reads (no
        transaction, no lock); the statement locks what was found, and a create whose target
        went in between is made again alone, under the lock from the start."""
        assert self._inserts is not None
        given = [reference.ref.namespace for reference in references]
        keys = await self._resolve_unlocked(caller, name, references) if references else []
        answer: bytes | None = await self._together(
            self._inserts,
            caller,
            name,
            body,
            before_refs=(self.initial_status(),),
            refs=_json.encode(keys).decode(),
        )
        if answer is _TARGET_GONE:
            for reference, namespace in zip(references, given, strict=True):
                reference.ref.namespace = namespace  # resolved again, as given
            async with self._db.acquire() as db:
                row = await self._insert(
                    db, caller, name, body, references=references, dry_run=False
                )
            answer = None if row is None else row["body"]
        return answer

    async def _together(
        self,
        coalescer: Coalescer,
        caller: Caller,
        name: str,
        body: ResourceInput[Any],
        *,
        before_refs: tuple[Any, ...] = (),
        refs: str = "[]",
        after_caller: tuple[Any, ...] = (),
    ) -> Any:
        """Queue one write's values (the columns of ``insert_many`` / ``replace_many``) on
        ``coalescer``; its answer, or the error its statement answered for it."""
        meta = body.metadata
        spec, shown = await self.stored_spec(None, caller, name, body.spec)
        answer = await coalescer.get(
            (
                caller.namespace,
                name,
                meta.displayName,
                _json.encode(meta.labels).decode(),
                _json.encode(meta.annotations).decode(),
                spec,
                shown,
                *before_refs,
                refs,
                caller.principal.username,
                *after_caller,
            )
        )
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def _insert_many(self, columns: list[list[Any]]) -> list[tuple[int, Any]]:
        """Insert the objects given column by column (see ``__init__``) with one statement;
        answer (1-based position, answered object) for each one inserted, and
        ``_TARGET_GONE`` for each not inserted that has references (a target went, or the
        name is taken: the create alone tells which). When the statement fails, which of them
        made it fail is not known: each is then inserted alone, and answers its own outcome or
        error (an exception as its value)."""
        try:
            rows = await self._db.write(self.sql.insert_many, self.kind, *columns)
        except asyncpg.PostgresError as exc:
            if len(columns[0]) == 1:
                return [(1, _refused(exc, columns[0][0]))]
            answered = []
            for position, values in enumerate(zip(*columns, strict=True), 1):
                alone = await self._insert_many([[value] for value in values])
                answered += [(position, value) for _, value in alone]
            return answered
        inserted = {(row[0], row[1]): row[2] for row in rows}
        answered = []
        keys = zip(columns[0], columns[1], columns[_REFS_COLUMN], strict=True)
        for position, (namespace, name, refs) in enumerate(keys, 1):
            body = inserted.pop((namespace, name), None)  # a name given twice: the first has it
            if body is not None:
                answered.append((position, body))
            elif refs != "[]":
                answered.append((position, _TARGET_GONE))
        return answered

    async def _replace(
        self,
        conn: Any,
        caller: Caller,
        name: str,
        body: ResourceInput[Any],
        precondition: int | None,
        *,
        dry_run: bool,
    ) -> asyncpg.Record | None:
        """One statement; None when no live object has the name."""
        references = self.references(body.spec)
        async with unit(conn, needed=bool(references), dry_run=dry_run):
            keys = await self._resolve(conn, caller, name, references)
            await self.check_replace(conn, caller, name, body.spec)
            spec, shown = await self.stored_spec(conn, caller, name, body.spec)
            row: asyncpg.Record | None = await conn.fetchrow(
                self.sql.replace,
                self.kind,
                caller.namespace,
                name,
                body.metadata.displayName,
                _json.encode(body.metadata.labels).decode(),
                _json.encode(body.metadata.annotations).decode(),
                spec,
                shown,
                _json.encode(keys).decode(),
                caller.principal.username,
                precondition,
            )
        return row

    async def _write_replace(
        self,
        caller: Caller,
        name: str,
        body: ResourceInput[Any],
        precondition: int | None,
        *,
        dry_run: bool,
    ) -> asyncpg.Record | None:
        """One replace: together with the replaces waiting now when it needs nothing but its
        UPDATE (see ``__init__``), else on a connection of its own."""
        if self._replaces is not None and not dry_run and not self.references(body.spec):
            return await self._replace_together(caller, name, body, precondition)
        async with self._connection(None) as conn:
            return await self._replace(conn, caller, name, body, precondition, dry_run=dry_run)

    async def _replace_together(
        self, caller: Caller, name: str, body: ResourceInput[Any], precondition: int | None
    ) -> asyncpg.Record | None:
        """``_replace`` through the kind's replace coalescer."""
        assert self._replaces is not None
        row: asyncpg.Record | None = await self._together(
            self._replaces, caller, name, body, after_caller=(precondition,)
        )
        return row

    async def _replace_many(self, columns: list[list[Any]]) -> list[tuple[int, Any]]:
        """Replace the objects given column by column with one statement per round: (1-based
        position, row with ``outcome`` and ``body``) for each live one. A name given twice
        goes to the next round, so the second replace sees the first, as one after the
        other would."""
        pending = list(enumerate(zip(*columns, strict=True), 1))
        answered: list[tuple[int, Any]] = []
        while pending:
            names: set[tuple[str, str]] = set()
            now: list[tuple[int, tuple[Any, ...]]] = []
            later: list[tuple[int, tuple[Any, ...]]] = []
            for position, values in pending:
                key = (values[0], values[1])
                (later if key in names else now).append((position, values))
                names.add(key)
            answered += await self._replace_round(now)
            pending = later
        return answered

    async def _replace_round(
        self, items: list[tuple[int, tuple[Any, ...]]]
    ) -> list[tuple[int, Any]]:
        """One statement for ``items`` (distinct names); when it fails, each one alone."""
        columns = [list(column) for column in zip(*(values for _, values in items), strict=True)]
        try:
            rows = await self._db.write(self.sql.replace_many, self.kind, *columns)
        except asyncpg.PostgresError as exc:
            if len(items) == 1:
                return [(items[0][0], exc)]
            return [(position, await self._replace_alone(values)) for position, values in items]
        return [(items[row["i"] - 1][0], row) for row in rows]

    async def _replace_alone(self, values: tuple[Any, ...]) -> asyncpg.Record | Exception | None:
        try:
            rows = await self._db.write(self.sql.replace, self.kind, *values)
        except asyncpg.PostgresError as exc:
            return exc
        return rows[0] if rows else None

    def _replaced(self, caller: Caller, name: str, row: asyncpg.Record | None) -> asyncpg.Record:
        """The row of a replace, or the 404 / 409 it means."""
        if row is None:
            raise self._not_found(name, caller.namespace)
        if row["outcome"] == "conflict":
            raise self._conflict(name)
        return row

    async def patch(
        self, caller: Caller, name: str, patch: Patch, *, field_validation: str, dry_run: bool
    ) -> tuple[bytes, list[str]]:
        """A patch (``wegent.resources.patching``) over the stored object, then the same checks
        as replace.

        When the patched object carries a resourceVersion, the write is conditional on it (409
        when stale). Without one, the patch is applied to the current object, whatever was
        written before it (as Kubernetes' GuaranteedUpdate does): the version read is the
        precondition of the write, and a concurrent write makes us read and patch again; the
        last attempt reads under a row lock, so it cannot lose to another writer and the patch
        is never dropped.
        """
        for attempt in range(1, OPTIMISTIC_PATCHES + 2):
            async with self._exclusive(caller, name):
                done = await self._patch_once(
                    caller,
                    name,
                    patch,
                    field_validation,
                    dry_run,
                    lock=attempt > OPTIMISTIC_PATCHES,
                )
            if done is not None:
                return done
        raise AssertionError("unreachable: a patch under the row lock cannot conflict")

    async def _patch_once(
        self,
        caller: Caller,
        name: str,
        patch: Patch,
        field_validation: str,
        dry_run: bool,
        *,
        lock: bool,
    ) -> tuple[bytes, list[str]] | None:
        """One read-patch-write; None when a concurrent write won the race (try again).
        Under the row lock, the read and the write are one transaction; otherwise the read is
        a GET's and the write a replace's (the write is conditional on the version read)."""
        if lock or dry_run or self._replaces is None:
            read = self.sql.get_for_update if lock else self.sql.get
            async with self._connection(None) as conn, unit(conn, needed=lock, dry_run=False):
                current = await conn.fetchrow(read, self.kind, caller.namespace, name)
                value, precondition, given, warnings = self._patched(
                    caller,
                    name,
                    None if current is None else current["body"],
                    patch,
                    field_validation,
                )
                replaced = await self._replace(
                    conn, caller, name, value, precondition, dry_run=dry_run
                )
        else:
            body = await self._objects.get((self.kind, caller.namespace, name))
            value, precondition, given, warnings = self._patched(
                caller, name, body, patch, field_validation
            )
            replaced = await self._write_replace(caller, name, value, precondition, dry_run=False)
        if replaced is not None and replaced["outcome"] == "conflict" and not given:
            return None
        return self._replaced(caller, name, replaced)["body"], warnings

    def _patched(
        self, caller: Caller, name: str, body: bytes | None, patch: Patch, field_validation: str
    ) -> tuple[ResourceInput[Any], int | None, str | None, list[str]]:
        """The stored object ``body`` patched and checked as a replace's body: that body, the
        version the write is conditional on, the resourceVersion the patch gave (if any) and
        the field validation warnings."""
        if body is None:
            raise self._not_found(name, caller.namespace)
        stored = msgspec.json.decode(body)
        patched = patch(manifest_of(stored))
        given = _version_in(patched)
        decoded = decode(patched, self._input, field_validation=field_validation)
        self._check_envelope(caller, decoded.value, path_name=name)
        version = int(stored["metadata"]["resourceVersion"])
        precondition = self._precondition(name, given) if given else version
        return decoded.value, precondition, given, decoded.warnings

    async def delete(
        self,
        caller: Caller,
        name: str,
        *,
        force: bool,
        dry_run: bool,
        if_uid: str | None = None,
        if_version: str | None = None,
        conn: asyncpg.Connection | None = None,
    ) -> bytes:
        """Soft delete; refused (409, listing them) while live objects reference this one, and
        (409) when the object's uid or resourceVersion is not the one given. Answers the object
        as deleted (with its ``deletionTimestamp``)."""
        async with self._connection(conn) as conn, unit(conn, needed=True, dry_run=dry_run):
            target = await conn.fetchrow(self.sql.lock_live, self.kind, caller.namespace, name)
            if target is None:
                raise self._not_found(name, caller.namespace)
            self._check_preconditions(name, target, if_uid, if_version)
            if not force:
                key = _json.encode([ref_key(self.kind, caller.namespace, name)]).decode()
                referrers = await conn.fetch(self.sql.referrers, key)
                if referrers:
                    raise await self._referenced(conn, caller, name, referrers)
            deleted: bytes = await conn.fetchval(
                self.sql.soft_delete, target["id"], caller.principal.username
            )
        return deleted

    def _check_preconditions(
        self, name: str, target: asyncpg.Record, uid: str | None, version: str | None
    ) -> None:
        """Kubernetes' delete preconditions, in its words."""
        for what, expected, actual in (
            ("UID", uid, target["uid"]),
            ("ResourceVersion", version, str(target["resource_version"])),
        ):
            if expected and expected != actual:
                raise Conflict(
                    f"Precondition failed: {what} in precondition: {expected}, "
                    f"{what} in object meta: {actual}",
                    kind=self.kind,
                    name=name,
                )

    async def restore(self, caller: Caller, name: str) -> bytes:
        """Bring back the most recently deleted object of this name, if its targets still live.

        The namespace row is share-locked first, so a restore and a delete of the namespace
        cannot cross: one of them waits for the other and then sees what it did.
        """
        async with (
            self._exclusive(caller, name),
            self._db.acquire() as conn,
            unit(conn, needed=True, dry_run=False),
        ):
            if await conn.fetchval(self.sql.lock_namespace, caller.namespace) is None:
                raise namespace_not_found(caller.namespace)
            trashed = await conn.fetchrow(
                self.sql.latest_deleted, self.kind, caller.namespace, name
            )
            if trashed is None:
                # Losing a race to another restore leaves nothing in the trash: say why.
                if await conn.fetchval(self.sql.lock_live, self.kind, caller.namespace, name):
                    raise self._name_taken(name)
                raise NotFound(
                    f'no deleted {self.kind} "{name}" in namespace "{caller.namespace}"',
                    kind=self.kind,
                    name=name,
                )
            refs: list[str] = msgspec.json.decode(trashed["refs"])
            if refs:
                missing = await conn.fetch(self.sql.live_targets, refs)
                if missing:
                    raise invalid(
                        self.kind,
                        name,
                        [
                            Cause("FieldValueNotFound", f"{r['key']} is not live", "spec")
                            for r in missing
                        ],
                    )
            try:
                row = await conn.fetchrow(
                    self.sql.restore, trashed["id"], caller.principal.username
                )
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name == self.info.exclusive_index:
                    raise
                raise self._name_taken(name) from None
        return row["body"]  # type: ignore[no-any-return]

    def _name_taken(self, name: str) -> AlreadyExists:
        return AlreadyExists(
            f'a live {self.kind} "{name}" exists; delete or rename it first',
            kind=self.kind,
            name=name,
        )

    # -- shared steps ------------------------------------------------------------------------

    def _check_envelope(
        self, caller: Caller, body: ResourceInput[Any], *, path_name: str | None
    ) -> str:
        """kind and namespace must agree with the URL (400); the name comes from the path."""
        if body.kind is not None and body.kind != self.kind:
            raise BadRequest(
                f'kind "{body.kind}" does not match the kind of this URL ("{self.kind}")'
            )
        given_ns = body.metadata.namespace
        if given_ns is not None and Access.resolve(caller.principal, given_ns) != caller.namespace:
            raise BadRequest(
                f'metadata.namespace "{given_ns}" does not match the namespace of this request '
                f'("{caller.namespace}")'
            )
        name = body.metadata.name
        if path_name is not None:
            if name is not None and name != path_name:
                raise BadRequest(
                    f'metadata.name "{name}" does not match the name in the URL ("{path_name}")'
                )
            return path_name
        if name is None and body.metadata.generateName:
            name = generate_name(body.metadata.generateName)
        if name is None:
            raise invalid(
                self.kind,
                None,
                [
                    Cause(
                        "FieldValueRequired",
                        "Required value: name or generateName is required",
                        "metadata.name",
                    )
                ],
            )
        if body.metadata.resourceVersion:  # "" means unset, as in Kubernetes
            raise invalid(
                self.kind,
                name,
                [
                    Cause(
                        "FieldValueForbidden",
                        "Forbidden: may not be set on create",
                        "metadata.resourceVersion",
                    )
                ],
            )
        return name

    def _precondition(self, name: str, version: str | None) -> int | None:
        """The version a write is conditional on; none (or "", Kubernetes' unset) means none."""
        if not version:
            return None
        if not _RESOURCE_VERSION.match(version):
            raise invalid(
                self.kind,
                name,
                [
                    Cause(
                        "FieldValueInvalid",
                        f"Invalid value: {_json.encode(version).decode()}: "
                        "must be a resourceVersion from this server",
                        "metadata.resourceVersion",
                    )
                ],
            )
        return int(version)

    async def _resolve_unlocked(
        self, caller: Caller, name: str, references: list[Reference]
    ) -> list[str]:
        """``_resolve`` with coalesced reads of the targets, without a lock (see
        ``_insert_together``)."""
        keys, causes = await self._references.resolve_unlocked(
            caller.principal, caller.namespace, references, self._targets.get
        )
        if causes:
            raise invalid(self.kind, name, causes)
        return keys

    async def _resolve(
        self, conn: asyncpg.Connection, caller: Caller, name: str, references: list[Reference]
    ) -> list[str]:
        keys, causes = await self._references.resolve(
            conn, caller.principal, caller.namespace, references
        )
        if causes:
            raise invalid(self.kind, name, causes)
        return keys

    async def _referenced(
        self, conn: Any, caller: Caller, name: str, referrers: list[asyncpg.Record]
    ) -> Conflict:
        causes = []
        for row in referrers:
            readable = await self._access.allows(caller.principal, row["namespace"], "read", conn)
            who = (
                f'{row["kind"]} "{row["name"]}" in namespace "{row["namespace"]}"'
                if readable
                else f"a {row['kind']} in a namespace you cannot read"
            )
            causes.append(Cause("FieldValueReferenced", f"referenced by {who}", "metadata.name"))
        return Conflict(
            f'{self.kind} "{name}" is referenced by {len(referrers)} live object(s); '
            "delete them first or use ?force=true",
            kind=self.kind,
            name=name,
            causes=causes,
        )

    def _revealed(self, row: asyncpg.Record) -> bytes:
        """The answered object with its secrets in plain text (``?reveal=true``, §8)."""
        answered = msgspec.json.decode(row["body"])
        answered["spec"] = self.shown_spec(msgspec.json.decode(row["spec"]), reveal=True)
        return _json.encode(answered)

    def _not_found(self, name: str, namespace: str) -> NotFound:
        return NotFound(
            f'{self.kind} "{name}" not found in namespace "{namespace}"',
            kind=self.kind,
            name=name,
        )

    def _conflict(self, name: str) -> Conflict:
        return Conflict(
            f'Operation cannot be fulfilled on {self.info.plural} "{name}": the object has been '
            "modified; please apply your changes to the latest version and try again",
            kind=self.kind,
            name=name,
        )

    # -- what a kind's entry declares, and the hooks of kinds with rules of their own ---------

    def references(self, spec: SpecT) -> list[Reference]:
        """The references this spec makes; checked on every write."""
        return references_of(spec, self.info.references)

    async def check_replace(
        self, conn: asyncpg.Connection, caller: Caller, name: str, spec: SpecT
    ) -> None:
        """Refuse a replace this kind does not allow now (422); references are resolved."""

    async def stored_spec(
        self, conn: asyncpg.Connection | None, caller: Caller, name: str, spec: SpecT
    ) -> tuple[str, str | None]:
        """The spec as stored (JSON text): secrets sealed, "***" keeping the stored value; and
        the spec as answered when it differs (secrets masked), else None. Only a kind with
        secrets reads (the stored value) and needs ``conn``."""
        secrets = self.info.secrets
        if secrets is None:
            return _json.encode(spec).decode(), None
        assert conn is not None
        stored_text = await conn.fetchval(self.sql.stored_spec, self.kind, caller.namespace, name)
        stored = msgspec.json.decode(stored_text) if stored_text else None
        sealed = seal_spec(
            msgspec.to_builtins(spec), stored, self.deps.box, secrets, kind=self.kind, name=name
        )
        shown = _json.encode(self.shown_spec(sealed, reveal=False)).decode()
        return _json.encode(sealed).decode(), shown

    def shown_spec(self, stored: dict[str, Any], reveal: bool) -> dict[str, Any]:
        """A stored spec as answered: secrets masked, or opened when revealed."""
        assert self.info.secrets is not None
        return open_spec(stored, self.deps.box, self.info.secrets, reveal=reveal)

    def initial_status(self) -> str:
        return AVAILABLE.decode()


def manifest_of(answered: dict[str, Any]) -> dict[str, Any]:
    """An answered object as a client would have sent it: what a merge patch applies to."""
    meta = answered["metadata"]
    return {
        "apiVersion": answered["apiVersion"],
        "kind": answered["kind"],
        "metadata": {
            key: meta[key]
            for key in ("name", "namespace", "displayName", "labels", "annotations")
            if meta.get(key) is not None
        },
        "spec": answered["spec"],
    }


def _version_in(patched: object) -> str | None:
    """The resourceVersion a patched object carries (the patch put it there): a precondition."""
    if isinstance(patched, dict):
        metadata = patched.get("metadata")
        if isinstance(metadata, dict):
            version = metadata.get("resourceVersion")
            if isinstance(version, str):
                return version or None
            if version is not None:
                raise BadRequest("metadata.resourceVersion must be a string")
    return None
