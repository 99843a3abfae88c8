"""Batch apply and delete (API.md §9), family B only."""

from typing import Any

from litestar import post
from litestar.params import FromQuery, JSONBody

from wegent.api.bodies import ManifestsBody
from wegent.api.docs import errors
from wegent.api.params import AnyRequest, ServicesDep
from wegent.api.resources import DryRun, FieldValidation, caller_of
from wegent.auth.policy import policy
from wegent.resources.batch import BatchResult

BASE = "/api/v1/namespaces/{namespace:str}"


def _media_type(request: AnyRequest) -> str:
    return request.headers.get("content-type", "application/json").split(";")[0].strip().lower()


@post(
    f"{BASE}/apply",
    opt=policy("write"),
    status_code=200,
    dto=ManifestsBody[list[dict[str, Any]]],
    responses=errors(400, 401, 403, 413, 415, 422),
    tags=["batch"],
    summary="Create or replace many manifests (JSON array or YAML stream)",
)
async def apply_manifests(
    request: AnyRequest,
    services: ServicesDep,
    data: JSONBody[list[dict[str, Any]]],
    atomic: FromQuery[bool] = False,
    dry_run: DryRun = None,
    field_validation: FieldValidation = None,
) -> BatchResult:
    return await services.batch.apply(
        caller_of(request),
        data,  # type: ignore[arg-type]  # the raw body; ManifestsBody does not decode
        _media_type(request),
        atomic=atomic,
        dry_run=bool(dry_run),
        field_validation=field_validation or "Warn",
    )


@post(
    f"{BASE}/delete",
    opt=policy("write"),
    status_code=200,
    dto=ManifestsBody[list[dict[str, Any]]],
    responses=errors(400, 401, 403, 413, 415, 422),
    tags=["batch"],
    summary="Delete many objects named by manifests (JSON array or YAML stream)",
)
async def delete_manifests(
    request: AnyRequest,
    services: ServicesDep,
    data: JSONBody[list[dict[str, Any]]],
    atomic: FromQuery[bool] = False,
    force: FromQuery[bool] = False,
    dry_run: DryRun = None,
) -> BatchResult:
    return await services.batch.delete(
        caller_of(request),
        data,  # type: ignore[arg-type]  # the raw body; ManifestsBody does not decode
        _media_type(request),
        atomic=atomic,
        dry_run=bool(dry_run),
        force=force,
    )
