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

# Field descriptions shared by the generic bases and the per-kind types built from them.
API_VERSION_IN = "The version of the API: agent.wecode.io/v1. May be omitted."
API_VERSION_OUT = "The version of the API: agent.wecode.io/v1."
KIND_IN = "The kind of the object; may be omitted, and if given must be the kind of the URL."
SPEC = "The desired state of the object; its fields depend on the kind."
STATUS_IN = "Set by the server; accepted on input and ignored."
STATUS_OUT = "The object's current state, set by the server."


def described(type_: Any, description: str) -> Any:
    """``type_`` with a description for the JSON schema (a built type's field)."""
    return Annotated[type_, msgspec.Meta(description=description)]


class ResourceInput(
    msgspec.Struct, Generic[SpecT], kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """A manifest as a client sends it; ``status`` is accepted and dropped (mass assignment)."""

    KIND: ClassVar[str] = ""

    apiVersion: Annotated[ApiVersion | None, msgspec.Meta(description=API_VERSION_IN)] = None
    kind: Annotated[KindName, msgspec.Meta(description=KIND_IN)] | None = None
    metadata: Annotated[
        Metadata,
        msgspec.Meta(
            description="The object's name, namespace, labels and annotations; fields the "
            "server sets are accepted and ignored."
        ),
    ]
    spec: Annotated[SpecT, msgspec.Meta(description=SPEC)]
    status: Annotated[Any, msgspec.Meta(description=STATUS_IN)] = None

    def __post_init__(self) -> None:
        self.status = None


class Resource(msgspec.Struct, Generic[SpecT], kw_only=True):
    """An object as the server answers it."""

    KIND: ClassVar[str] = ""

    apiVersion: Annotated[str, msgspec.Meta(description=API_VERSION_OUT)] = API_VERSION
    # each built subtype defaults it to its own kind
    kind: Annotated[str, msgspec.Meta(description="The kind of the object.")] = ""
    metadata: Annotated[
        ObjectMeta,
        msgspec.Meta(
            description="The object's name, namespace, labels and annotations, and what the "
            "server records of it (uid, resourceVersion, generation, times, users)."
        ),
    ]
    spec: Annotated[SpecT, msgspec.Meta(description=SPEC)]
    status: Annotated[ResourceStatus, msgspec.Meta(description=STATUS_OUT)] = msgspec.field(
        default_factory=ResourceStatus
    )


class ListMeta(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``continue`` is present only when there is a next page."""

    resourceVersion: Annotated[
        str,
        msgspec.Meta(
            description='The highest resourceVersion among the items of this page ("0" when '
            "it holds none)."
        ),
    ]
    continue_: Annotated[
        str | None,
        msgspec.Meta(
            description="A token for the next page: send it back as ?continue= with the same "
            "query. Absent on the last page."
        ),
    ] = msgspec.field(default=None, name="continue")


class ResourceList(msgspec.Struct, Generic[SpecT], kw_only=True):
    """One page of a list (§7)."""

    KIND: ClassVar[str] = ""

    apiVersion: Annotated[str, msgspec.Meta(description=API_VERSION_OUT)] = API_VERSION
    # each built subtype defaults it to its own kind
    kind: Annotated[str, msgspec.Meta(description="The kind of the list: {Kind}List.")] = ""
    metadata: Annotated[
        ListMeta, msgspec.Meta(description="The list's version and the token of its next page.")
    ]
    items: Annotated[
        list[Resource[SpecT]],
        msgspec.Meta(description="The objects of this page, ordered by name."),
    ]


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
    kind_name = Annotated[
        str,
        msgspec.Meta(
            max_length=63,
            extra_json_schema={"enum": [kind]},
            description=f"The kind of the object: {kind}. May be omitted.",
        ),
    ]
    built = msgspec.defstruct(
        f"{kind}Input",
        [
            ("kind", kind_name | None, None),
            ("spec", described(_spec(kind), f"The desired state of the {kind}.")),
        ],
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
        ("kind", described(str, f"The kind of the object: {kind}."), kind),
        ("spec", described(_spec(kind), f"The desired state of the {kind}.")),
        (
            "status",
            described(status, STATUS_OUT),
            msgspec.field(default_factory=status),
        ),
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
        [
            ("kind", described(str, f"The kind of the list: {kind}List."), f"{kind}List"),
            (
                "items",
                described(
                    list[output_type(kind)],  # type: ignore[misc]
                    f"The {kind} objects of this page, ordered by name.",
                ),
            ),
        ],
        bases=(ResourceList,),
        module=__name__,
        namespace={"KIND": kind},
        kw_only=True,
    )
    return built  # type: ignore[return-value]
