"""Liveness and readiness probes (API.md §13); no authentication."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Response

from wegent.api.docs import errors
from wegent.api.errors import status_response
from wegent.auth.policy import policy
from wegent.db.engine import Database
from wegent.errors import ServiceUnavailable

_OK = b'{"status":"ok"}'


@get("/healthz", opt=policy("public"), include_in_schema=True, sync_to_thread=False)
def healthz() -> Response[bytes]:
    """The process is up."""
    return Response(_OK, media_type="application/json")


@get("/readyz", opt=policy("public"), responses=errors(503))
async def readyz(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The database answers."""
    db: Database = request.app.state.db
    if db.engine is not None and await db.ping():
        return Response(_OK, media_type="application/json")
    return status_response(ServiceUnavailable("the database is not reachable"))
