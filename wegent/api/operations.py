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
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from wegent.api import params as p
from wegent.api import tables
from wegent.api.answers import JSON, Answer, answer, error_answer
from wegent.api.bodies import check_media_type
from wegent.auth.policy import Policy, credential, policy
from wegent.errors import BadRequest, Expired
from wegent.k8s.bodies import MEDIA_TYPES as DELETE_OPTIONS_TYPES
from wegent.k8s.bodies import delete_options
from wegent.names import is_name
from wegent.resources.claims import ClaimRequest, Heartbeat
from wegent.resources.crd import Caller, CRDService, ListQuery, manifest_of
from wegent.resources.decode import decode
from wegent.resources.envelope import input_type
from wegent.resources.manifests import JSON_MEDIA_TYPES, YAML_MEDIA_TYPES
from wegent.resources.patching import ACCEPTED as PATCH_TYPES
from wegent.resources.patching import patch_of
from wegent.resources.registry import KINDS, KindInfo
from wegent.resources.tasks import StatusUpdate, TaskService, TaskWithStatus
from wegent.watch.stream import MAX_WATCH_S, Options

if TYPE_CHECKING:
    from wegent.container import Services


@dataclass(frozen=True)
class Family:
    """A path family (API.md §5): where a kind's objects are addressed and how the namespace is
    given. ``{plural}`` stands for the kind; ``{namespace}`` for a namespace in the path.
    ``kubernetes``: the Kubernetes API group's family (§14), whose semantics differ where
    Kubernetes' do (a DELETE answers the object, the Task status subresource). ``fixed``:
    parameter values its paths imply (its cluster-wide list is across every namespace)."""

    name: str
    collection: str  # e.g. "/api/v1/namespaces/{namespace}/{plural}"
    namespace_actions: str | None = None  # e.g. "/api/v1/namespaces/{namespace}", for batches
    kind_actions: str | None = None  # e.g. "/api/v1/{plural}", for actions across namespaces
    params: tuple[p.Param, ...] = ()  # family A takes the namespace as a query parameter
    kubernetes: bool = False
    fixed: tuple[tuple[str, Any], ...] = ()


GROUP_VERSION = "/apis/agent.wecode.io/v1"
FAMILY_A = Family("A", "/api/v1/kinds/{plural}", params=(p.NAMESPACE,))
FAMILY_B = Family(
    "B",
    "/api/v1/namespaces/{namespace}/{plural}",
    "/api/v1/namespaces/{namespace}",
    "/api/v1/{plural}",
)
FAMILY_C = Family("C", f"{GROUP_VERSION}/namespaces/{{namespace}}/{{plural}}", kubernetes=True)
FAMILY_C_ALL = Family(
    "C-all", f"{GROUP_VERSION}/{{plural}}", kubernetes=True, fixed=(("allNamespaces", True),)
)
FAMILIES = (FAMILY_A, FAMILY_B, FAMILY_C)
PRODUCT = (FAMILY_A, FAMILY_B)  # the families of the product's own verbs (restore, batch ...)


@dataclass(frozen=True)
class Body:
    """What an operation reads as its body; ``schema`` names it for the OpenAPI document."""

    media_types: frozenset[str]
    schema: Callable[[KindInfo | None], str]  # the component the body is documented as
    required: bool = True


@dataclass(frozen=True)
class Operation:
    """One row of the table. ``target``: ``collection`` (a kind's objects), ``item`` (one
    object; with ``suffix``, a subresource of it), ``namespace`` (a namespace-wide action
    named ``suffix``) or ``kind`` (an action named ``suffix`` on a kind's objects in every
    namespace the caller may use, such as the claim of tasks). ``kinds`` says which kinds
    have it; ``response`` names the success body's component (``{kind}`` stands for the
    kind) or is None for no body."""

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

    @cached_property
    def opt(self) -> dict[str, Any]:
        """The policy the route is authorized by (the framework route's ``opt``). A list across
        every namespace needs only a token: it shows what the caller may read."""
        if dict(self.family.fixed).get("allNamespaces"):
            return ACROSS_NAMESPACES
        return self.operation.policy

    @property
    def operation_id(self) -> str:
        noun = self.kind.plural if self.kind else "namespace"
        return f"{self.operation.name}-{noun}-{self.family.name}"


class Incoming(NamedTuple):
    """What either door hands over of a request: its parsed query, the headers the API reads
    (lower-case names), its body, and the namespace and name its path gave (if any)."""

    query: dict[str, str]
    headers: dict[bytes, str]
    body: bytes
    namespace: str | None
    name: str | None


class Call(NamedTuple):
    """One request on its way through an operation: authorized, its parameters parsed."""

    api: ResourceApi
    route: Route
    caller: Caller
    name: str  # "" on a collection or a namespace
    params: dict[str, Any]
    incoming: Incoming

    @property
    def service(self) -> CRDService[Any]:
        assert self.route.kind is not None
        return self.api.services.resources[self.route.kind.kind]

    @property
    def kind(self) -> KindInfo:
        assert self.route.kind is not None
        return self.route.kind

    @property
    def body(self) -> bytes:
        return self.incoming.body

    @property
    def content_type(self) -> str | None:
        return self.incoming.headers.get(b"content-type")

    @property
    def dry_run(self) -> bool:
        return bool(self.params["dryRun"] == "All")

    def decoded(self, type_: type[Any]) -> tuple[Any, list[str]]:
        """The body as ``type_`` (JSON only), and the warnings about dropped unknown fields."""
        check_media_type(self.content_type, JSON_MEDIA_TYPES)
        value, warnings = decode(self.body, type_, field_validation=self.params["fieldValidation"])
        return value, warnings

    def shown(self, status: int, body: bytes, warnings: list[str] | None = None) -> Answer:
        """An answered object, or a Table of it when the request asks for one (§14)."""
        version = tables.wanted(self.incoming.headers.get(b"accept"))
        if version is None:
            return answer(status, body, warnings)
        include = self.params["includeObject"]
        rendered = tables.object_table(self.kind.columns, body, include, version)
        return answer(status, rendered, warnings)


class ResourceApi:
    """The routes of the table for one app; :meth:`serve` answers a request on any of them."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.routes = build_routes()

    async def serve(self, route: Route, incoming: Incoming) -> Answer:
        """Parse the parameters, authorize, check the name, run the operation; every failure
        is answered as its Status (API.md §12)."""
        try:
            values = route.params.read(incoming.query)
            if route.family.fixed:
                values.update(route.family.fixed)
            namespace = incoming.namespace
            headers = incoming.headers
            principal, resolved = await self.services.guard.check(
                route.opt,
                credential(headers.get(b"authorization"), headers.get(b"x-api-key")),
                namespace if namespace is not None else values.get("namespace"),
                values.get("allNamespaces", False),
            )
            assert principal is not None
            name = incoming.name
            if name is not None and not is_name(name):
                shown = msgspec.json.encode(name[:70]).decode()
                raise BadRequest(f"invalid name {shown}: {NAME_RULE}")
            caller = Caller(principal, resolved or "")
            return await route.operation.run(
                Call(self, route, caller, name or "", values, incoming)
            )
        except Exception as exc:
            return error_answer(exc)


NAME_RULE = (
    "must be 1-63 alphanumeric characters, '-', '_' or '.', starting and ending with an "
    "alphanumeric character"
)


# -- the operations ---------------------------------------------------------------------------


class _ListVersion(msgspec.Struct):
    class _Meta(msgspec.Struct):
        resourceVersion: str

    metadata: _Meta


def check_versions(values: dict[str, Any]) -> None:
    """The API server's rules for ``resourceVersion`` on a list (API.md §14)."""
    version, match = values["resourceVersion"], values["resourceVersionMatch"]
    if match is not None and not version:
        raise BadRequest("resourceVersionMatch is forbidden unless resourceVersion is provided")
    if version and values["continue"]:
        raise BadRequest("specifying resource version is not allowed when using continue")
    if match == "Exact" and version == "0":
        raise BadRequest('resourceVersionMatch "Exact" is forbidden for resourceVersion "0"')


def exact_version(listed: bytes, version: str) -> None:
    """An ``Exact`` list is served only at the version the collection is at now: older states
    are history this server does not keep (410 Expired, as after a compaction)."""
    now = msgspec.json.decode(listed, type=_ListVersion).metadata.resourceVersion
    if version != now:
        raise Expired(f"too old resource version: {version} ({now})")


def _list_query(call: Call) -> ListQuery:
    values = call.params
    return ListQuery(
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
        field_selector=values["fieldSelector"],
    )


async def _list(call: Call) -> Answer:
    values = call.params
    if values["watch"]:
        return await _watch(call)
    check_versions(values)
    listed = await call.service.list_objects(
        call.caller, _list_query(call), reveal=values["reveal"]
    )
    if values["resourceVersionMatch"] == "Exact":
        exact_version(listed, values["resourceVersion"])
    version = tables.wanted(call.incoming.headers.get(b"accept"))
    if version is not None:
        shown = tables.list_table(call.kind.columns, listed, values["includeObject"], version)
        return answer(200, shown)
    return answer(200, listed)


async def _watch(call: Call) -> Answer:
    """§15: the list's changes as a stream of events."""
    options = watch_options(call.params, call.incoming.headers.get(b"accept"))
    interest = await call.service.interest(call.caller, _list_query(call))
    namespace = None if call.params["allNamespaces"] else call.caller.namespace
    await call.api.services.watch.ready()
    watch = call.api.services.watch.open(
        call.kind, interest, call.caller.principal, namespace, options
    )
    return Answer(200, b"", [JSON], watch)


def watch_options(values: dict[str, Any], accept: str | None) -> Options:
    """A watch's parameters, checked as the Kubernetes API server checks them."""
    send, match = values["sendInitialEvents"], values["resourceVersionMatch"]
    if send is None and match is not None:
        raise BadRequest(
            "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
        )
    if send is not None and match != "NotOlderThan":
        raise BadRequest(
            "sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to "
            '"NotOlderThan"'
        )
    if send and not values["allowWatchBookmarks"]:
        raise BadRequest("sendInitialEvents requires setting allowWatchBookmarks to true")
    for refused, why in (
        ("continue", "a watch is not paged"),
        ("deleted", "the trash is not watched"),
        ("reveal", "watch events never show secrets"),
    ):
        if values[refused]:
            raise BadRequest(f"{refused} is not supported with watch: {why}")
    version = values["resourceVersion"]
    start = int(version) if version not in (None, "", "0") else None
    timeout = values["timeoutSeconds"] or MAX_WATCH_S
    return Options(
        start=None if send else start,
        initial=bool(send) or (send is None and start is None),
        initial_end=bool(send),
        bookmarks=values["allowWatchBookmarks"],
        timeout_s=min(timeout, MAX_WATCH_S),
        table=tables.wanted(accept),
        include_object=values["includeObject"],
    )


async def _get(call: Call) -> Answer:
    found = await call.service.get(call.caller, call.name, reveal=call.params["reveal"])
    return call.shown(200, found)


async def _create(call: Call) -> Answer:
    body, warnings = call.decoded(input_type(call.kind.kind))
    created = await call.service.create(call.caller, body, dry_run=call.dry_run)
    return answer(201, created, warnings)


async def _replace(call: Call) -> Answer:
    body, warnings = call.decoded(input_type(call.kind.kind))
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


async def _delete_kubernetes(call: Call) -> Answer:
    """§14: a ``DeleteOptions`` body may come (dry run, preconditions); the answer is the
    object as deleted (with its ``deletionTimestamp``), never an empty 204."""
    options = delete_options(call.content_type, call.body)
    expected = options.preconditions
    deleted = await call.service.delete(
        call.caller,
        call.name,
        force=call.params["force"],
        dry_run=call.dry_run or options.dry_run,
        if_uid=expected.uid if expected else None,
        if_version=expected.resourceVersion if expected else None,
    )
    return answer(200, deleted)


async def _restore(call: Call) -> Answer:
    return answer(200, await call.service.restore(call.caller, call.name))


def _tasks(call: Call) -> TaskService:
    service = call.service
    assert isinstance(service, TaskService)
    return service


async def _move(call: Call) -> Answer:
    update, warnings = call.decoded(StatusUpdate)
    return answer(200, await _tasks(call).move(call.caller, call.name, update), warnings)


async def _heartbeat(call: Call) -> Answer:
    beat, warnings = call.decoded(Heartbeat)
    return answer(200, await _tasks(call).heartbeat(call.caller, call.name, beat), warnings)


async def _claim(call: Call) -> Answer:
    request, warnings = call.decoded(ClaimRequest)
    return answer(200, await _tasks(call).claim(call.caller.principal, request), warnings)


async def _cancel(call: Call) -> Answer:
    return answer(200, await _tasks(call).cancel(call.caller, call.name))


async def _status_get(call: Call) -> Answer:
    """§14: the status subresource answers the whole Task."""
    return call.shown(200, await call.service.get(call.caller, call.name))


async def _status_replace(call: Call) -> Answer:
    """§14: the body is a whole Task; only its ``status`` is taken, as a move (§10), with its
    ``metadata.resourceVersion`` as a precondition."""
    task, warnings = call.decoded(TaskWithStatus)
    return answer(200, await _move_to(call, task), warnings)


async def _status_patch(call: Call) -> Answer:
    """§14: a patch of the Task whose ``status`` is then taken as a move (§10)."""
    patch = patch_of(call.content_type, call.body)  # a bad body is a 400 before any read
    current = msgspec.json.decode(await call.service.get(call.caller, call.name))
    patched = patch({**manifest_of(current), "status": current["status"]})
    field_validation = call.params["fieldValidation"]
    task, warnings = decode(patched, TaskWithStatus, field_validation=field_validation)
    return answer(200, await _move_to(call, task), warnings)


async def _move_to(call: Call, task: TaskWithStatus) -> bytes:
    _same_task(call, task.metadata)
    version = task.metadata.get("resourceVersion")
    given = version if isinstance(version, str) else None
    return await _tasks(call).move(
        call.caller, call.name, task.status, if_version=given, dry_run=call.dry_run
    )


def _same_task(call: Call, metadata: dict[str, Any]) -> None:
    """The Task sent to the status subresource must be the one of the URL (its kind and
    apiVersion are checked by its type)."""
    name = metadata.get("name")
    if name and name != call.name:
        raise BadRequest(
            f'metadata.name "{name}" does not match the name in the URL ("{call.name}")'
        )


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
ACROSS_NAMESPACES = policy("authenticated")
_WRITE: Policy = "write"
_RESOURCE = Body(JSON_MEDIA_TYPES, lambda info: f"{info.kind}Input" if info else "")
_CREATE = Body(JSON_MEDIA_TYPES, lambda info: f"{info.kind}Create" if info else "")
_PATCH = Body(frozenset(PATCH_TYPES), lambda info: "JsonValue")
_STATUS = Body(JSON_MEDIA_TYPES, lambda info: "StatusUpdate")
_HEARTBEAT = Body(JSON_MEDIA_TYPES, lambda info: "Heartbeat")
_CLAIM = Body(JSON_MEDIA_TYPES, lambda info: "ClaimRequest")
_WHOLE_TASK = Body(JSON_MEDIA_TYPES, lambda info: "TaskWithStatus")
_DELETE_OPTIONS = Body(DELETE_OPTIONS_TYPES, lambda info: "DeleteOptions", required=False)
_MANIFESTS = Body(JSON_MEDIA_TYPES | YAML_MEDIA_TYPES, lambda info: "Manifests")
_WRITES = (p.DRY_RUN, p.FIELD_VALIDATION, p.FIELD_MANAGER)
_BODY_ERRORS = (400, 401, 403, 413, 415, 422)
_LIST = (
    p.LIMIT,
    p.CONTINUE,
    p.LABEL_SELECTOR,
    p.FIELD_SELECTOR,
    p.DELETED,
    p.ALL_NAMESPACES,
    p.REVEAL,
    p.RESOURCE_VERSION,
    p.RESOURCE_VERSION_MATCH,
    p.TIMEOUT_SECONDS,
    p.INCLUDE_OBJECT,
    p.WATCH,
    p.ALLOW_WATCH_BOOKMARKS,
    p.SEND_INITIAL_EVENTS,
)
_KUBERNETES = (FAMILY_C,)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "list",
        "GET",
        "collection",
        policy(_READ, all_namespaces=True),
        _LIST,
        _list,
        200,
        "List {plural}",
        (400, 401, 403, 410),
        response="{kind}List",
        filters=True,
        families=(*FAMILIES, FAMILY_C_ALL),
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
        "get",
        "GET",
        "item",
        policy(_READ),
        (p.REVEAL, p.RESOURCE_VERSION, p.INCLUDE_OBJECT),
        _get,
        200,
        "Get a {kind}",
        (401, 403, 404),
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
        families=PRODUCT,
    ),
    Operation(
        "delete",
        "DELETE",
        "item",
        policy(_WRITE),
        (p.FORCE, p.DRY_RUN, p.GRACE_PERIOD, p.PROPAGATION_POLICY),
        _delete_kubernetes,
        200,
        "Delete a {kind} (soft: it goes to the trash); answers the object as deleted",
        (400, 401, 403, 404, 409, 415),
        body=_DELETE_OPTIONS,
        families=_KUBERNETES,
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
        families=PRODUCT,
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
        families=PRODUCT,
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
        families=PRODUCT,
    ),
    Operation(
        "heartbeat",
        "POST",
        "item",
        policy(_WRITE),
        (p.FIELD_VALIDATION,),
        _heartbeat,
        200,
        "Extend the executor's lease on a task (and report progress)",
        (*_BODY_ERRORS, 404, 409),
        suffix="heartbeat",
        body=_HEARTBEAT,
        kinds=_lifecycle,
        families=PRODUCT,
    ),
    Operation(
        "claim",
        "POST",
        "kind",
        ACROSS_NAMESPACES,
        (p.FIELD_VALIDATION,),
        _claim,
        200,
        "Claim the oldest claimable tasks: each becomes RUNNING under the executor's lease",
        _BODY_ERRORS,
        suffix="claim",
        body=_CLAIM,
        response="ClaimedList",
        kinds=_lifecycle,
        families=(FAMILY_B,),
        tag="tasks",
    ),
    Operation(
        "get-status",
        "GET",
        "item",
        policy(_READ),
        (p.INCLUDE_OBJECT,),
        _status_get,
        200,
        "Get a task's status subresource (the whole Task)",
        (401, 403, 404),
        suffix="status",
        kinds=_lifecycle,
        families=_KUBERNETES,
    ),
    Operation(
        "replace-status",
        "PUT",
        "item",
        policy(_WRITE),
        _WRITES,
        _status_replace,
        200,
        "Move a task along its lifecycle: the body is the whole Task, only its status is taken",
        (*_BODY_ERRORS, 404, 409),
        suffix="status",
        body=_WHOLE_TASK,
        kinds=_lifecycle,
        families=_KUBERNETES,
    ),
    Operation(
        "patch-status",
        "PATCH",
        "item",
        policy(_WRITE),
        _WRITES,
        _status_patch,
        200,
        "Move a task along its lifecycle by a patch of its status",
        (*_BODY_ERRORS, 404, 409),
        suffix="status",
        body=_PATCH,
        kinds=_lifecycle,
        families=_KUBERNETES,
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
                if operation.target == "kind":
                    assert family.kind_actions is not None
                    path = family.kind_actions.replace("{plural}", info.plural)
                    path += f"/{operation.suffix}"
                    params = p.ParamSet((*family.params, *operation.params))
                    routes.append(Route(operation, info, family, path, params))
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
