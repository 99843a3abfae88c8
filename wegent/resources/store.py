"""SQL for the resource tables and the encoding of rows straight to wire JSON.

Every statement serves both ``kinds`` and ``tasks`` (the table name is the only difference).
JSONB columns come back as text already in wire shape and are embedded as ``msgspec.Raw``:
no per-field decode and re-encode on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

from wegent.resources.meta import API_VERSION
from wegent.resources.selectors import Selector

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


@dataclass(frozen=True)
class Statements:
    """The statements of one table."""

    get: str
    get_for_update: str
    stored_spec: str
    insert: str
    replace: str
    lock_live: str
    lock_namespace: str
    soft_delete: str
    referrers: str
    latest_deleted: str
    restore: str
    live_targets: str

    @classmethod
    def for_table(cls, table: str) -> Statements:
        returning = f"RETURNING {COLUMNS}"
        return cls(
            get=f"SELECT {COLUMNS} FROM {table} WHERE {LIVE}",
            get_for_update=f"SELECT {COLUMNS} FROM {table} WHERE {LIVE} FOR UPDATE",
            stored_spec=f"SELECT spec::text FROM {table} WHERE {LIVE}",
            insert=(
                f"INSERT INTO {table} (uid, kind, namespace, name, display_name, labels, "
                "annotations, spec, status, refs, resource_version, generation, created_by, "
                "updated_by, created_at, updated_at) VALUES (gen_random_uuid(), $1, $2, $3, $4, "
                "$5::jsonb, $6::jsonb, $7::jsonb, $8::jsonb, $9::jsonb, "
                "nextval('resource_version_seq'), 1, $10, $10, now(), now()) "
                f"ON CONFLICT DO NOTHING {returning}"
            ),
            # One statement: lock the live row, refuse a stale precondition, skip a no-op,
            # otherwise write. ``outcome`` tells which; generation moves only with the spec.
            # Every decision reads ``cur``: the row as locked, which is its newest version
            # even when the lock had to wait for a concurrent write (the statement's own
            # snapshot would still show the version before it).
            replace=(
                f"WITH cur AS (SELECT *, (display_name IS NOT DISTINCT FROM $4 AND "
                "labels = $5::jsonb AND annotations = $6::jsonb AND spec = $7::jsonb) AS same, "
                f"spec = $7::jsonb AS same_spec FROM {table} WHERE {LIVE} FOR UPDATE), "
                f"upd AS (UPDATE {table} t SET display_name = $4, "
                "labels = $5::jsonb, annotations = $6::jsonb, spec = $7::jsonb, "
                "refs = $8::jsonb, resource_version = nextval('resource_version_seq'), "
                "generation = t.generation + CASE WHEN cur.same_spec THEN 0 ELSE 1 END, "
                "updated_by = $9, updated_at = now() FROM cur WHERE t.id = cur.id "
                "AND NOT cur.same AND ($10::bigint IS NULL OR cur.resource_version = $10) "
                f"RETURNING t.*) SELECT 'updated' AS outcome, {COLUMNS} FROM upd UNION ALL "
                "SELECT CASE WHEN $10::bigint IS NOT NULL AND resource_version <> $10 "
                f"THEN 'conflict' ELSE 'unchanged' END, {COLUMNS} FROM cur "
                "WHERE NOT EXISTS (SELECT 1 FROM upd)"
            ),
            lock_live=f"SELECT id FROM {table} WHERE {LIVE} FOR UPDATE",
            # Writes into a namespace hold this lock (inserts through their foreign key), and
            # deleting the namespace takes the row's exclusive lock: they cannot cross.
            lock_namespace="SELECT id FROM namespaces WHERE name = $1 FOR KEY SHARE",
            soft_delete=(
                f"UPDATE {table} SET deleted_at = now(), deleted_by = $2, "
                "resource_version = nextval('resource_version_seq') WHERE id = $1"
            ),
            referrers=(
                "(SELECT kind, namespace, name FROM kinds WHERE refs @> $1::jsonb "
                "AND deleted_at IS NULL ORDER BY kind, namespace, name LIMIT 50) UNION ALL "
                "(SELECT kind, namespace, name FROM tasks WHERE refs @> $1::jsonb "
                "AND deleted_at IS NULL ORDER BY namespace, name LIMIT 50)"
            ),
            latest_deleted=(
                f"SELECT id, refs::text AS refs FROM {table} WHERE kind = $1 AND namespace = $2 "
                "AND name = $3 AND deleted_at IS NOT NULL "
                "ORDER BY deleted_at DESC, id DESC LIMIT 1 FOR UPDATE"
            ),
            restore=(
                f"UPDATE {table} SET deleted_at = NULL, deleted_by = NULL, updated_by = $2, "
                "resource_version = nextval('resource_version_seq'), updated_at = now() "
                f"WHERE id = $1 {returning}"
            ),
            live_targets=(
                "SELECT t.key FROM unnest($1::text[]) AS t(key) WHERE NOT EXISTS ("
                "SELECT 1 FROM kinds k WHERE k.kind = split_part(t.key, '/', 1) "
                "AND k.namespace = split_part(t.key, '/', 2) "
                "AND k.name = split_part(t.key, '/', 3) AND k.deleted_at IS NULL)"
            ),
        )


def list_statement(
    table: str,
    kind: str,
    namespaces: list[str] | None,
    *,
    deleted: bool,
    after: tuple[str, str] | None,
    selector: Selector,
    filters: list[tuple[str, str]],
    limit: int,
) -> tuple[str, list[Any]]:
    """One page in (name, uid) order, keyset after ``after``; None namespaces means all.

    One namespace is matched with ``=`` so the (kind, namespace, name) index returns rows in
    name order and the page costs what it reads, whatever the table's size (API.md §7).
    """
    params: list[Any] = [kind]
    where = ["kind = $1", "deleted_at IS NOT NULL" if deleted else "deleted_at IS NULL"]
    if namespaces is not None and len(namespaces) == 1:
        params.append(namespaces[0])
        where.append(f"namespace = ${len(params)}")
    elif namespaces is not None:
        params.append(namespaces)
        where.append(f"namespace = ANY(${len(params)}::text[])")
    for column, value in filters:
        params.append(value)
        where.append(f"{column} = ${len(params)}")
    if after is not None:
        params += list(after)
        n, u = len(params) - 1, len(params)
        where.append(f"name >= ${n} AND (name, uid) > (${n}, ${u}::uuid)")
    fragment, selector_params = selector.sql("labels", len(params) + 1)
    if selector_params:
        where.append(fragment)
        params += selector_params
    params.append(limit)
    sql = (
        f"SELECT {COLUMNS} FROM {table} WHERE {' AND '.join(where)} "
        f"ORDER BY name, uid LIMIT ${len(params)}"
    )
    return sql, params


class _Meta(msgspec.Struct):
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


class WireObject(msgspec.Struct):
    """An object as answered (API.md §1), with JSON columns embedded raw."""

    apiVersion: str
    kind: str
    metadata: _Meta
    spec: msgspec.Raw
    status: msgspec.Raw


class _ListMeta(msgspec.Struct, omit_defaults=True):
    resourceVersion: str
    continue_: str | None = msgspec.field(default=None, name="continue")


class WireList(msgspec.Struct):
    apiVersion: str
    kind: str
    metadata: _ListMeta
    items: list[WireObject]


_encoder = msgspec.json.Encoder()


def wire_object(row: asyncpg.Record, spec: bytes | None = None) -> WireObject:
    """A row as the API answers it; ``spec`` replaces the stored spec (masked secrets)."""
    return WireObject(
        apiVersion=API_VERSION,
        kind=row["kind"],
        metadata=_Meta(
            name=row["name"],
            namespace=row["namespace"],
            displayName=row["display_name"],
            labels=msgspec.Raw(row["labels"].encode()),
            annotations=msgspec.Raw(row["annotations"].encode()),
            uid=row["uid"],
            resourceVersion=str(row["resource_version"]),
            generation=row["generation"],
            creationTimestamp=row["created"],
            updateTimestamp=row["updated"],
            deletionTimestamp=row["deleted"],
            createdBy=row["created_by"],
            updatedBy=row["updated_by"],
        ),
        spec=msgspec.Raw(spec if spec is not None else row["spec"].encode()),
        status=msgspec.Raw(row["status"].encode()),
    )


def encode(value: msgspec.Struct) -> bytes:
    return _encoder.encode(value)


def wire_list(kind: str, items: list[WireObject], continue_: str | None, version: int = 0) -> bytes:
    """``{Kind}List``; its resourceVersion is the highest among its items ("0" when empty)."""
    meta = _ListMeta(resourceVersion=str(version), continue_=continue_)
    return _encoder.encode(WireList(API_VERSION, f"{kind}List", meta, items))
