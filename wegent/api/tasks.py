"""Task dispatch: executors claim tasks (API.md §17). Heartbeats and status moves are
operations of the resource table (``wegent.api.operations``)."""

from __future__ import annotations

from litestar import post
from litestar.params import JSONBody
from litestar.response import Response

from wegent.api.bodies import StrictBody
from wegent.api.docs import errors
from wegent.api.markers import AnyRequest, ServicesDep
from wegent.auth.policy import policy, principal_of
from wegent.resources.claims import ClaimedList, ClaimRequest
from wegent.resources.tasks import TaskService


@post(
    "/api/v1/tasks/claim",
    opt=policy("authenticated"),
    status_code=200,
    dto=StrictBody[ClaimRequest],
    responses=errors(400, 401, 403, 415, 422),
    response_description="The tasks taken, oldest first, each RUNNING under the executor's "
    "lease (possibly none)",
    tags=["tasks"],
)
async def claim_tasks(
    request: AnyRequest, data: JSONBody[ClaimRequest], services: ServicesDep
) -> Response[ClaimedList]:
    """Take the oldest claimable tasks (PENDING, or RUNNING with an expired lease) among the
    namespaces the caller may edit: each becomes RUNNING under this executor's lease."""
    tasks = services.resources["Task"]
    assert isinstance(tasks, TaskService)
    claimed = await tasks.claim(principal_of(request), data)
    return Response(claimed, media_type="application/json")  # type: ignore[arg-type]


ROUTES = [claim_tasks]
