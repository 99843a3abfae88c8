"""The ceilings: the least a server can do to answer the benchmarked requests.

A bare ASGI callable (no framework, no auth, no error mapping) served by uvicorn with the
service's settings, over a LIFO pool of asyncpg connections with prepared statements. It runs
in one of two modes (environment ``CEILING_MODE``); ``run.py`` starts one server of each.

``sql`` (the default): **the same SQL**. For each operation it runs the statements the service
runs, copied verbatim from ``wegent/resources/store.py`` (``Statements.for_table("kinds")`` and
``list_statement`` for one namespace without selector or continue token, with the same limit
and byte budget, ``WEGENT_LIST_BUDGET_BYTES``) and ``references.py``: same tables, columns,
locks and transactions. Every row carries ``body``, the object as the API answers it, generated
by PostgreSQL (``wegent_render``); reads send it as is and a list joins the bodies into the
``{Kind}List`` envelope with the signed continue token, as ``crd.py`` and ``store.wire_list``
do. A list runs the quick statement (no window, two columns: ``body`` when it is at most the
budget's share of one item, and ``resource_version``) and, only when a page holds an object
over that share, the budgeted one; the token's name and uid are read from the page's last
body. Writes answer the ``body`` their statement returns (a delete too: family C answers it,
family B answers 204 without it); a merge patch reads ``body``, merges
(RFC 7386) into the manifest a client would have sent and replaces with the version read as
precondition, the last attempt under the row lock. ``run.py`` compares this SQL with the
service's statement by statement before measuring. As for the service, no statement sets
``resource_version``: the tables' ``wegent_stamp`` trigger takes it, and ``kinds_log`` writes
every change into the watch's log (``watch_changes``), for the ceiling's writes too — a cost of
the design that the ceiling shares, so the write ratios do not show it (``benchmarks/watch.py``
measures it). What the ceiling does not do is the service's hub: no poll, no ``NOTIFY``.

``stored`` (GET one and list only): **the stored bytes**, the fastest way any server could give
the same answer, whatever our schema. Its own minimal table, ``ceiling_objects`` (kind,
namespace, name, uid, resource_version, body; a btree on (kind, namespace, name, uid), name in
byte order as in ``kinds``), holds every live object's answer: ``run.py`` creates it
(``STORED_SCHEMA``) and fills it from the bytes the service answers (``STORED_COPY``: the
``body`` the service sends as is), so the bytes are identical by construction, and checks it.
A GET is one prepared statement, its value sent as is; a list is one prepared statement
(``body`` and ``resource_version`` of limit + 1 rows in (name, uid) order) whose bodies are
joined into the same envelope, with a list resourceVersion (the highest of the page: the
service's is its watch watermark, which ``run.py``'s output check leaves aside) and the same
signed continue token (name and uid read from the page's last body). No byte budget:
for these pages it never binds, so it changes no answer, and what it costs us (the quick
statement's size check of every body; for a page with a large object, a second statement
with a window over the page) is a cost of our design that the ratio must show. Writes are not
served (405).

Why ``bytea`` and not ``text`` for the stored bytes: measured in-process (asyncpg, uvloop, one
connection, this process's plus the backend's CPU per request, 150 Ghosts), a GET costs the
same either way (40 vs 41 µs), and a list page of 100 (body, name, uid as text, version) costs
177-179 µs with ``bytea`` against 184-198 µs with ``text``: PostgreSQL sends ``bytea`` in
binary as it is stored, while ``text`` goes through the client-encoding path, asyncpg decodes
it into ``str`` (a UTF-8 pass) and the answer has to be encoded back to bytes. Per row, the
``uid`` as ``uuid`` rather than text saved ~30 µs a page, and returning only ``body`` and
``resource_version`` (the token's name and uid read from the last body) another 12-16 µs;
joining in PostgreSQL (``string_agg``) was no faster once the page's end and version had to be
computed there too.

Routes are the service's path families B and C, so the same wrk scripts hit all three servers:
``/api/v1/namespaces/{ns}/{ghosts|bots|models|shells}[/{name}]`` and
``/apis/agent.wecode.io/v1/namespaces/{ns}/{plural}[/{name}]`` with GET, POST, PUT, PATCH and
DELETE, plus ``/healthz``. Both families give the same answers (a DELETE of family C answers
the object as deleted, 200, as the service's does).

What neither mode does, by design: authenticate or authorize (no JWT, no role lookup), validate
labels and annotations key by key, check ``apiVersion``/``kind``/namespace agreement, dry runs,
``fieldValidation`` warnings, label selectors, continue tokens on input, secrets. The ``sql``
mode keeps what costs the database or the wire: body decoding into typed Structs, reference
resolution with one locking query in a transaction, the write, the answer.

Run: ``uvicorn ceiling:app --app-dir benchmarks`` with ``WEGENT_DATABASE_URL`` (and
``WEGENT_SECRET_KEY`` to sign continue tokens exactly as the service does; ``CEILING_MODE``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Annotated, Any
from urllib.parse import parse_qsl

import asyncpg
import msgspec
from asyncpg.prepared_stmt import PreparedStatement

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

API_VERSION = "agent.wecode.io/v1"
GROUP, VERSION = API_VERSION.split("/")
PUBLIC = "public"

# -- SQL: verbatim from wegent/resources/store.py (table "kinds") -----------------------------

LIVE = "kind = $1 AND namespace = $2 AND name = $3 AND deleted_at IS NULL"
TABLE = "kinds"


def list_budget(env: Mapping[str, str]) -> int:
    """Bytes of items per list page: the service's setting (WEGENT_LIST_BUDGET_BYTES)."""
    return int(env.get("WEGENT_LIST_BUDGET_BYTES") or 8 * 1024 * 1024)


def quick_share(budget: int, limit: int) -> int:
    """The quick list statement's bound on one body ($4): the budget's share of one item of a
    page of ``limit`` (store.py: ``budget // max(limit - 1, 1)`` with its limit + 1)."""
    return budget // max(limit, 1)


SQL_GET = f"SELECT body FROM {TABLE} WHERE {LIVE}"
SQL_GET_FOR_UPDATE = f"SELECT body FROM {TABLE} WHERE {LIVE} FOR UPDATE"
# store.py list_statement for one namespace, no selector, no continue token. The quick
# statement (pages of small objects: no window, the body only): $1 kind, $2 namespace,
# $3 limit + 1, $4 the budget's share of one item (budget // limit); a body over that share
# comes back null, and the page is then read again with the budgeted statement ($4 the budget).
_PAGE = (
    f"FROM {TABLE} WHERE kind = $1 AND deleted_at IS NULL AND namespace = $2 "
    "ORDER BY name, uid LIMIT $3"
)
SQL_LIST = f"SELECT CASE WHEN octet_length(body) <= $4 THEN body END AS body {_PAGE}"
SQL_LIST_BUDGETED = (
    "SELECT CASE WHEN upto <= $4 OR n = 1 THEN body END AS body FROM ("
    "SELECT *, sum(octet_length(body)) OVER w AS upto, row_number() OVER w AS n "
    f"FROM (SELECT body {_PAGE}) page "
    "WINDOW w AS (ROWS UNBOUNDED PRECEDING)) sized "
    "WHERE upto - octet_length(body) <= $4 OR n <= 2"
)
SQL_INSERT = (
    f"INSERT INTO {TABLE} (uid, kind, namespace, name, display_name, labels, "
    "annotations, spec, shown_spec, status, refs, generation, "
    "created_by, updated_by, created_at, updated_at) VALUES (gen_random_uuid(), $1, "
    "$2, $3, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8::jsonb, $9::jsonb, $10::jsonb, "
    "1, $11, $11, now(), now()) "
    "ON CONFLICT (kind, namespace, name) WHERE deleted_at IS NULL DO NOTHING "
    "RETURNING body"
)
SQL_REPLACE = (
    "WITH cur AS (SELECT id, body, resource_version, (display_name IS NOT DISTINCT "
    "FROM $4 AND labels = $5::jsonb AND annotations = $6::jsonb AND spec = $7::jsonb) "
    f"AS same, spec = $7::jsonb AS same_spec FROM {TABLE} WHERE {LIVE} FOR UPDATE), "
    f"upd AS (UPDATE {TABLE} t SET display_name = $4, "
    "labels = $5::jsonb, annotations = $6::jsonb, spec = $7::jsonb, "
    "shown_spec = $8::jsonb, refs = $9::jsonb, "
    "generation = t.generation + CASE WHEN cur.same_spec THEN 0 ELSE 1 END, "
    "updated_by = $10, updated_at = now() FROM cur WHERE t.id = cur.id "
    "AND NOT cur.same AND ($11::bigint IS NULL OR cur.resource_version = $11) "
    "RETURNING t.body) SELECT 'updated' AS outcome, body FROM upd UNION ALL "
    "SELECT CASE WHEN $11::bigint IS NOT NULL AND resource_version <> $11 "
    "THEN 'conflict' ELSE 'unchanged' END, body FROM cur "
    "WHERE NOT EXISTS (SELECT 1 FROM upd)"
)
SQL_LOCK_LIVE = (
    f"SELECT id, uid::text AS uid, resource_version FROM {TABLE} WHERE {LIVE} FOR UPDATE"
)
SQL_SOFT_DELETE = (
    f"UPDATE {TABLE} SET deleted_at = now(), deleted_by = $2 WHERE id = $1 RETURNING body"
)
SQL_REFERRERS = (
    "(SELECT kind, namespace, name FROM kinds WHERE refs @> $1::jsonb "
    "AND deleted_at IS NULL ORDER BY kind, namespace, name LIMIT 50) UNION ALL "
    "(SELECT kind, namespace, name FROM tasks WHERE refs @> $1::jsonb "
    "AND deleted_at IS NULL ORDER BY namespace, name LIMIT 50)"
)
# verbatim from wegent/resources/references.py
SQL_FIND = (
    "SELECT k.kind, k.namespace, k.name FROM kinds k JOIN unnest($1::text[], $2::text[], "
    "$3::text[]) AS c(kind, namespace, name) ON k.kind = c.kind AND k.namespace = c.namespace "
    "AND k.name = c.name WHERE k.deleted_at IS NULL FOR SHARE OF k"
)
AVAILABLE = '{"state":"Available","message":null}'

# -- the stored-bytes ceiling's table (CEILING_MODE=stored) ----------------------------------

STORED_TABLE = "ceiling_objects"
#: created by run.py before the servers start (one statement each)
STORED_SCHEMA = [
    f"DROP TABLE IF EXISTS {STORED_TABLE}",
    f"CREATE TABLE {STORED_TABLE} (kind text NOT NULL, namespace text NOT NULL, "
    'name text COLLATE "C" NOT NULL, uid uuid NOT NULL, resource_version bigint NOT NULL, '
    "body bytea NOT NULL)",
    f"CREATE INDEX {STORED_TABLE}_key ON {STORED_TABLE} (kind, namespace, name, uid)",
]
#: every live object's answer, copied from the bytes the service sends as is (then VACUUM
#: ANALYZE, outside a transaction)
STORED_COPY = [
    f"TRUNCATE {STORED_TABLE}",
    f"INSERT INTO {STORED_TABLE} (kind, namespace, name, uid, resource_version, body) "
    "SELECT kind, namespace, name, uid, resource_version, body FROM kinds "
    "WHERE deleted_at IS NULL",
]
STORED_GET = f"SELECT body FROM {STORED_TABLE} WHERE kind = $1 AND namespace = $2 AND name = $3"
STORED_LIST = (
    f"SELECT body, resource_version FROM {STORED_TABLE} WHERE kind = $1 AND namespace = $2 "
    "ORDER BY name, uid LIMIT $3"
)

# -- wire JSON: store.wire_list ----------------------------------------------------------------


def wire_list(kind: str, items: list[bytes], continue_: str | None, version: int = 0) -> bytes:
    """``{Kind}List`` from answered objects (store.py's, verbatim)."""
    token = f',"continue":"{continue_}"' if continue_ else ""
    head = (
        f'{{"apiVersion":"{API_VERSION}","kind":"{kind}List",'
        f'"metadata":{{"resourceVersion":"{version}"{token}}},"items":['
    )
    return b"".join((head.encode(), b",".join(items), b"]}"))


class _Named(msgspec.Struct):
    name: str
    uid: str


class _Answered(msgspec.Struct):
    metadata: _Named


#: (name, uid) of an answered object: where a page's continue token points
_decode_key = msgspec.json.Decoder(_Answered).decode


# -- request bodies: typed like the service's input Structs (same msgspec constraints) ---------

NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$(?!\n)"
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$(?!\n)"
Name = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN, min_length=1, max_length=63)]
NamespaceName = Annotated[str, msgspec.Meta(pattern=NAMESPACE_PATTERN, min_length=1, max_length=63)]
FreeForm = Annotated[dict[str, Any], msgspec.Meta(max_length=256)]
NameList = Annotated[list[Name], msgspec.Meta(max_length=64)]


class Metadata(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: Name | None = None
    namespace: NamespaceName | None = None
    displayName: Annotated[str, msgspec.Meta(max_length=255)] | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    resourceVersion: Annotated[str, msgspec.Meta(max_length=32)] | None = None


class ResourceRef(msgspec.Struct, omit_defaults=True):
    name: Name
    namespace: NamespaceName | None = None


class GhostSpec(msgspec.Struct, omit_defaults=True, kw_only=True):
    systemPrompt: Annotated[str, msgspec.Meta(min_length=1, max_length=262144)]
    mcpServers: FreeForm | None = None
    skills: NameList | None = None
    preloadSkills: NameList | None = None


class BotSpec(msgspec.Struct, omit_defaults=True, kw_only=True):
    ghostRef: ResourceRef
    shellRef: ResourceRef
    modelRef: ResourceRef | None = None
    secondaryModelRef: ResourceRef | None = None


class ModelSpec(msgspec.Struct, omit_defaults=True, kw_only=True):
    modelConfig: FreeForm
    modelType: str | None = None
    protocol: str | None = None
    apiFormat: str | None = None
    isCustomConfig: bool | None = None
    contextWindow: int | None = None
    maxOutputTokens: int | None = None
    costIndex: int | float | None = None


class ShellSpec(msgspec.Struct, omit_defaults=True, kw_only=True):
    shellType: str
    supportModel: list[str] | None = None
    baseImage: str | None = None
    baseShellRef: ResourceRef | None = None
    requiresWorkspace: bool | None = None


def _input(spec: type[msgspec.Struct]) -> type[msgspec.Struct]:
    return msgspec.defstruct(
        f"{spec.__name__}Input",
        [
            ("apiVersion", str | None, None),
            ("kind", str | None, None),
            ("metadata", Metadata),
            ("spec", spec),
            ("status", Any, None),
        ],
        kw_only=True,
        omit_defaults=True,
    )


class Kind:
    """What differs between kinds: the name, the input type, the references of a spec."""

    def __init__(self, kind: str, spec: type[msgspec.Struct]) -> None:
        self.kind = kind
        self.input = _input(spec)
        self.decoder = msgspec.json.Decoder(self.input)

    def references(self, spec: Any) -> list[tuple[str, ResourceRef, bool]]:
        """(target kind, reference, write the resolved namespace back) per reference."""
        if self.kind == "Bot":
            found = [("Ghost", spec.ghostRef, True), ("Shell", spec.shellRef, True)]
            if spec.modelRef is not None:
                found.append(("Model", spec.modelRef, True))
            if spec.secondaryModelRef is not None:
                found.append(("Model", spec.secondaryModelRef, True))
            return found
        if self.kind == "Ghost":
            return [("Skill", ResourceRef(name=s), False) for s in spec.skills or []]
        return []


KINDS = {
    "ghosts": Kind("Ghost", GhostSpec),
    "bots": Kind("Bot", BotSpec),
    "models": Kind("Model", ModelSpec),
    "shells": Kind("Shell", ShellSpec),
}

_encoder = msgspec.json.Encoder()
_encode = _encoder.encode
_decode_any = msgspec.json.decode


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- continue tokens: the algorithm of wegent.paging.py ------------------------------


class _Payload(msgspec.Struct):
    v: int
    n: str
    u: str


class Pager:
    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"wegent continue v1", hashlib.sha256).digest()

    def encode(self, scope: str, name: str, uid: str) -> str:
        payload = _encode(_Payload(1, name, uid))
        scope_bytes = scope.encode("utf-8", "surrogatepass")
        message = len(scope_bytes).to_bytes(8, "big") + scope_bytes + payload
        mac = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode("ascii")


# -- connections ---------------------------------------------------------------------------

SQL = "sql"
STORED = "stored"
MODES = (SQL, STORED)


class Conn:
    """One connection and its prepared statements (a mode's only)."""

    __slots__ = (
        "conn",
        "find",
        "get",
        "get_for_update",
        "insert",
        "list",
        "list_budgeted",
        "lock_live",
        "referrers",
        "replace",
        "soft_delete",
    )

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def prepare(self, mode: str) -> None:
        c = self.conn
        if mode == STORED:
            self.get: PreparedStatement = await c.prepare(STORED_GET)
            self.list: PreparedStatement = await c.prepare(STORED_LIST)
            return
        self.get = await c.prepare(SQL_GET)
        self.get_for_update: PreparedStatement = await c.prepare(SQL_GET_FOR_UPDATE)
        self.list = await c.prepare(SQL_LIST)
        self.list_budgeted: PreparedStatement = await c.prepare(SQL_LIST_BUDGETED)
        self.insert: PreparedStatement = await c.prepare(SQL_INSERT)
        self.replace: PreparedStatement = await c.prepare(SQL_REPLACE)
        self.lock_live: PreparedStatement = await c.prepare(SQL_LOCK_LIVE)
        self.soft_delete: PreparedStatement = await c.prepare(SQL_SOFT_DELETE)
        self.referrers: PreparedStatement = await c.prepare(SQL_REFERRERS)
        self.find: PreparedStatement = await c.prepare(SQL_FIND)


class Pool:
    """A fixed set of connections handed out LIFO; no reset query between uses."""

    def __init__(self) -> None:
        self._free: list[Conn] = []
        self._waiters: deque[asyncio.Future[Conn]] = deque()
        self._all: list[Conn] = []

    async def open(self, dsn: str, size: int, mode: str) -> None:
        # the service's session settings: its statement timeout arms a timer per statement
        timeout = os.environ.get("WEGENT_STATEMENT_TIMEOUT_MS", "10000")
        settings = {"application_name": f"wegent-ceiling-{mode}", "statement_timeout": timeout}
        for _ in range(size):
            raw = await asyncpg.connect(dsn, server_settings=settings)
            conn = Conn(raw)
            self._all.append(conn)
            await conn.prepare(mode)
            # asyncpg's prepare leaves the backend in an implicit transaction (Parse, Describe,
            # no Sync), holding its table locks until the next statement: a TRUNCATE of the
            # stored-bytes table would wait for every connection not yet used. End it.
            await raw.execute("SELECT 1")
            self._free.append(conn)

    async def close(self) -> None:
        for conn in self._all:
            await conn.conn.close()

    async def acquire(self) -> Conn:
        if self._free:
            return self._free.pop()
        waiter: asyncio.Future[Conn] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())
            raise

    def release(self, conn: Conn) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._free.append(conn)


# -- the application -------------------------------------------------------------------------


class HTTPError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = _encode(
            {
                "apiVersion": "v1",
                "kind": "Status",
                "status": "Failure",
                "code": status,
                "reason": reason,
                "message": message,
                "detail": message,
            }
        )


#: merge patches without a resourceVersion: optimistic attempts before one under the row lock
OPTIMISTIC_PATCHES = 2


class Ceiling:
    def __init__(self, mode: str | None = None) -> None:
        self.mode = mode or os.environ.get("CEILING_MODE", SQL)
        if self.mode not in MODES:
            raise ValueError(f"CEILING_MODE must be one of {', '.join(MODES)}, not {self.mode!r}")
        self.pool = Pool()
        self.pager: Pager | None = None
        self.user = os.environ.get("CEILING_USER", "bench")
        self.budget = list_budget(os.environ)
        stored = self.mode == STORED
        self.get = self.get_stored if stored else self.get_sql
        self.list_objects = self.list_stored if stored else self.list_sql

    async def startup(self) -> None:
        dsn = os.environ["WEGENT_DATABASE_URL"]
        size = int(os.environ.get("WEGENT_POOL_MAX_SIZE", "10"))
        await self.pool.open(dsn, size, self.mode)
        self.pager = Pager(os.environ.get("WEGENT_SECRET_KEY", "ceiling-secret"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                status, body = await self.handle(scope, receive)
            except HTTPError as exc:
                status, body = exc.status, exc.body
            if body is None:
                await send({"type": "http.response.start", "status": status, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:  # reported to uvicorn, which stops
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def handle(self, scope: Scope, receive: Receive) -> tuple[int, bytes | None]:
        parts = scope["path"].split("/")
        # family B: ['', 'api', 'v1', 'namespaces', ns, plural(, name)]
        # family C: ['', 'apis', 'agent.wecode.io', 'v1', 'namespaces', ns, plural(, name)]
        if len(parts) in (6, 7) and parts[3] == "namespaces" and parts[1] == "api":
            kubernetes = False
        elif len(parts) in (7, 8) and parts[4] == "namespaces" and parts[1] == "apis":
            if parts[2] != GROUP or parts[3] != VERSION:
                raise HTTPError(404, "NotFound", "unknown path")
            kubernetes = True
            parts = parts[1:]  # now shaped as family B's
        else:
            if scope["path"] == "/healthz":
                return 200, b'{"status":"ok"}'
            raise HTTPError(404, "NotFound", "unknown path")
        kind = KINDS.get(parts[5])
        if kind is None:
            raise HTTPError(404, "NotFound", "unknown path")
        ns = parts[4]
        method = scope["method"]
        writes = self.mode == SQL
        if len(parts) == 6:
            if method == "GET":
                return 200, await self.list_objects(kind, ns, scope["query_string"])
            if method == "POST" and writes:
                return 201, await self.create(kind, ns, await _body(receive))
        else:
            name = parts[6]
            if method == "GET":
                return 200, await self.get(kind, ns, name)
            if method == "PUT" and writes:
                return 200, await self.replace(kind, ns, name, await _body(receive))
            if method == "PATCH" and writes:
                return 200, await self.patch(kind, ns, name, await _body(receive))
            if method == "DELETE" and writes:
                deleted = await self.delete(kind, ns, name)
                return (200, deleted) if kubernetes else (204, None)
        raise HTTPError(405, "MethodNotAllowed", "method not allowed")

    # -- reads: the stored bytes -------------------------------------------------------------

    async def get_stored(self, kind: Kind, ns: str, name: str) -> bytes:
        conn = await self.pool.acquire()
        try:
            body: bytes | None = await conn.get.fetchval(kind.kind, ns, name)
        finally:
            self.pool.release(conn)
        if body is None:
            raise _not_found(kind, ns, name)
        return body

    async def list_stored(self, kind: Kind, ns: str, query_string: bytes) -> bytes:
        limit = _limit(query_string)
        conn = await self.pool.acquire()
        try:
            rows = await conn.list.fetch(kind.kind, ns, limit + 1)
        finally:
            self.pool.release(conn)
        page = rows[:limit]
        items = [row[0] for row in page]
        token = None
        if len(rows) > limit:
            assert self.pager is not None
            last = _decode_key(items[-1]).metadata
            token = self.pager.encode(_scope(kind, ns), last.name, last.uid)
        version = max((row[1] for row in page), default=0)
        return wire_list(kind.kind, items, token, version)

    # -- reads: the service's SQL ------------------------------------------------------------

    async def get_sql(self, kind: Kind, ns: str, name: str) -> bytes:
        conn = await self.pool.acquire()
        try:
            row = await conn.get.fetchrow(kind.kind, ns, name)
        finally:
            self.pool.release(conn)
        if row is None:
            raise _not_found(kind, ns, name)
        body: bytes = row[0]
        return body

    async def list_sql(self, kind: Kind, ns: str, query_string: bytes) -> bytes:
        """crd.py list_objects: the quick statement; only when the page holds an object over
        the budget's share of one item (its body comes back null), the budgeted statement,
        whose page stops at the byte budget. The token's key is read from the last body."""
        limit = _limit(query_string)
        conn = await self.pool.acquire()
        try:
            rows = await conn.list.fetch(kind.kind, ns, limit + 1, quick_share(self.budget, limit))
            page = rows[:limit]
            items = [row[0] for row in page]
            if None in items:  # a large object: the page is read again under the budget
                rows = await conn.list_budgeted.fetch(kind.kind, ns, limit + 1, self.budget)
                page = rows[:limit]
                items = [row[0] for row in page]
                if None in items:  # the page's byte budget ends before this row
                    page = page[: items.index(None)]
                    items = items[: len(page)]
        finally:
            self.pool.release(conn)
        # The service's list resourceVersion is its watch watermark, kept in memory: no
        # statement and no column of the rows (the output check sets the number aside).
        version = 0
        token = None
        if len(items) < len(rows):  # more rows follow the page
            assert self.pager is not None
            last = _decode_key(items[-1]).metadata
            token = self.pager.encode(_scope(kind, ns), last.name, last.uid)
        return wire_list(kind.kind, items, token, version)

    # -- writes (the service's SQL) ----------------------------------------------------------

    async def create(self, kind: Kind, ns: str, body: bytes) -> bytes:
        data = _decode_body(kind, body)
        name = data.metadata.name
        if name is None:
            raise HTTPError(422, "Invalid", "metadata.name: Required value")
        references = kind.references(data.spec)
        conn = await self.pool.acquire()
        try:
            if references:
                await conn.conn.execute("BEGIN")
                try:
                    keys = await self._resolve(conn, kind, ns, name, references)
                    row = await self._insert(conn, kind, ns, name, data, keys)
                except BaseException:
                    await conn.conn.execute("ROLLBACK")
                    raise
                await conn.conn.execute("COMMIT")
            else:
                row = await self._insert(conn, kind, ns, name, data, [])
        finally:
            self.pool.release(conn)
        if row is None:
            raise HTTPError(409, "AlreadyExists", f'{kind.kind} "{name}" already exists')
        answer: bytes = row[0]
        return answer

    async def _insert(
        self, conn: Conn, kind: Kind, ns: str, name: str, data: Any, keys: list[str]
    ) -> asyncpg.Record | None:
        meta = data.metadata
        row: asyncpg.Record | None = await conn.insert.fetchrow(
            kind.kind,
            ns,
            name,
            meta.displayName,
            _encode(meta.labels).decode(),
            _encode(meta.annotations).decode(),
            _encode(data.spec).decode(),
            None,  # shown_spec: only kinds with secrets have one
            AVAILABLE,
            _encode(keys).decode(),
            self.user,
        )
        return row

    async def _resolve(
        self,
        conn: Conn,
        kind: Kind,
        ns: str,
        name: str,
        references: list[tuple[str, ResourceRef, bool]],
    ) -> list[str]:
        """references.py: candidates (own namespace, then public), one FOR SHARE query."""
        candidates: list[list[str]] = []
        for _, ref, _ in references:
            given = ref.namespace
            if given is None or given == "default":
                order = [ns if given is None else self.user, PUBLIC]
            else:
                order = [given]
            candidates.append(list(dict.fromkeys(order)))
        wanted = {
            (target, c, ref.name)
            for (target, ref, _), cs in zip(references, candidates, strict=True)
            for c in cs
        }
        kinds, namespaces, names = zip(*sorted(wanted), strict=True)
        rows = await conn.find.fetch(list(kinds), list(namespaces), list(names))
        found = {(r[0], r[1], r[2]) for r in rows}
        keys: list[str] = []
        for (target, ref, write_back), cs in zip(references, candidates, strict=True):
            hit = next((c for c in cs if (target, c, ref.name) in found), None)
            if hit is None:
                raise HTTPError(422, "Invalid", f'{kind.kind} "{name}": {target} not found')
            if write_back:
                ref.namespace = hit
            keys.append(f"{target}/{hit}/{ref.name}")
        return sorted(set(keys))

    async def replace(self, kind: Kind, ns: str, name: str, body: bytes) -> bytes:
        data = _decode_body(kind, body)
        version = data.metadata.resourceVersion
        conn = await self.pool.acquire()
        try:
            row = await self._replace(conn, kind, ns, name, data, _version(version))
        finally:
            self.pool.release(conn)
        answer: bytes = row[1]
        return answer

    async def _replace(
        self,
        conn: Conn,
        kind: Kind,
        ns: str,
        name: str,
        data: Any,
        precondition: int | None,
        *,
        in_transaction: bool = False,
    ) -> asyncpg.Record:
        references = kind.references(data.spec)
        meta = data.metadata
        own = bool(references) and not in_transaction  # a transaction of its own
        if own:
            await conn.conn.execute("BEGIN")
        try:
            keys = await self._resolve(conn, kind, ns, name, references) if references else []
            row = await conn.replace.fetchrow(
                kind.kind,
                ns,
                name,
                meta.displayName,
                _encode(meta.labels).decode(),
                _encode(meta.annotations).decode(),
                _encode(data.spec).decode(),
                None,  # shown_spec
                _encode(keys).decode(),
                self.user,
                precondition,
            )
        except BaseException:
            if own:
                await conn.conn.execute("ROLLBACK")
            raise
        if own:
            await conn.conn.execute("COMMIT")
        if row is None:
            raise _not_found(kind, ns, name)
        if row[0] == "conflict":
            raise HTTPError(409, "Conflict", f'{kind.kind} "{name}" has been modified')
        return row

    async def patch(self, kind: Kind, ns: str, name: str, body: bytes) -> bytes:
        """crd.py: read the answered object, merge (RFC 7386) into the manifest a client would
        have sent, decode, replace with the version read as precondition; a concurrent write
        makes it read and merge again, the last attempt under the row lock."""
        patch = _decode_any(body)
        meta = patch.get("metadata") if isinstance(patch, dict) else None
        given = meta.get("resourceVersion") if isinstance(meta, dict) else None
        attempts = 1 if given else OPTIMISTIC_PATCHES + 1
        conn = await self.pool.acquire()
        try:
            for attempt in range(1, attempts + 1):
                lock = attempt == attempts and not given
                if lock:
                    await conn.conn.execute("BEGIN")
                try:
                    answer = await self._patch_once(conn, kind, ns, name, patch, given, lock)
                except HTTPError as exc:
                    if lock:
                        await conn.conn.execute("ROLLBACK")
                    if exc.status == 409 and not given:
                        continue
                    raise
                except BaseException:
                    if lock:
                        await conn.conn.execute("ROLLBACK")
                    raise
                if lock:
                    await conn.conn.execute("COMMIT")
                return answer
        finally:
            self.pool.release(conn)
        raise HTTPError(409, "Conflict", f'{kind.kind} "{name}" has been modified')

    async def _patch_once(
        self, conn: Conn, kind: Kind, ns: str, name: str, patch: Any, given: Any, lock: bool
    ) -> bytes:
        read = conn.get_for_update if lock else conn.get
        current = await read.fetchval(kind.kind, ns, name)
        if current is None:
            raise _not_found(kind, ns, name)
        stored = _decode_any(current)
        meta = stored["metadata"]
        manifest = {
            "apiVersion": stored["apiVersion"],
            "kind": stored["kind"],
            "metadata": {
                key: meta[key]
                for key in ("name", "namespace", "displayName", "labels", "annotations")
                if meta.get(key) is not None
            },
            "spec": stored["spec"],
        }
        try:
            data = msgspec.convert(merge_patch(manifest, patch), kind.input)
        except msgspec.ValidationError as exc:
            raise HTTPError(422, "Invalid", str(exc)) from None
        precondition = _version(given) if given else int(meta["resourceVersion"])
        row = await self._replace(conn, kind, ns, name, data, precondition, in_transaction=lock)
        answer: bytes = row[1]
        return answer

    async def delete(self, kind: Kind, ns: str, name: str) -> bytes:
        """Soft delete in a transaction: lock, look for live referrers, mark deleted; the
        object as deleted (family C answers it, family B answers 204)."""
        conn = await self.pool.acquire()
        try:
            await conn.conn.execute("BEGIN")
            try:
                target = await conn.lock_live.fetchrow(kind.kind, ns, name)
                if target is None:
                    raise _not_found(kind, ns, name)
                key = _encode([f"{kind.kind}/{ns}/{name}"]).decode()
                if await conn.referrers.fetch(key):
                    raise HTTPError(409, "Conflict", f'{kind.kind} "{name}" is referenced')
                deleted: bytes = await conn.soft_delete.fetchval(target[0], self.user)
            except BaseException:
                await conn.conn.execute("ROLLBACK")
                raise
            await conn.conn.execute("COMMIT")
        finally:
            self.pool.release(conn)
        return deleted


async def _body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    while message.get("more_body"):
        message = await receive()
        body += message.get("body", b"")
    return body


def _limit(query_string: bytes) -> int:
    limit = 500
    if query_string:
        for key, value in parse_qsl(query_string.decode("latin-1")):
            if key == "limit":
                limit = int(value)
    return limit


def _scope(kind: Kind, ns: str) -> str:
    """The list scope a continue token is signed for (crd.py): kind, namespace, selector,
    deleted, filters."""
    return f"{kind.kind}|{ns}||False"


def _decode_body(kind: Kind, body: bytes) -> Any:
    try:
        return kind.decoder.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise HTTPError(422, "Invalid", str(exc)) from None


def _version(version: str | None) -> int | None:
    if not version:  # "" means unset, as in Kubernetes
        return None
    if not version.isdigit():
        raise HTTPError(422, "Invalid", "metadata.resourceVersion is invalid")
    return int(version)


def _not_found(kind: Kind, ns: str, name: str) -> HTTPError:
    return HTTPError(404, "NotFound", f'{kind.kind} "{name}" not found in namespace "{ns}"')


app = Ceiling()
