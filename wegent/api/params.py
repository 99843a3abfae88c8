"""Query parameters, each defined once: its name, parser, default and OpenAPI schema.

Both doors of the resource API (the fast dispatcher and the framework's routes) read a request's
query through :func:`parse_query` and the operation's parameters, so a value means the same
and is refused with the same 400 whichever door answers. The OpenAPI documents are written
from the same definitions. Unknown parameters are ignored, as the Kubernetes API server does;
a repeated one is a 400 (API.md §13): first-wins and last-wins readers would disagree on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from wegent.errors import BadRequest

#: Go's ``strconv.ParseBool``, which the Kubernetes API server reads booleans with.
TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_DIGITS = re.compile(r"[0-9]{1,18}")  # ASCII only: str.isdigit() also takes Arabic-Indic digits


@dataclass(frozen=True)
class Param:
    """One query parameter: ``parse`` turns its text into a value or raises a 400."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    schema: dict[str, Any]
    description: str = ""

    def openapi(self) -> dict[str, Any]:
        """The parameter's OpenAPI object."""
        described = {"description": self.description} if self.description else {}
        return {
            "name": self.name,
            "in": "query",
            "required": False,
            **described,
            "schema": self.schema,
        }


def _refuse(name: str, raw: str, expected: str) -> BadRequest:
    shown = msgspec.json.encode(raw[:100]).decode()
    return BadRequest(f"invalid value {shown} for query parameter {name}: {expected}")


def boolean(name: str, description: str = "") -> Param:
    def parse(raw: str) -> bool:
        if raw in TRUE:
            return True
        if raw in FALSE:
            return False
        raise _refuse(name, raw, "must be true or false")

    return Param(name, parse, False, {"type": "boolean"}, description)


def optional_boolean(name: str, description: str = "") -> Param:
    """A boolean whose absence means something of its own (the default is None)."""
    given = boolean(name, description)
    return Param(name, given.parse, None, given.schema, description)


def integer(name: str, low: int, high: int, default: int | None, description: str = "") -> Param:
    def parse(raw: str) -> int:
        if _DIGITS.fullmatch(raw) and low <= (value := int(raw)) <= high:
            return value
        raise _refuse(name, raw, f"must be an integer from {low} to {high}")

    schema: dict[str, Any] = {"type": "integer", "minimum": low, "maximum": high}
    if default is not None:
        schema["default"] = default
    return Param(name, parse, default, schema, description)


def choice(
    name: str, values: Iterable[str], description: str = "", default: str | None = None
) -> Param:
    allowed = tuple(values)

    def parse(raw: str) -> str:
        if raw in allowed:
            return raw
        raise _refuse(name, raw, f"must be one of {', '.join(allowed)}")

    return Param(name, parse, default, {"type": "string", "enum": list(allowed)}, description)


def text(
    name: str,
    description: str,
    *,
    max_length: int,
    pattern: str | None = None,
    expected: str | None = None,
) -> Param:
    """Free text up to ``max_length`` characters (no U+0000), matching ``pattern`` if given
    (``expected`` says in words what it must be)."""
    matcher = re.compile(pattern) if pattern else None

    def parse(raw: str) -> str:
        if len(raw) > max_length:
            raise _refuse(name, raw, f"must be at most {max_length} characters")
        if "\x00" in raw:
            raise _refuse(name, raw, "must not contain U+0000")
        if matcher is not None and not matcher.search(raw):
            raise _refuse(name, raw, expected or f"must match {pattern}")
        return raw

    schema: dict[str, Any] = {"type": "string", "maxLength": max_length}
    schema["pattern"] = pattern or r"^[^\u0000]*$(?!\n)"
    return Param(name, parse, None, schema, description)


@dataclass(frozen=True)
class ParamSet:
    """The parameters an operation reads, indexed for one pass over a request's query."""

    params: tuple[Param, ...]
    by_name: dict[str, Param] = field(init=False, compare=False)
    defaults: dict[str, Any] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {p.name: p for p in self.params})
        object.__setattr__(self, "defaults", {p.name: p.default for p in self.params})

    def read(self, query: Mapping[str, str]) -> dict[str, Any]:
        """Every parameter's value: parsed when given, else its default."""
        values = dict(self.defaults)
        for name, raw in query.items():
            param = self.by_name.get(name)
            if param is not None:
                values[name] = param.parse(raw)
        return values


def parse_query(raw: bytes) -> dict[str, str]:
    """A query string as a dict; 400 for a repeated parameter or text that is not UTF-8."""
    try:
        decoded = raw.decode("utf-8")
        if "%" in decoded or "+" in decoded:
            pairs = parse_qsl(decoded, keep_blank_values=True, encoding="utf-8", errors="strict")
        else:  # nothing to unquote: what parse_qsl answers, several times faster
            pairs = [(n, v) for n, _, v in (f.partition("=") for f in decoded.split("&") if f)]
    except UnicodeDecodeError:
        raise BadRequest("the query string is not valid UTF-8") from None
    query = dict(pairs)
    if len(query) != len(pairs):
        repeated = sorted({k for k, _ in pairs if sum(1 for n, _ in pairs if n == k) > 1})
        raise BadRequest(f"query parameter {repeated[0]} is given more than once")
    return query


# The parameters of the resource API (API.md §5-§10).
NAMESPACE_OR_EMPTY = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$(?!\n)"  # "": the default namespace
NAMESPACE = text(
    "namespace",
    "The namespace; empty or absent means default, the caller's own (API.md §3)",
    max_length=63,
    pattern=NAMESPACE_OR_EMPTY,
    expected="must be a DNS label",
)
LIMIT = integer("limit", 1, 1000, 500, "Page size")
CONTINUE = text("continue", "The token of the previous page", max_length=1024)
LABEL_SELECTOR = text("labelSelector", "Kubernetes label selector", max_length=4096)
DELETED = boolean("deleted", "List the trash (soft-deleted objects)")
ALL_NAMESPACES = boolean("allNamespaces", "Every namespace the caller can read")
REVEAL = boolean("reveal", "Show secrets (editors only)")
DRY_RUN = choice("dryRun", ("All",), "All: run every check, write nothing")
FIELD_VALIDATION = choice(
    "fieldValidation",
    ("Strict", "Warn", "Ignore"),
    "Unknown fields: reject, warn (default), drop",
    default="Warn",
)
FORCE = boolean("force", "Delete even while live objects reference it")
ATOMIC = boolean("atomic", "Apply nothing unless every item succeeds")

# The parameters of the Kubernetes API's family (API.md §14).
FIELD_SELECTOR = text(
    "fieldSelector",
    "Kubernetes field selector on metadata.name and metadata.namespace (=, ==, !=; comma: AND)",
    max_length=4096,
)
RESOURCE_VERSION = text(
    "resourceVersion",
    "Served from the latest state: unset, 0, or any version not newer than it (API.md §14)",
    max_length=32,
    pattern=r"^[0-9]*$(?!\n)",
    expected="must be a resourceVersion from this server",
)
RESOURCE_VERSION_MATCH = choice(
    "resourceVersionMatch",
    ("NotOlderThan", "Exact"),
    "How resourceVersion is compared; Exact needs the version the collection is at now",
)
TIMEOUT_SECONDS = integer(
    "timeoutSeconds",
    0,
    2**31 - 1,
    None,
    "A watch ends after this long (at most, and by default, 1800); a list is not held",
)
WATCH = boolean("watch", "Stream the changes instead of answering a list (API.md §15)")
ALLOW_WATCH_BOOKMARKS = boolean(
    "allowWatchBookmarks", "A watch also sends BOOKMARK events (at least once a minute)"
)
SEND_INITIAL_EVENTS = optional_boolean(
    "sendInitialEvents",
    "A watch first sends the current objects, then a BOOKMARK marking their end "
    "(with resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true)",
)
INCLUDE_OBJECT = choice(
    "includeObject",
    ("", "None", "Metadata", "Object"),
    "In a Table: each row's object in full, as metadata only (default) or not at all",
    default="Metadata",
)
GRACE_PERIOD = integer("gracePeriodSeconds", 0, 2**31 - 1, None, "Accepted, ignored")
PROPAGATION_POLICY = choice(
    "propagationPolicy",
    ("Orphan", "Background", "Foreground"),
    "Accepted: every policy means the soft delete of API.md §6",
)
FIELD_MANAGER = text(
    "fieldManager",
    "The writer's name (accepted; this server keeps no managed fields)",
    max_length=128,
    pattern=r"^[\x20-\x7e]*$(?!\n)",
    expected="must be printable ASCII",
)
