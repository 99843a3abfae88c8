"""Batch apply and delete (API.md §9): many manifests in one call, dependency-ordered.

Items are processed referenced kinds first (delete: the reverse) and answered in the order
given. With ``atomic`` every item runs in one transaction (each in a savepoint) and nothing is
kept unless all succeed; a dry run is such a transaction, always rolled back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from wegent.db.engine import Database
from wegent.errors import ApiError, Cause, Invalid
from wegent.resources.crd import Caller, CRDService, unit
from wegent.resources.decode import decode
from wegent.resources.envelope import input_type
from wegent.resources.manifests import parse_manifests
from wegent.resources.registry import APPLY_ORDER

_JSON_TYPES = (
    (type(None), "null"),
    (bool, "bool"),
    (int, "int"),
    (float, "float"),
    (str, "str"),
    (list, "array"),
)
_NOT_APPLIED = "not applied: the batch is atomic and another item failed"


class ItemResult(msgspec.Struct):
    kind: str | None
    name: str | None
    namespace: str
    operation: str
    success: bool
    error: str | None = None


class BatchResult(msgspec.Struct):
    success: bool
    message: str
    results: list[ItemResult]


class _Item(msgspec.Struct):
    """What a manifest says about itself before it is validated."""

    kind: str | None = None
    name: str | None = None


Step = Callable[[CRDService[Any], Any, Any], Awaitable[str]]


class Batch:
    """Runs batches against the per-kind services."""

    def __init__(self, db: Database, services: dict[str, CRDService[Any]]) -> None:
        self._db = db
        self._services = services

    async def apply(
        self,
        caller: Caller,
        body: bytes,
        media_type: str,
        *,
        atomic: bool,
        dry_run: bool,
        field_validation: str,
    ) -> BatchResult:
        async def step(service: CRDService[Any], manifest: Any, conn: Any) -> str:
            decoded = decode(manifest, input_type(service.kind), field_validation=field_validation)
            return await service.apply(caller, decoded.value, dry_run=False, conn=conn)

        return await self._run(caller, body, media_type, step, atomic, dry_run, "Applied", 1)

    async def delete(
        self,
        caller: Caller,
        body: bytes,
        media_type: str,
        *,
        atomic: bool,
        dry_run: bool,
        force: bool,
    ) -> BatchResult:
        async def step(service: CRDService[Any], manifest: Any, conn: Any) -> str:
            name = _describe(manifest).name or ""
            await service.delete(caller, name, force=force, dry_run=False, conn=conn)
            return "deleted"

        return await self._run(caller, body, media_type, step, atomic, dry_run, "Deleted", -1)

    async def _run(
        self,
        caller: Caller,
        body: bytes,
        media_type: str,
        step: Step,
        atomic: bool,
        dry_run: bool,
        verb: str,
        direction: int,
    ) -> BatchResult:
        manifests = parse_manifests(body, media_type)
        _check_objects(manifests)
        order = sorted(
            range(len(manifests)),
            key=lambda i: direction * APPLY_ORDER.get(_describe(manifests[i]).kind or "", -1),
        )
        results: list[ItemResult | None] = [None] * len(manifests)
        # A dry run is one transaction rolled back at the end, so later items see earlier ones.
        if not atomic and not dry_run:
            for index in order:
                results[index] = await self._one(caller, manifests[index], step, None)
        else:
            async with self._db.acquire() as conn:
                try:
                    async with unit(conn, needed=True, dry_run=dry_run):
                        for index in order:
                            results[index] = await self._one(caller, manifests[index], step, conn)
                        if not all(r is not None and r.success for r in results):
                            raise _RollBack
                except _RollBack:
                    for result in results:
                        if result is not None and result.success:
                            result.success, result.error = False, _NOT_APPLIED
        done = [r for r in results if r is not None]
        applied = sum(r.success for r in done)
        return BatchResult(
            success=applied == len(done),
            message=f"{verb} {applied}/{len(done)} resources",
            results=done,
        )

    async def _one(self, caller: Caller, manifest: Any, step: Step, conn: Any) -> ItemResult:
        item = _describe(manifest)
        result = ItemResult(item.kind, item.name, caller.namespace, "failed", False)
        service = self._services.get(item.kind or "")
        if service is None:
            result.error = f'unknown kind "{item.kind}"' if item.kind else "kind is required"
            return result
        try:
            if conn is None:
                result.operation = await step(service, manifest, None)
            else:  # a savepoint, so one failure does not abort the batch's transaction
                async with unit(conn, needed=True, dry_run=False):
                    result.operation = await step(service, manifest, conn)
        except ApiError as exc:
            result.error = exc.message
            return result
        result.success = True
        return result


def _check_objects(manifests: list[object]) -> None:
    """Every manifest is an object (422 naming each one that is not): anything else is a
    malformed body, not an item that failed."""
    causes = [
        Cause(
            reason="FieldValueInvalid",
            message=f"Expected `object`, got `{_json_type(item)}`",
            field=f"[{index}]",
        )
        for index, item in enumerate(manifests)
        if not isinstance(item, dict)
    ]
    if causes:
        parts = ", ".join(f"{c.field}: {c.message}" for c in causes)
        raise Invalid(f"every manifest must be an object: {parts}", causes=causes)


def _json_type(value: object) -> str:
    """The JSON type of a parsed value, in msgspec's words (bool before int: it is one)."""
    return next((name for cls, name in _JSON_TYPES if isinstance(value, cls)), "object")


class _RollBack(Exception):
    """Unwinds an atomic batch's transaction after its results are recorded."""


def _describe(manifest: Any) -> _Item:
    if not isinstance(manifest, dict):
        return _Item()
    metadata = manifest.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    kind = manifest.get("kind")
    return _Item(kind if isinstance(kind, str) else None, name if isinstance(name, str) else None)
