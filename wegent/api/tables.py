"""The ``meta.k8s.io/v1`` ``Table`` representation (API.md §14), what ``kubectl get`` prints.

A client asks for it with ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``. Columns
are Name, the kind's own (declared on its registry entry as JSONPaths, like a custom
resource's ``additionalPrinterColumns``) and Age, which is sent already as a human duration,
as the API server's table convertor does. Each row carries the object as
``PartialObjectMetadata`` (``includeObject=Metadata``, the default), whole (``Object``) or not
at all (``None``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

from wegent.resources.registry import Column

TABLE_VERSIONS = ("v1", "v1beta1")
_NAME = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}
_AGE = {
    "name": "Age",
    "type": "date",
    "format": "",
    "description": "The time since the object was created.",
    "priority": 0,
}
_decode = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


def wanted(accept: str | None) -> str | None:
    """The Table version the ``Accept`` header asks for first, or None for plain JSON.

    Media types are taken in the client's order (as the API server does): a plain
    ``application/json`` before the Table means the object itself.
    """
    if not accept or "as=Table" not in accept:
        return None
    for media_range in accept.split(","):
        kind, *parameters = (part.strip() for part in media_range.split(";"))
        given = dict(p.split("=", 1) for p in parameters if "=" in p)
        if kind not in ("application/json", "*/*", "application/*"):
            continue
        if "as" not in given:
            return None
        if (
            given["as"] == "Table"
            and given.get("g") == "meta.k8s.io"
            and given.get("v") in TABLE_VERSIONS
        ):
            return given["v"]
    return None


def object_table(
    own: tuple[Column, ...], body: bytes, include_object: str, version: str = "v1"
) -> bytes:
    """One object as a Table of one row."""
    item = _decode.decode(body)
    meta = {"resourceVersion": item["metadata"]["resourceVersion"]}
    return _table(own, [item], meta, include_object, version)


def list_table(
    own: tuple[Column, ...], listed: bytes, include_object: str, version: str = "v1"
) -> bytes:
    """A list page (``{Kind}List``) as a Table, its paging metadata kept."""
    page = _decode.decode(listed)
    return _table(own, page["items"], page["metadata"], include_object, version)


def columns(own: tuple[Column, ...]) -> list[dict[str, Any]]:
    """The column definitions: Name, the kind's own, Age."""
    defined = [
        {
            "name": column.name,
            "type": column.type,
            "format": "",
            "description": column.description or f"{column.name} ({column.json_path[1:]})",
            "priority": 0,
        }
        for column in own
    ]
    return [_NAME, *defined, _AGE]


def _table(
    own: tuple[Column, ...],
    items: list[dict[str, Any]],
    meta: dict[str, Any],
    include_object: str,
    version: str,
) -> bytes:
    now = datetime.now(UTC)
    rows = [
        {"cells": cells(own, item, now), "object": shown_object(item, include_object, version)}
        for item in items
    ]
    if include_object == "None":
        for row in rows:
            del row["object"]
    return _encode.encode(
        {
            "kind": "Table",
            "apiVersion": f"meta.k8s.io/{version}",
            "metadata": meta,
            "columnDefinitions": columns(own),
            "rows": rows,
        }
    )


def cells(own: tuple[Column, ...], item: dict[str, Any], now: datetime) -> list[Any]:
    """One row's cells: the name, each column's value (None when absent), the age."""
    created = item["metadata"].get("creationTimestamp")
    age = human_duration(now - _parse_time(created)) if created else "<unknown>"
    return [item["metadata"]["name"], *(cell(column, item) for column in own), age]


def cell(column: Column, item: dict[str, Any]) -> Any:
    """The column's value in the object: a list's values joined by commas; None if absent."""
    values = list(_walk(item, column.json_path.lstrip(".").split(".")))
    if not values:
        return None
    if column.type == "string":
        return ",".join(v if isinstance(v, str) else _encode.encode(v).decode() for v in values)
    value = values[0]
    if isinstance(value, bool) != (column.type == "boolean"):
        return None
    if column.type == "integer" and not isinstance(value, int):
        return None
    if column.type == "number" and not isinstance(value, int | float):
        return None
    return value


def _walk(value: Any, steps: list[str]) -> Iterable[Any]:
    if not steps:
        if value is not None:
            yield value
        return
    step, rest = steps[0], steps[1:]
    every = step.endswith("[*]")
    key = step[:-3] if every else step
    if not isinstance(value, dict) or key not in value:
        return
    found = value[key]
    if not every:
        yield from _walk(found, rest)
    elif isinstance(found, list):
        for entry in found:
            yield from _walk(entry, rest)


def shown_object(item: dict[str, Any], include_object: str, version: str) -> dict[str, Any]:
    """A row's object: whole for ``Object``, else ``PartialObjectMetadata``."""
    if include_object == "Object":
        return item
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": item["metadata"],
    }


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def human_duration(delta: Any) -> str:
    """A duration as ``kubectl`` shows ages (apimachinery's ``duration.HumanDuration``)."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if rest == 0 else f"{years}y{rest}d"
    return f"{hours // 24 // 365}y"
