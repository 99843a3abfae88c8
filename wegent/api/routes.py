"""The framework's door to the resource API: one route per row of the operation table, on each
kind and path family (``wegent.api.operations``).

The fast dispatcher answers these requests before the framework sees them; the framework's
routes hold the same paths so that its route table knows every path and method (405 with
``Allow``, ``OPTIONS``, the authorization matrix of the tests), and so that the API still
answers with the fast door switched off. Each route only hands the request to
:meth:`ResourceApi.serve`, the one place that answers it, and sends its answer as is.
"""

from __future__ import annotations

from typing import Any, cast

from litestar import Request
from litestar.handlers import HTTPRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from wegent.api.answers import respond
from wegent.api.front import QUERY_KEY, request_headers
from wegent.api.operations import Incoming, ResourceApi, Route


def framework_routes(api: ResourceApi) -> list[HTTPRouteHandler]:
    return [_handler(api, route) for route in api.routes]


def _handler(api: ResourceApi, route: Route) -> HTTPRouteHandler:
    async def serve(request: Request[Any, Any, Any]) -> ASGIApp:
        scope = request.scope
        incoming = Incoming(
            scope.get(QUERY_KEY, {}),  # type: ignore[arg-type]
            request_headers(scope),
            await request.body(),
            request.path_params.get("namespace"),
            request.path_params.get("name"),
        )
        answer = await api.serve(route, incoming)

        async def reply(scope: Scope, receive: Receive, send: Send) -> None:
            await respond(scope, receive, send, answer)

        return reply

    path = route.path.replace("{namespace}", "{namespace:str}").replace("{name}", "{name:str}")
    return HTTPRouteHandler(
        path=path,
        http_method=cast(Any, route.operation.method),
        name=route.operation_id,
        opt={**route.opt, "operation": True},
        include_in_schema=False,  # documented from the table (wegent.api.openapi)
        status_code=200,  # unused: the answer is sent as is, with its own status
    )(serve)
