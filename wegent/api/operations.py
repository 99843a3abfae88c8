"""The resource API, defined once: every operation of API.md §5-§10 as one row of a table.

A row says what an operation is — method, target (a kind's collection, one object, a
subresource of it, or a namespace), the path families it is served on, its access policy,
its query parameters (with their parsers, defaults and bounds), its body (type and media
types), what it calls and its success status. Everything that serves the API is built from
these rows, nothing about an operation is written anywhere else:

- the fast dispatcher (``wegent.api.dispatch``), which answers in front of the framework;
- the framework's routes (``wegent.api.routes``), for the route table, 405s and ``OPTIONS``;
- the OpenAPI document (``wegent.api.openapi``).

Both doors end in :meth:`ResourceApi.execute`, so they cannot answer differently. Adding a
query parameter, a verb or a path family is one edit here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from wegent.api import params as p
from wegent.api.answers import Answer, answer, error_answer
from wegent.api.bodies import check_media_type
from wegent.auth.policy import Policy, policy
from wegent.errors import BadRequest
from wegent.names import is_name
from wegent.resources.crd import Caller, CRDService, ListQuery
from wegent.resources.decode import decode
from wegent.resources.envelope import input_type
from wegent.resources.manifests import JSON_MEDIA_TYPES, YAML_MEDIA_TYPES
from wegent.resources.patching import ACCEPTED as PATCH_TYPES
from wegent.resources.patching import patch_of
from wegent.resources.registry import KINDS, KindInfo
from wegent.resources.tasks import StatusUpdate, TaskService

if TYPE_CHECKING:
    from wegent.container import Services


@dataclass(frozen=True)
class Family:
    """A path family (API.md §5): where a kind's objects are addressed and how the namespace is
    given. ``{plural}`` stands for the kind; ``{namespace}`` for a namespace in the path."""

    name: str
    collection: str  # e.g. "/api/v1/namespaces/{namespace}/{plural}"
    namespace_actions: str | None  # e.g. "/api/v1/namespaces/{namespace}", for batch calls
    params: tuple[p.Param, ...] = ()  # family A takes the namespace as a query parameter


FAMILY_A = Family("A", "/api/v1/kinds/{plural}", None, (p.NAMESPACE,))
FAMILY_B = Family("B", "/api/v1/namespaces/{namespace}/{plural}", "/api/v1/namespaces/{namespace}")
FAMILIES = (FAMILY_A, FAMILY_B)


@dataclass(frozen=True)
class Body:
    """What an operation reads as its body; ``schema`` names it for the OpenAPI document."""

    media_types: frozenset[str]
    schema: Callable[[KindInfo | None], str]  # the component the body is documented as


@dataclass(frozen=True)
class Operation:
    """One row of the table. ``target``: ``collection`` (a kind's objects), ``item`` (one
    object; with ``suffix``, a subresource of it) or ``namespace`` (a namespace-wide action
    named ``suffix``). ``kinds`` says which kinds have it; ``response`` names the success
    body's component (``{kind}`` stands for the kind) or is None for no body."""

    name: str
    method: str
    target: str
    policy: dict[str, Any]
    params: tuple[p.Param, ...]
    run: Callable[[Call], Awaitable[Answer]]
    status: int
    summary: str
    errors: tuple[int, ...]
    suffix: str = ""
    body: Body | None = None
    response: str | None = "{kind}"
    families: tuple[Family, ...] = FAMILIES
    kinds: Callable[[KindInfo], bool] = lambda info: True
    tag: str | None = None  # documented under this tag instead of the kind's
    filters: bool = False  # also takes the kind's own list filters


@dataclass(frozen=True)
class Route:
    """An operation on one kind (or on a namespace) through one family, ready to serve."""

    operation: Operation
    kind: KindInfo | None
    family: Family
    path: str  # OpenAPI-style template: {namespace} and {name} in braces
    params: p.ParamSet = field(compare=False)
    filters: tuple[tuple[str, str], ...] = ()  # (parameter, column) of the kind's list filters

    @property
    def opt(self) -> dict[str, Any]:
        """The framework route's ``opt``: the policy it is authorized by."""
        return self.operation.policy

    @property
    def operation_id(self) -> str:
        noun = self.kind.plural if self.kind else "namespace"
        return f"{self.operation.name}-{noun}-{self.family.name}"


class Call(NamedTuple):
    """One request on its way through an operation: authorized, its parameters parsed."""

    api: ResourceApi
    route: Route
    caller: Caller
    name: str  # "" on a collection or a namespace
    params: dict[str, Any]
    body: bytes
    content_type: str | None

    @property
    def service(self) -> CRDService[Any]:
        assert self.route.kind is not None
        return self.api.services.resources[self.route.kind.kind]

    @property
    def dry_run(self) -> bool:
        return bool(self.params["dryRun"] == "All")

    def decoded(self, type_: type[Any]) -> tuple[Any, list[str]]:
        """The body as ``type_`` (JSON only), and the warnings about dropped unknown fields."""
        check_media_type(self.content_type, JSON_MEDIA_TYPES)
        value, warnings = decode(self.body, type_, field_validation=self.params["fieldValidation"])
        return value, warnings


class ResourceApi:
    """The routes of the table for one app; :meth:`execute` serves a request on any of them."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.routes = build_routes()

    async def serve(
        self,
        route: Route,
        query: dict[str, str],
        authorization: str | None,
        content_type: str | None,
        body: bytes,
        namespace: str | None,
        name: str | None,
    ) -> Answer:
        """:meth:`execute`, with every failure answered as its Status (API.md §12)."""
        try:
            return await self.execute(
                route, query, authorization, content_type, body, namespace, name
            )
        except Exception as exc:
            return error_answer(exc)

    async def execute(
        self,
        route: Route,
        query: dict[str, str],
        authorization: str | None,
        content_type: str | None,
        body: bytes,
        namespace: str | None,
        name: str | None,
    ) -> Answer:
        """Parse the parameters, authorize, check the name, run the operation."""
        values = route.params.read(query)
        principal, resolved = await self.services.guard.check(
            route.operation.policy,
            authorization,
            namespace if namespace is not None else values.get("namespace"),
            values.get("allNamespaces", False),
        )
        assert principal is not None
        if name is not None and not is_name(name):
            raise BadRequest(f"invalid name {msgspec.json.encode(name[:70]).decode()}: {NAME_RULE}")
        caller = Caller(principal, resolved or "")
        call = Call(self, route, caller, name or "", values, body, content_type)
        return await route.operation.run(call)


NAME_RULE = (
    "must be 1-63 alphanumeric characters, '-', '_' or '.', starting and ending with an "
    "alphanumeric character"
)


# -- the operations ---------------------------------------------------------------------------


async def _list(call: Call) -> Answer:
    values = call.params
    query = ListQuery(
        limit=values["limit"],
        continue_token=values["continue"],
        label_selector=values["labelSelector"],
        deleted=values["deleted"],
        all_namespaces=values["allNamespaces"],
        filters=tuple(
            (column, values[param])
            for param, column in call.route.filters
            if values[param] is not None
        ),
    )
    return answer(200, await call.service.list_objects(call.caller, query, reveal=values["reveal"]))


async def _get(call: Call) -> Answer:
    return answer(200, await call.service.get(call.caller, call.name, reveal=call.params["reveal"]))


async def _create(call: Call) -> Answer:
    assert call.route.kind is not None
    body, warnings = call.decoded(input_type(call.route.kind.kind))
    created = await call.service.create(call.caller, body, dry_run=call.dry_run)
    return answer(201, created, warnings)


async def _replace(call: Call) -> Answer:
    assert call.route.kind is not None
    body, warnings = call.decoded(input_type(call.route.kind.kind))
    replaced = await call.service.replace(call.caller, call.name, body, dry_run=call.dry_run)
    return answer(200, replaced, warnings)


async def _patch(call: Call) -> Answer:
    patched, warnings = await call.service.patch(
        call.caller,
        call.name,
        patch_of(call.content_type, call.body),
        field_validation=call.params["fieldValidation"],
        dry_run=call.dry_run,
    )
    return answer(200, patched, warnings)


async def _delete(call: Call) -> Answer:
    await call.service.delete(
        call.caller, call.name, force=call.params["force"], dry_run=call.dry_run
    )
    return Answer(204, b"", [])


async def _restore(call: Call) -> Answer:
    return answer(200, await call.service.restore(call.caller, call.name))


def _tasks(call: Call) -> TaskService:
    service = call.service
    assert isinstance(service, TaskService)
    return service


async def _move(call: Call) -> Answer:
    update, warnings = call.decoded(StatusUpdate)
    return answer(200, await _tasks(call).move(call.caller, call.name, update), warnings)


async def _cancel(call: Call) -> Answer:
    return answer(200, await _tasks(call).cancel(call.caller, call.name))


def _media_type(call: Call) -> str:
    check_media_type(call.content_type, JSON_MEDIA_TYPES | YAML_MEDIA_TYPES)
    return (call.content_type or "application/json").split(";", 1)[0].strip().lower()


async def _apply_many(call: Call) -> Answer:
    result = await call.api.services.batch.apply(
        call.caller,
        call.body,
        _media_type(call),
        atomic=call.params["atomic"],
        dry_run=call.dry_run,
        field_validation=call.params["fieldValidation"],
    )
    return answer(200, msgspec.json.encode(result))


async def _delete_many(call: Call) -> Answer:
    result = await call.api.services.batch.delete(
        call.caller,
        call.body,
        _media_type(call),
        atomic=call.params["atomic"],
        dry_run=call.dry_run,
        force=call.params["force"],
    )
    return answer(200, msgspec.json.encode(result))


def _lifecycle(info: KindInfo) -> bool:
    return info.lifecycle


_READ: Policy = "read"
_WRITE: Policy = "write"
_RESOURCE = Body(JSON_MEDIA_TYPES, lambda info: f"{info.kind}Input" if info else "")
_CREATE = Body(JSON_MEDIA_TYPES, lambda info: f"{info.kind}Create" if info else "")
_PATCH = Body(frozenset(PATCH_TYPES), lambda info: "JsonValue")
_STATUS = Body(JSON_MEDIA_TYPES, lambda info: "StatusUpdate")
_MANIFESTS = Body(JSON_MEDIA_TYPES | YAML_MEDIA_TYPES, lambda info: "Manifests")
_WRITES = (p.DRY_RUN, p.FIELD_VALIDATION)
_BODY_ERRORS = (400, 401, 403, 413, 415, 422)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "list",
        "GET",
        "collection",
        policy(_READ, all_namespaces=True),
        (p.LIMIT, p.CONTINUE, p.LABEL_SELECTOR, p.DELETED, p.ALL_NAMESPACES, p.REVEAL),
        _list,
        200,
        "List {plural}",
        (400, 401, 403),
        response="{kind}List",
        filters=True,
    ),
    Operation(
        "create",
        "POST",
        "collection",
        policy(_WRITE),
        _WRITES,
        _create,
        201,
        "Create a {kind}",
        (*_BODY_ERRORS, 404, 409),
        body=_CREATE,
    ),
    Operation(
        "get", "GET", "item", policy(_READ), (p.REVEAL,), _get, 200, "Get a {kind}", (401, 403, 404)
    ),
    Operation(
        "replace",
        "PUT",
        "item",
        policy(_WRITE),
        _WRITES,
        _replace,
        200,
        "Replace a {kind}",
        (*_BODY_ERRORS, 404, 409),
        body=_RESOURCE,
    ),
    Operation(
        "patch",
        "PATCH",
        "item",
        policy(_WRITE),
        _WRITES,
        _patch,
        200,
        "Patch a {kind}: JSON merge patch (RFC 7386) or JSON patch (RFC 6902)",
        (*_BODY_ERRORS, 404, 409),
        body=_PATCH,
    ),
    Operation(
        "delete",
        "DELETE",
        "item",
        policy(_WRITE),
        (p.FORCE, p.DRY_RUN),
        _delete,
        204,
        "Delete a {kind} (soft: it goes to the trash)",
        (401, 403, 404, 409),
        response=None,
    ),
    Operation(
        "restore",
        "POST",
        "item",
        policy(_WRITE),
        (),
        _restore,
        200,
        "Restore the most recently deleted {kind} of this name",
        (401, 403, 404, 409, 422),
        suffix="restore",
    ),
    Operation(
        "move",
        "PUT",
        "item",
        policy(_WRITE),
        (p.FIELD_VALIDATION,),
        _move,
        200,
        "Move a task along its lifecycle, or report progress",
        (*_BODY_ERRORS, 404, 409),
        suffix="status",
        body=_STATUS,
        kinds=_lifecycle,
    ),
    Operation(
        "cancel",
        "POST",
        "item",
        policy(_WRITE),
        (),
        _cancel,
        200,
        "Cancel a PENDING or RUNNING task",
        (401, 403, 404, 409),
        suffix="cancel",
        kinds=_lifecycle,
    ),
    Operation(
        "apply",
        "POST",
        "namespace",
        policy(_WRITE),
        (p.ATOMIC, *_WRITES),
        _apply_many,
        200,
        "Create or replace many manifests (JSON array or YAML stream)",
        _BODY_ERRORS,
        suffix="apply",
        body=_MANIFESTS,
        response="BatchResult",
        families=(FAMILY_B,),
        tag="batch",
    ),
    Operation(
        "delete-many",
        "POST",
        "namespace",
        policy(_WRITE),
        (p.ATOMIC, p.FORCE, p.DRY_RUN),
        _delete_many,
        200,
        "Delete many objects named by manifests (JSON array or YAML stream)",
        _BODY_ERRORS,
        suffix="delete",
        body=_MANIFESTS,
        response="BatchResult",
        families=(FAMILY_B,),
        tag="batch",
    ),
)


def filter_params(info: KindInfo) -> tuple[p.Param, ...]:
    """The kind's own list filters as query parameters."""
    made = []
    for declared in info.filters:
        if declared.values:
            made.append(p.choice(declared.param, declared.values, declared.description))
        else:
            made.append(
                p.text(
                    declared.param, declared.description, max_length=63, pattern=declared.pattern
                )
            )
    return tuple(made)


def build_routes() -> list[Route]:
    """Every (operation, kind, family) the API serves, in the table's order."""
    routes: list[Route] = []
    for operation in OPERATIONS:
        for family in operation.families:
            if operation.target == "namespace":
                assert family.namespace_actions is not None
                path = f"{family.namespace_actions}/{operation.suffix}"
                params = p.ParamSet((*family.params, *operation.params))
                routes.append(Route(operation, None, family, path, params))
                continue
            for info in KINDS:
                if not operation.kinds(info):
                    continue
                path = family.collection.replace("{plural}", info.plural)
                if operation.target == "item":
                    path += "/{name}" + (f"/{operation.suffix}" if operation.suffix else "")
                own = filter_params(info) if operation.filters else ()
                params = p.ParamSet((*family.params, *operation.params, *own))
                filters = (
                    tuple((declared.param, declared.column) for declared in info.filters)
                    if operation.filters
                    else ()
                )
                routes.append(Route(operation, info, family, path, params, filters))
    return routes
