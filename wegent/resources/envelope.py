"""Per-kind envelope types (API.md §1, §7), built once per kind so that the OpenAPI document
shows each kind's own schema (``GhostInput``, ``Ghost``, ``GhostList`` …).

Each built type subclasses a generic base (:class:`ResourceInput`, :class:`Resource`,
:class:`ResourceList`) that gives code outside this module typed access to the common fields;
the subclass only narrows ``spec`` / ``items`` and sets ``kind``'s default and ``KIND``.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

import msgspec

from wegent.resources.meta import API_VERSION, Metadata, ObjectMeta
from wegent.resources.status import ResourceStatus

SpecT = TypeVar("SpecT")

ApiVersion = Literal["agent.wecode.io/v1"]
KindName = Annotated[str, msgspec.Meta(max_length=63)]


class ResourceInput(
    msgspec.Struct, Generic[SpecT], kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """A manifest as a client sends it; ``status`` is accepted and dropped (mass assignment)."""

    KIND: ClassVar[str] = ""

    apiVersion: ApiVersion | None = None
    kind: KindName | None = None
    metadata: Metadata
    spec: SpecT
    status: Any = None

    def __post_init__(self) -> None:
        self.status = None


class Resource(msgspec.Struct, Generic[SpecT], kw_only=True):
    """An object as the server answers it."""

    KIND: ClassVar[str] = ""

    apiVersion: str = API_VERSION
    kind: str = ""  # each built subtype defaults it to its own kind
    metadata: ObjectMeta
    spec: SpecT
    status: ResourceStatus = msgspec.field(default_factory=ResourceStatus)


class ListMeta(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``continue`` is present only when there is a next page."""

    resourceVersion: str
    continue_: str | None = msgspec.field(default=None, name="continue")


class ResourceList(msgspec.Struct, Generic[SpecT], kw_only=True):
    """One page of a list (§7)."""

    KIND: ClassVar[str] = ""

    apiVersion: str = API_VERSION
    kind: str = ""  # each built subtype defaults it to its own kind
    metadata: ListMeta
    items: list[Resource[SpecT]]


def _entry(kind: str) -> Any:
    """The kind's registry entry (imported here: the registry builds services on this module)."""
    from wegent.resources.registry import BY_KIND

    try:
        return BY_KIND[kind]
    except KeyError:
        raise KeyError(f"unknown kind {kind!r}") from None


def _spec(kind: str) -> type[msgspec.Struct]:
    spec: type[msgspec.Struct] = _entry(kind).spec
    return spec


@functools.cache
def input_type(kind: str) -> type[ResourceInput[Any]]:
    """``{Kind}Input``: what create, replace and apply decode."""
    # ``kind`` is checked by the service (a 400 when it is not the URL's kind, API.md §1);
    # the document says which one each kind's input takes.
    kind_name = Annotated[str, msgspec.Meta(max_length=63, extra_json_schema={"enum": [kind]})]
    built = msgspec.defstruct(
        f"{kind}Input",
        [("kind", kind_name | None, None), ("spec", _spec(kind))],
        bases=(ResourceInput,),
        module=__name__,
        namespace={"KIND": kind},
        kw_only=True,
        forbid_unknown_fields=True,
        omit_defaults=True,
    )
    return built  # type: ignore[return-value]


@functools.cache
def output_type(kind: str) -> type[Resource[Any]]:
    """``{Kind}``: the object as answered; ``kind`` defaults to the kind's name."""
    status = _entry(kind).status
    fields: list[Any] = [
        ("kind", str, kind),
        ("spec", _spec(kind)),
        ("status", status, msgspec.field(default_factory=status)),
    ]
    built = msgspec.defstruct(
        kind,
        fields,
        bases=(Resource,),
        module=__name__,
        namespace={"KIND": kind},
        kw_only=True,
    )
    return built  # type: ignore[return-value]


@functools.cache
def list_type(kind: str) -> type[ResourceList[Any]]:
    """``{Kind}List``: one page of objects of the kind."""
    built = msgspec.defstruct(
        f"{kind}List",
        [("kind", str, f"{kind}List"), ("items", list[output_type(kind)])],  # type: ignore[misc]
        bases=(ResourceList,),
        module=__name__,
        namespace={"KIND": kind},
        kw_only=True,
    )
    return built  # type: ignore[return-value]
