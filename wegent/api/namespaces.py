"""Namespaces and members (API.md §3, §11). The route policy authorizes before any lookup."""

from __future__ import annotations

from litestar import delete, get, post, put
from litestar.params import JSONBody

from wegent.api import params as p
from wegent.api.bodies import StrictBody
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

NS = "/api/v1/namespaces/{namespace:str}"


#: The query parameters of the namespace list (documented from here by ``wegent.api.openapi``).
LIST_PARAMS = p.ParamSet((p.LIMIT, p.CONTINUE))


@get("/api/v1/namespaces", opt=policy("authenticated"), responses=errors(401), tags=["namespaces"])
async def list_namespaces(request: AnyRequest, services: ServicesDep) -> NamespaceList:
    query = LIST_PARAMS.read(request.scope.get(QUERY_KEY, {}))  # type: ignore[arg-type]
    principal = principal_of(request)
    return await services.namespaces.list(principal, query["limit"], query["continue"])


@post(
    "/api/v1/namespaces",
    opt=policy("authenticated"),
    dto=StrictBody[NamespaceCreate],
    responses=errors(400, 401, 409, 415, 422),
    tags=["namespaces"],
)
async def create_namespace(
    request: AnyRequest, data: JSONBody[NamespaceCreate], services: ServicesDep
) -> NamespaceOut:
    return await services.namespaces.create(principal_of(request), data)


@get(NS, opt=policy("read"), responses=errors(401, 403, 404), tags=["namespaces"])
async def get_namespace(request: AnyRequest, services: ServicesDep) -> NamespaceOut:
    return await services.namespaces.get(principal_of(request), namespace_of(request))


@delete(
    NS, opt=policy("admin-namespace"), responses=errors(401, 403, 404, 409), tags=["namespaces"]
)
async def delete_namespace(request: AnyRequest, services: ServicesDep) -> None:
    """Only when it holds no live objects; its trash goes with it."""
    await services.namespaces.delete(namespace_of(request))


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
