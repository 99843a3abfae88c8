"""Liveness and readiness probes (API.md §13), and the metrics (§18)."""

from __future__ import annotations

import hmac
from typing import Any

import msgspec
from litestar import Request, get
from litestar.response import Response

from wegent import metrics
from wegent.api.docs import NO_TOKEN, errors
from wegent.auth.policy import policy
from wegent.db.engine import Database
from wegent.errors import NotFound, ServiceUnavailable, Unauthorized
from wegent.settings import Settings


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
    """The database answers, and the server is not shutting down (a load balancer stops
    sending it requests as soon as shutdown starts)."""
    if request.app.state.draining:
        raise ServiceUnavailable("the server is shutting down")
    db: Database = request.app.state.db
    if db.engine is not None and await db.ping():
        return Response(_OK)
    raise ServiceUnavailable("the database is not reachable")


@get("/metrics", opt=policy("public"), include_in_schema=False, sync_to_thread=False)
def metrics_page(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus' text format: this worker's metrics, or every worker's added up."""
    settings: Settings = request.app.state.settings
    if not settings.metrics:
        raise NotFound("metrics are off on this server (WEGENT_METRICS)")
    if settings.metrics_token is not None:
        scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), settings.metrics_token.encode()
        ):
            raise Unauthorized()
    request.app.state.sample_metrics()
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)
