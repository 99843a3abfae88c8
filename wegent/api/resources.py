"""REST routes for every kind, generated from the registry (API.md §5, §6).

Each handler serves both path families: ``/api/v1/kinds/{plural}?namespace=NS`` and
``/api/v1/namespaces/{NS}/{plural}``. The policy guard has already authorized the namespace;
handlers decode, call the kind's service and answer its bytes.
"""

from typing import Annotated, Any, Literal

from litestar import Response, delete, get, patch, post, put
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromQuery, JSONBody, QueryParameter

from wegent.api.bodies import WARNINGS_KEY, MergePatchBody, StrictBody
from wegent.api.docs import errors
from wegent.api.params import AnyRequest, ObjectName, ServicesDep
from wegent.auth.policy import NAMESPACE_KEY, policy, principal_of
from wegent.resources.decode import NO_NUL
from wegent.resources.envelope import Phase, input_type, list_type, output_type
from wegent.resources.registry import KINDS, KindInfo
from wegent.resources.service import Caller, ListQuery
from wegent.resources.tasks import StatusUpdate, TaskService
from wegent.services import Services

DryRun = Annotated[
    Literal["All"] | None,
    QueryParameter(name="dryRun", description="All: run every check, write nothing"),
]
FieldValidation = Annotated[
    Literal["Strict", "Warn", "Ignore"] | None,
    QueryParameter(
        name="fieldValidation", description="Unknown fields: reject, warn (default), drop"
    ),
]
Reveal = Annotated[bool, QueryParameter(description="Show model secrets (editors only)")]
Limit = Annotated[int, QueryParameter(ge=1, le=1000)]
Continue = Annotated[str | None, QueryParameter(name="continue")]
LabelSelector = Annotated[str | None, QueryParameter(name="labelSelector")]
AllNamespaces = Annotated[bool, QueryParameter(name="allNamespaces")]
TeamFilter = Annotated[
    str | None, QueryParameter(description="a Team name", max_length=63, pattern=NO_NUL)
]
JSON = "application/json"


def caller_of(request: AnyRequest) -> Caller:
    namespace: str = request.scope.get("state", {}).get(NAMESPACE_KEY, "")
    return Caller(principal_of(request), namespace)


def answer(content: bytes, status_code: int = 200) -> Response[Any]:
    return Response(content, status_code=status_code, media_type=JSON)


def kind_routes(info: KindInfo) -> list[HTTPRouteHandler]:
    """The seven routes of one kind, each on both path families."""
    kind = info.kind
    Input = input_type(kind)
    Output = output_type(kind)
    ListOutput = list_type(kind)
    collection = [
        f"/api/v1/kinds/{info.plural}",
        f"/api/v1/namespaces/{{namespace:str}}/{info.plural}",
    ]
    item = [f"{path}/{{name:str}}" for path in collection]
    tags = [kind]

    listing: dict[str, Any] = {
        "opt": policy("read", all_namespaces=True),
        "responses": errors(400, 401, 403),
        "tags": tags,
        "name": f"list-{info.plural}",
    }
    list_route: HTTPRouteHandler
    if kind != "Task":

        @get(collection, summary=f"List {info.plural}", **listing)
        async def list_objects(
            request: AnyRequest,
            services: ServicesDep,
            limit: Limit = 500,
            continue_token: Continue = None,
            label_selector: LabelSelector = None,
            deleted: FromQuery[bool] = False,
            all_namespaces: AllNamespaces = False,
            reveal: Reveal = False,
        ) -> Response[ListOutput]:  # type: ignore[valid-type]
            query = ListQuery(limit, continue_token, label_selector, deleted, all_namespaces)
            service = services.resources[kind]
            return answer(await service.list_objects(caller_of(request), query, reveal=reveal))

        list_route = list_objects
    else:

        @get(collection, summary=f"List {info.plural}, optionally by phase and team", **listing)
        async def list_tasks(
            request: AnyRequest,
            services: ServicesDep,
            limit: Limit = 500,
            continue_token: Continue = None,
            label_selector: LabelSelector = None,
            deleted: FromQuery[bool] = False,
            all_namespaces: AllNamespaces = False,
            phase: FromQuery[Phase | None] = None,
            team: TeamFilter = None,
        ) -> Response[ListOutput]:  # type: ignore[valid-type]
            query = ListQuery(
                limit, continue_token, label_selector, deleted, all_namespaces, phase, team
            )
            service = services.resources[kind]
            return answer(await service.list_objects(caller_of(request), query))

        list_route = list_tasks

    @post(
        collection,
        opt=policy("write"),
        dto=StrictBody[Input],  # type: ignore[valid-type]
        responses=errors(400, 401, 403, 409, 413, 415, 422),
        tags=tags,
        name=f"create-{info.plural}",
        summary=f"Create a {kind}",
    )
    async def create_object(
        request: AnyRequest,
        services: ServicesDep,
        data: JSONBody[Input],  # type: ignore[valid-type]
        dry_run: DryRun = None,
        field_validation: FieldValidation = None,
    ) -> Response[Output]:  # type: ignore[valid-type]
        body = await services.resources[kind].create(
            caller_of(request), data, dry_run=bool(dry_run)
        )
        return answer(body, 201)

    @get(
        item,
        opt=policy("read"),
        responses=errors(401, 403, 404),
        tags=tags,
        name=f"get-{info.plural}",
        summary=f"Get a {kind}",
    )
    async def get_object(
        request: AnyRequest, services: ServicesDep, name: ObjectName, reveal: Reveal = False
    ) -> Response[Output]:  # type: ignore[valid-type]
        return answer(await services.resources[kind].get(caller_of(request), name, reveal=reveal))

    @put(
        item,
        opt=policy("write"),
        dto=StrictBody[Input],  # type: ignore[valid-type]
        responses=errors(400, 401, 403, 404, 409, 413, 415, 422),
        tags=tags,
        name=f"replace-{info.plural}",
        summary=f"Replace a {kind}",
    )
    async def replace_object(
        request: AnyRequest,
        services: ServicesDep,
        name: ObjectName,
        data: JSONBody[Input],  # type: ignore[valid-type]
        dry_run: DryRun = None,
        field_validation: FieldValidation = None,
    ) -> Response[Output]:  # type: ignore[valid-type]
        service = services.resources[kind]
        return answer(await service.replace(caller_of(request), name, data, dry_run=bool(dry_run)))

    @patch(
        item,
        opt=policy("write"),
        dto=MergePatchBody[dict[str, Any]],
        responses=errors(400, 401, 403, 404, 409, 413, 415, 422),
        tags=tags,
        name=f"patch-{info.plural}",
        summary=f"Merge-patch a {kind} (RFC 7386)",
    )
    async def patch_object(
        request: AnyRequest,
        services: ServicesDep,
        name: ObjectName,
        data: JSONBody[dict[str, Any]],
        dry_run: DryRun = None,
        field_validation: FieldValidation = None,
    ) -> Response[Output]:  # type: ignore[valid-type]
        body, warnings = await services.resources[kind].patch(
            caller_of(request),
            name,
            data,
            field_validation=field_validation or "Warn",
            dry_run=bool(dry_run),
        )
        if warnings:
            request.scope.setdefault("state", {})[WARNINGS_KEY] = warnings
        return answer(body)

    @delete(
        item,
        opt=policy("write"),
        responses=errors(401, 403, 404, 409),
        tags=tags,
        name=f"delete-{info.plural}",
        summary=f"Delete a {kind} (soft: it goes to the trash)",
    )
    async def delete_object(
        request: AnyRequest,
        services: ServicesDep,
        name: ObjectName,
        force: FromQuery[bool] = False,
        dry_run: DryRun = None,
    ) -> None:
        await services.resources[kind].delete(
            caller_of(request), name, force=force, dry_run=bool(dry_run)
        )

    @post(
        [f"{path}/restore" for path in item],
        opt=policy("write"),
        status_code=200,
        responses=errors(401, 403, 404, 409, 422),
        tags=tags,
        name=f"restore-{info.plural}",
        summary=f"Restore the most recently deleted {kind} of this name",
    )
    async def restore_object(
        request: AnyRequest, services: ServicesDep, name: ObjectName
    ) -> Response[Output]:  # type: ignore[valid-type]
        return answer(await services.resources[kind].restore(caller_of(request), name))

    return [
        list_route,
        create_object,
        get_object,
        replace_object,
        patch_object,
        delete_object,
        restore_object,
    ]


def task_routes() -> list[HTTPRouteHandler]:
    """The lifecycle routes of tasks (§10), on both path families."""
    item = [
        "/api/v1/kinds/tasks/{name:str}",
        "/api/v1/namespaces/{namespace:str}/tasks/{name:str}",
    ]
    Output = output_type("Task")

    @put(
        [f"{path}/status" for path in item],
        opt=policy("write"),
        dto=StrictBody[StatusUpdate],
        responses=errors(400, 401, 403, 404, 409, 415, 422),
        tags=["Task"],
        summary="Move a task along its lifecycle, or report progress",
    )
    async def move_task(
        request: AnyRequest,
        services: ServicesDep,
        name: ObjectName,
        data: JSONBody[StatusUpdate],
    ) -> Response[Output]:  # type: ignore[valid-type]
        return answer(await tasks(services).move(caller_of(request), name, data))

    @post(
        [f"{path}/cancel" for path in item],
        opt=policy("write"),
        status_code=200,
        responses=errors(401, 403, 404, 409),
        tags=["Task"],
        summary="Cancel a PENDING or RUNNING task",
    )
    async def cancel_task(
        request: AnyRequest, services: ServicesDep, name: ObjectName
    ) -> Response[Output]:  # type: ignore[valid-type]
        return answer(await tasks(services).cancel(caller_of(request), name))

    return [move_task, cancel_task]


def tasks(services: Services) -> TaskService:
    service = services.resources["Task"]
    assert isinstance(service, TaskService)
    return service


ROUTES: list[HTTPRouteHandler] = [
    *(route for info in KINDS for route in kind_routes(info)),
    *task_routes(),
]
