"""Liveness and readiness probes (API.md §13); no authentication."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get
from litestar.response import Response

from wegent.api.docs import NO_TOKEN, errors
from wegent.auth.policy import policy
from wegent.db.engine import Database
from wegent.errors import ServiceUnavailable


class Probe(msgspec.Struct):
    status: str


_OK = Probe(status="ok")


@get(
    "/healthz",
    opt=policy("public"),
    security=NO_TOKEN,
    responses=errors(),
    include_in_schema=True,
    sync_to_thread=False,
)
def healthz() -> Response[Probe]:
    """The process is up."""
    return Response(_OK)


@get("/readyz", opt=policy("public"), security=NO_TOKEN, responses=errors(503))
async def readyz(request: Request[Any, Any, Any]) -> Response[Probe]:
    """The database answers."""
    db: Database = request.app.state.db
    if db.engine is not None and await db.ping():
        return Response(_OK)
    raise ServiceUnavailable("the database is not reachable")
