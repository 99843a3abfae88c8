"""The ceiling: the least a server can do to answer the benchmarked requests.

A bare ASGI callable (no framework, no auth, no error mapping) served by uvicorn with the
service's settings, over asyncpg connections with prepared statements. For each operation it
runs the SAME SQL statements the service runs (copied from ``wegent/resources/store.py``,
``service.py`` and ``references.py``: same tables, columns, ``to_char`` formatting, locks and
transactions) and answers the same JSON, encoded with msgspec with the JSONB text embedded as
``msgspec.Raw`` as ``store.py`` does; a GET or a list answers byte for byte what the service
answers (``run.py`` checks this before measuring).

Routes are the service's path family B, so the same wrk scripts hit both:
``/api/v1/namespaces/{ns}/{ghosts|bots|models|shells}[/{name}]`` with GET, POST, PUT, PATCH
and DELETE, plus ``/healthz``.

What it does not do, by design: authenticate or authorize (no JWT, no role lookup), validate
labels and annotations key by key, check ``apiVersion``/``kind``/namespace agreement, dry runs,
``fieldValidation`` warnings, label selectors, continue tokens on input, secrets. It keeps what
costs the database or the wire: body decoding into typed Structs, reference resolution with one
locking query in a transaction, the write, the answer.

Run: ``uvicorn ceiling:app --app-dir benchmarks`` with ``WEGENT_DATABASE_URL`` (and
``WEGENT_SECRET_KEY`` to sign continue tokens exactly as the service does).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
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
PUBLIC = "public"

# -- SQL: verbatim from wegent/resources/store.py (table "kinds") -----------------------------

_TS = "to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
COLUMNS = ", ".join(
    [
        "id",
        "uid::text AS uid",
        "kind",
        "namespace",
        "name",
        "display_name",
        "labels::text AS labels",
        "annotations::text AS annotations",
        "spec::text AS spec",
        "status::text AS status",
        "resource_version",
        "generation",
        "created_by",
        "updated_by",
        _TS.format(col="created_at") + " AS created",
        _TS.format(col="updated_at") + " AS updated",
        _TS.format(col="deleted_at") + " AS deleted",
    ]
)
LIVE = "kind = $1 AND namespace = $2 AND name = $3 AND deleted_at IS NULL"
TABLE = "kinds"
RETURNING = f"RETURNING {COLUMNS}"

SQL_GET = f"SELECT {COLUMNS} FROM {TABLE} WHERE {LIVE}"
# store.py list_statement for one namespace, no selector, no continue token:
SQL_LIST = (
    f"SELECT {COLUMNS} FROM {TABLE} WHERE kind = $1 AND deleted_at IS NULL "
    "AND namespace = $2 ORDER BY name, uid LIMIT $3"
)
SQL_INSERT = (
    f"INSERT INTO {TABLE} (uid, kind, namespace, name, display_name, labels, "
    "annotations, spec, status, refs, resource_version, generation, created_by, "
    "updated_by, created_at, updated_at) VALUES (gen_random_uuid(), $1, $2, $3, $4, "
    "$5::jsonb, $6::jsonb, $7::jsonb, $8::jsonb, $9::jsonb, "
    "nextval('resource_version_seq'), 1, $10, $10, now(), now()) "
    f"ON CONFLICT DO NOTHING {RETURNING}"
)
SQL_REPLACE = (
    f"WITH cur AS (SELECT id, (display_name IS NOT DISTINCT FROM $4 AND "
    "labels = $5::jsonb AND annotations = $6::jsonb AND spec = $7::jsonb) AS same, "
    f"spec = $7::jsonb AS same_spec, resource_version FROM {TABLE} WHERE {LIVE} "
    f"FOR UPDATE), upd AS (UPDATE {TABLE} t SET display_name = $4, "
    "labels = $5::jsonb, annotations = $6::jsonb, spec = $7::jsonb, "
    "refs = $8::jsonb, resource_version = nextval('resource_version_seq'), "
    "generation = t.generation + CASE WHEN cur.same_spec THEN 0 ELSE 1 END, "
    "updated_by = $9, updated_at = now() FROM cur WHERE t.id = cur.id "
    "AND NOT cur.same AND ($10::bigint IS NULL OR cur.resource_version = $10) "
    f"RETURNING t.*) SELECT 'updated' AS outcome, {COLUMNS} FROM upd UNION ALL "
    "SELECT CASE WHEN $10::bigint IS NOT NULL AND resource_version <> $10 "
    f"THEN 'conflict' ELSE 'unchanged' END, {COLUMNS} FROM {TABLE} "
    "WHERE id = (SELECT id FROM cur) AND NOT EXISTS (SELECT 1 FROM upd)"
)
SQL_LOCK_LIVE = f"SELECT id FROM {TABLE} WHERE {LIVE} FOR UPDATE"
SQL_SOFT_DELETE = (
    f"UPDATE {TABLE} SET deleted_at = now(), deleted_by = $2, "
    "resource_version = nextval('resource_version_seq') WHERE id = $1"
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

# -- wire JSON: the Structs of wegent/resources/store.py ---------------------------------------


class _Meta(msgspec.Struct, gc=False):
    name: str
    namespace: str
    displayName: str | None
    labels: msgspec.Raw
    annotations: msgspec.Raw
    uid: str
    resourceVersion: str
    generation: int
    creationTimestamp: str
    updateTimestamp: str
    deletionTimestamp: str | None
    createdBy: str
    updatedBy: str


class WireObject(msgspec.Struct, gc=False):
    apiVersion: str
    kind: str
    metadata: _Meta
    spec: msgspec.Raw
    status: msgspec.Raw


class _ListMeta(msgspec.Struct, omit_defaults=True, gc=False):
    resourceVersion: str
    continue_: str | None = msgspec.field(default=None, name="continue")


class WireList(msgspec.Struct, gc=False):
    apiVersion: str
    kind: str
    metadata: _ListMeta
    items: list[WireObject]


def wire_object(row: asyncpg.Record, o: int = 0) -> WireObject:
    """A row (columns from ``o`` on, in COLUMNS order) as the service answers it."""
    return WireObject(
        API_VERSION,
        row[o + 2],
        _Meta(
            row[o + 4],
            row[o + 3],
            row[o + 5],
            msgspec.Raw(row[o + 6].encode()),
            msgspec.Raw(row[o + 7].encode()),
            row[o + 1],
            str(row[o + 10]),
            row[o + 11],
            row[o + 14],
            row[o + 15],
            row[o + 16],
            row[o + 12],
            row[o + 13],
        ),
        msgspec.Raw(row[o + 8].encode()),
        msgspec.Raw(row[o + 9].encode()),
    )


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


class Conn:
    """One connection and its prepared statements."""

    __slots__ = (
        "conn",
        "find",
        "get",
        "insert",
        "list",
        "lock_live",
        "referrers",
        "replace",
        "soft_delete",
    )

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def prepare(self) -> None:
        c = self.conn
        self.get: PreparedStatement = await c.prepare(SQL_GET)
        self.list: PreparedStatement = await c.prepare(SQL_LIST)
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

    async def open(self, dsn: str, size: int) -> None:
        # the service's session settings: its statement timeout arms a timer per statement
        timeout = os.environ.get("WEGENT_STATEMENT_TIMEOUT_MS", "10000")
        settings = {"application_name": "wegent-ceiling", "statement_timeout": timeout}
        for _ in range(size):
            raw = await asyncpg.connect(dsn, server_settings=settings)
            conn = Conn(raw)
            await conn.prepare()
            self._all.append(conn)
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

JSON_HEADERS = [(b"content-type", b"application/json")]


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


class Ceiling:
    def __init__(self) -> None:
        self.pool = Pool()
        self.pager: Pager | None = None
        self.user = os.environ.get("CEILING_USER", "bench")

    async def startup(self) -> None:
        dsn = os.environ["WEGENT_DATABASE_URL"]
        size = int(os.environ.get("WEGENT_POOL_MAX_SIZE", "10"))
        await self.pool.open(dsn, size)
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
        # ['', 'api', 'v1', 'namespaces', ns, plural(, name)]
        if len(parts) in (6, 7) and parts[3] == "namespaces" and parts[1] == "api":
            kind = KINDS.get(parts[5])
            if kind is None:
                raise HTTPError(404, "NotFound", "unknown path")
            ns = parts[4]
            method = scope["method"]
            if len(parts) == 6:
                if method == "GET":
                    return 200, await self.list_objects(kind, ns, scope["query_string"])
                if method == "POST":
                    return 201, await self.create(kind, ns, await _body(receive))
            else:
                name = parts[6]
                if method == "GET":
                    return 200, await self.get(kind, ns, name)
                if method == "PUT":
                    return 200, await self.replace(kind, ns, name, await _body(receive))
                if method == "PATCH":
                    return 200, await self.patch(kind, ns, name, await _body(receive))
                if method == "DELETE":
                    await self.delete(kind, ns, name)
                    return 204, None
            raise HTTPError(405, "MethodNotAllowed", "method not allowed")
        if scope["path"] == "/healthz":
            return 200, b'{"status":"ok"}'
        raise HTTPError(404, "NotFound", "unknown path")

    # -- operations --------------------------------------------------------------------------

    async def get(self, kind: Kind, ns: str, name: str) -> bytes:
        conn = await self.pool.acquire()
        try:
            row = await conn.get.fetchrow(kind.kind, ns, name)
        finally:
            self.pool.release(conn)
        if row is None:
            raise _not_found(kind, ns, name)
        return _encode(wire_object(row))

    async def list_objects(self, kind: Kind, ns: str, query_string: bytes) -> bytes:
        limit = 500
        if query_string:
            for key, value in parse_qsl(query_string.decode("latin-1")):
                if key == "limit":
                    limit = int(value)
        conn = await self.pool.acquire()
        try:
            rows = await conn.list.fetch(kind.kind, ns, limit + 1)
        finally:
            self.pool.release(conn)
        token = None
        if len(rows) > limit:
            rows = rows[:limit]
            assert self.pager is not None
            token = self.pager.encode(f"{kind.kind}|{ns}||False", rows[-1][4], rows[-1][1])
        items = [wire_object(row) for row in rows]
        version = max((row[10] for row in rows), default=0)
        meta = _ListMeta(str(version), token)
        return _encode(WireList(API_VERSION, f"{kind.kind}List", meta, items))

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
        return _encode(wire_object(row))

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
        return _encode(wire_object(row, 1))

    async def _replace(
        self, conn: Conn, kind: Kind, ns: str, name: str, data: Any, precondition: int | None
    ) -> asyncpg.Record:
        references = kind.references(data.spec)
        meta = data.metadata
        if references:
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
                _encode(keys).decode(),
                self.user,
                precondition,
            )
        except BaseException:
            if references:
                await conn.conn.execute("ROLLBACK")
            raise
        if references:
            await conn.conn.execute("COMMIT")
        if row is None:
            raise _not_found(kind, ns, name)
        if row[0] == "conflict":
            raise HTTPError(409, "Conflict", f'{kind.kind} "{name}" has been modified')
        return row

    async def patch(self, kind: Kind, ns: str, name: str, body: bytes) -> bytes:
        """Read, merge (RFC 7386), decode, replace with the version read as precondition;
        a concurrent write makes it read and merge again (at most three times)."""
        patch = _decode_any(body)
        meta = patch.get("metadata") if isinstance(patch, dict) else None
        given = meta.get("resourceVersion") if isinstance(meta, dict) else None
        conn = await self.pool.acquire()
        try:
            for _ in range(3):
                current = await conn.get.fetchrow(kind.kind, ns, name)
                if current is None:
                    raise _not_found(kind, ns, name)
                manifest: dict[str, Any] = {
                    "apiVersion": API_VERSION,
                    "kind": current[2],
                    "metadata": {
                        "name": current[4],
                        "namespace": current[3],
                        "labels": _decode_any(current[6]),
                        "annotations": _decode_any(current[7]),
                    },
                    "spec": _decode_any(current[8]),
                }
                if current[5] is not None:
                    manifest["metadata"]["displayName"] = current[5]
                try:
                    data = msgspec.convert(merge_patch(manifest, patch), kind.input)
                except msgspec.ValidationError as exc:
                    raise HTTPError(422, "Invalid", str(exc)) from None
                precondition = _version(given) if given else current[10]
                try:
                    row = await self._replace(conn, kind, ns, name, data, precondition)
                except HTTPError as exc:
                    if exc.status == 409 and not given:
                        continue
                    raise
                return _encode(wire_object(row, 1))
        finally:
            self.pool.release(conn)
        raise HTTPError(409, "Conflict", f'{kind.kind} "{name}" has been modified')

    async def delete(self, kind: Kind, ns: str, name: str) -> None:
        """Soft delete in a transaction: lock, look for live referrers, mark deleted."""
        conn = await self.pool.acquire()
        try:
            await conn.conn.execute("BEGIN")
            try:
                target = await conn.lock_live.fetchval(kind.kind, ns, name)
                if target is None:
                    raise _not_found(kind, ns, name)
                key = _encode([f"{kind.kind}/{ns}/{name}"]).decode()
                if await conn.referrers.fetch(key):
                    raise HTTPError(409, "Conflict", f'{kind.kind} "{name}" is referenced')
                await conn.soft_delete.fetch(target, self.user)
            except BaseException:
                await conn.conn.execute("ROLLBACK")
                raise
            await conn.conn.execute("COMMIT")
        finally:
            self.pool.release(conn)


async def _body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    while message.get("more_body"):
        message = await receive()
        body += message.get("body", b"")
    return body


def _decode_body(kind: Kind, body: bytes) -> Any:
    try:
        return kind.decoder.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise HTTPError(422, "Invalid", str(exc)) from None


def _version(version: str | None) -> int | None:
    if version is None:
        return None
    if not version.isdigit():
        raise HTTPError(422, "Invalid", "metadata.resourceVersion is invalid")
    return int(version)


def _not_found(kind: Kind, ns: str, name: str) -> HTTPError:
    return HTTPError(404, "NotFound", f'{kind.kind} "{name}" not found in namespace "{ns}"')


app = Ceiling()
