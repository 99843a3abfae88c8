"""Reference resolution (API.md §4): every reference of a write checked with one query.

A reference without a namespace means the referring object's namespace, ``default`` the
caller's personal one; either falls back to ``public``. The caller must be able to read the
namespace the target is found in; a target it cannot read is reported as not found. Resolved
namespaces are written back into the spec, so stored references never depend on the reader.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from wegent.auth.access import Access, Principal
from wegent.auth.cache import MISSING
from wegent.errors import Cause
from wegent.names import DEFAULT, PUBLIC
from wegent.resources.meta import ResourceRef

_FIND = (
    "SELECT k.kind, k.namespace, k.name FROM kinds k JOIN unnest($1::text[], $2::text[], "
    "$3::text[]) AS c(kind, namespace, name) ON k.kind = c.kind AND k.namespace = c.namespace "
    "AND k.name = c.name WHERE k.deleted_at IS NULL FOR SHARE OF k"
)


@dataclass(frozen=True)
class RefField:
    """Where a kind's spec references other objects, declared on its registry entry.

    ``path`` is dotted, relative to the spec; ``name[]`` steps into every item of a list. A
    path that ends at strings (``skills[]``) holds names, found but not rewritten (§4); one that
    ends at ``{name, namespace}`` objects gets the resolved namespace written back.
    """

    path: str
    kind: str


def references_of(spec: object, fields: tuple[RefField, ...]) -> list[Reference]:
    """Every reference ``spec`` makes through ``fields``, each with its exact field path."""
    found: list[Reference] = []
    for declared in fields:
        for where, value in _walk([("spec", spec)], declared.path.split(".")):
            if isinstance(value, ResourceRef):
                found.append(Reference(where, declared.kind, value))
            elif isinstance(value, str):
                ref = ResourceRef(name=value)
                found.append(Reference(where, declared.kind, ref, write_back=False))
    return found


def _walk(nodes: list[tuple[str, object]], steps: list[str]) -> list[tuple[str, object]]:
    for step in steps:
        name, each = step.removesuffix("[]"), step.endswith("[]")
        reached = [(f"{where}.{name}", getattr(node, name, None)) for where, node in nodes]
        if each:
            reached = [
                (f"{where}[{index}]", item)
                for where, items in reached
                for index, item in enumerate(items or ())
            ]
        nodes = [(where, node) for where, node in reached if node is not None]
    return nodes


@dataclass
class Reference:
    """One reference of a spec: where it is, what kind it targets, and the reference itself."""

    field: str
    kind: str
    ref: ResourceRef
    write_back: bool = True


def ref_key(kind: str, namespace: str, name: str) -> str:
    """How ``refs`` columns name a target: ``Kind/namespace/name``."""
    return f"{kind}/{namespace}/{name}"


Key = tuple[str, str, str]  # kind, namespace, name
#: Whether a live object has the key: its value (any) when it has, None when it has not.
Lookup = Callable[[Key], Awaitable[object]]


class References:
    """Resolves the references of one write against live objects."""

    def __init__(self, access: Access) -> None:
        self._access = access

    async def resolve(
        self,
        conn: asyncpg.Connection,
        principal: Principal,
        namespace: str,
        references: list[Reference],
    ) -> tuple[list[str], list[Cause]]:
        """Return the ``refs`` keys and the causes of the references that were not found.

        Found targets are locked (FOR SHARE) until the write commits, so a concurrent delete
        waits and then sees the new referrer.
        """
        if not references:
            return [], []
        candidates = [await self._candidates(conn, principal, namespace, r) for r in references]
        wanted = _wanted(references, candidates)
        found: set[Key] = set()
        if wanted:
            kinds, namespaces, names = zip(*sorted(wanted), strict=True)
            rows = await conn.fetch(_FIND, list(kinds), list(namespaces), list(names))
            found = {(row["kind"], row["namespace"], row["name"]) for row in rows}
        return self._decide(principal, namespace, references, candidates, found)

    async def resolve_unlocked(
        self, principal: Principal, namespace: str, references: list[Reference], lookup: Lookup
    ) -> tuple[list[str], list[Cause]]:
        """:meth:`resolve` without a connection or a lock: each candidate is looked up with
        ``lookup`` (all at once, so coalesced lookups share a statement). The write that
        follows must itself check that the targets found are still there (``insert_many``
        does: it locks them or inserts nothing)."""
        if not references:
            return [], []
        candidates = [await self._candidates(None, principal, namespace, r) for r in references]
        wanted = sorted(_wanted(references, candidates))
        values = await asyncio.gather(*(lookup(key) for key in wanted))
        found = {key for key, value in zip(wanted, values, strict=True) if value is not None}
        return self._decide(principal, namespace, references, candidates, found)

    def _decide(
        self,
        principal: Principal,
        namespace: str,
        references: list[Reference],
        candidates: list[list[str]],
        found: set[Key],
    ) -> tuple[list[str], list[Cause]]:
        """Each reference's target: the first candidate namespace it was found in, written
        back into the reference (unless it names a string); a cause for each not found."""
        keys: list[str] = []
        causes: list[Cause] = []
        for reference, namespaces_tried in zip(references, candidates, strict=True):
            hit = next(
                (
                    ns
                    for ns in namespaces_tried
                    if (reference.kind, ns, reference.ref.name) in found
                ),
                None,
            )
            if hit is None:
                causes.append(self._not_found(reference, principal, namespace))
                continue
            if reference.write_back:
                reference.ref.namespace = hit
            keys.append(ref_key(reference.kind, hit, reference.ref.name))
        return sorted(set(keys)), causes

    async def _candidates(
        self,
        conn: asyncpg.Connection | None,
        principal: Principal,
        namespace: str,
        reference: Reference,
    ) -> list[str]:
        """Where to look, in order, limited to namespaces the caller can read."""
        given = reference.ref.namespace
        if given is None:
            order = [namespace, PUBLIC]
        elif given == DEFAULT:
            order = [principal.username, PUBLIC]
        else:
            order = [given]
        readable = []
        for ns in dict.fromkeys(order):
            allowed = self._access.known_allows(principal, ns, "read")  # no coroutine if cached
            if allowed is MISSING:
                allowed = await self._access.allows(principal, ns, "read", conn)
            if allowed:
                readable.append(ns)
        return readable

    @staticmethod
    def _not_found(reference: Reference, principal: Principal, namespace: str) -> Cause:
        given = reference.ref.namespace
        where = Access.resolve(principal, given) if given else namespace
        message = f'{reference.kind} "{reference.ref.name}" not found in namespace "{where}"'
        if given in (None, DEFAULT) and where != PUBLIC:
            message += ' or "public"'
        return Cause("FieldValueNotFound", message, reference.field)


def _wanted(references: list[Reference], candidates: list[list[str]]) -> set[Key]:
    """Every (kind, namespace, name) to look for: each reference in each of its candidates."""
    return {
        (r.kind, ns, r.ref.name)
        for r, namespaces in zip(references, candidates, strict=True)
        for ns in namespaces
    }
