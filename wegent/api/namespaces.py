"""Namespaces and members (API.md §3, §11). The route policy authorizes before any lookup."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import delete, get, post, put
from litestar.params import JSONBody
from litestar.response import Response

from wegent.api import params as p
from wegent.api import tables
from wegent.api.bodies import KubernetesBody, StrictBody
from wegent.api.docs import errors
from wegent.api.front import QUERY_KEY
from wegent.api.markers import AnyRequest, ServicesDep, UserName
from wegent.auth.models import (
    MemberList,
    MemberOut,
    MemberPut,
    NamespaceCreate,
    NamespaceList,
    NamespaceOut,
)
from wegent.auth.policy import namespace_of, policy, principal_of
from wegent.errors import MethodNotAllowed
from wegent.k8s.bodies import delete_options
from wegent.resources.registry import Column

NS = "/api/v1/namespaces/{namespace:str}"


#: The query parameters of each namespace route (documented from here by
#: ``wegent.api.openapi``).
LIST_PARAMS = p.ParamSet((p.LIMIT, p.CONTINUE, p.INCLUDE_OBJECT))
GET_PARAMS = p.ParamSet((p.INCLUDE_OBJECT,))
CREATE_PARAMS = p.ParamSet((p.DRY_RUN, p.FIELD_VALIDATION, p.FIELD_MANAGER))
DELETE_PARAMS = p.ParamSet((p.DRY_RUN, p.GRACE_PERIOD, p.PROPAGATION_POLICY))
#: The columns of ``kubectl get namespaces``, as kube-apiserver's (Name and Age are added).
COLUMNS = (Column("Status", ".status.phase", description="The namespace's phase."),)
_encode = msgspec.json.Encoder()


def _query(request: AnyRequest, params: p.ParamSet) -> dict[str, Any]:
    return params.read(request.scope.get(QUERY_KEY, {}))  # type: ignore[arg-type]


def _shown(
    request: AnyRequest, value: NamespaceOut | NamespaceList, include: str
) -> Response[bytes]:
    """JSON, or a Table when the request asks for one (API.md §14)."""
    body = _encode.encode(value)
    version = tables.wanted(request.headers.get("accept"))
    if version is not None:
        render = tables.list_table if isinstance(value, NamespaceList) else tables.object_table
        body = render(COLUMNS, body, include, version)
    return Response(body, media_type="application/json")


@get(
    "/api/v1/namespaces",
    opt=policy("authenticated"),
    responses=errors(400, 401, 405),
    tags=["namespaces"],
)
async def list_namespaces(request: AnyRequest, services: ServicesDep) -> Response[bytes]:
    if request.scope.get(QUERY_KEY, {}).get("watch") in p.TRUE:  # type: ignore[attr-defined]
        raise MethodNotAllowed("namespaces are not watched on this server (docs/watch.md)")
    query = _query(request, LIST_PARAMS)
    principal = principal_of(request)
    listed = await services.namespaces.list(principal, query["limit"], query["continue"])
    return _shown(request, listed, query["includeObject"])


@post(
    "/api/v1/namespaces",
    opt=policy("authenticated"),
    dto=KubernetesBody[NamespaceCreate],
    responses=errors(400, 401, 409, 415, 422),
    tags=["namespaces"],
)
async def create_namespace(
    request: AnyRequest, data: JSONBody[NamespaceCreate], services: ServicesDep
) -> NamespaceOut:
    """``{"name"}`` or a ``Namespace`` manifest, in JSON or (as kubectl sends it) protobuf."""
    dry_run = _query(request, CREATE_PARAMS)["dryRun"] is not None
    return await services.namespaces.create(principal_of(request), data, dry_run=dry_run)


@get(
    NS,
    opt=policy("read"),
    responses=errors(400, 401, 403, 404),
    tags=["namespaces"],
)
async def get_namespace(request: AnyRequest, services: ServicesDep) -> Response[bytes]:
    include = _query(request, GET_PARAMS)["includeObject"]
    found = await services.namespaces.get(principal_of(request), namespace_of(request))
    return _shown(request, found, include)


@delete(
    NS,
    opt=policy("admin-namespace"),
    status_code=200,
    responses=errors(400, 401, 403, 404, 409, 415),
    tags=["namespaces"],
)
async def delete_namespace(request: AnyRequest, services: ServicesDep) -> NamespaceOut:
    """Only when it holds no live objects; its trash goes with it. A ``DeleteOptions`` body may
    come (``kubectl delete namespace``); the answer is the namespace as it was."""
    options = delete_options(request.headers.get("content-type"), await request.body())
    dry_run = options.dry_run or _query(request, DELETE_PARAMS)["dryRun"] is not None
    principal = principal_of(request)
    return await services.namespaces.delete(principal, namespace_of(request), dry_run=dry_run)


@get(f"{NS}/members", opt=policy("read"), responses=errors(401, 403, 404), tags=["namespaces"])
async def list_members(request: AnyRequest, services: ServicesDep) -> MemberList:
    return await services.namespaces.members(namespace_of(request))


@put(
    f"{NS}/members/{{username:str}}",
    opt=policy("admin-namespace"),
    dto=StrictBody[MemberPut],
    responses=errors(400, 401, 403, 404, 409, 415, 422),
    tags=["namespaces"],
)
async def put_member(
    request: AnyRequest,
    username: UserName,
    data: JSONBody[MemberPut],
    services: ServicesDep,
) -> MemberOut:
    return await services.namespaces.put_member(namespace_of(request), username, data.role)


@delete(
    f"{NS}/members/{{username:str}}",
    opt=policy("admin-namespace"),
    responses=errors(401, 403, 404, 409),
    tags=["namespaces"],
)
async def delete_member(request: AnyRequest, username: UserName, services: ServicesDep) -> None:
    await services.namespaces.delete_member(namespace_of(request), username)
