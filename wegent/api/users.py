"""The caller's own record, and the admin's view of every user (API.md §11)."""

from __future__ import annotations

from litestar import get, patch, post
from litestar.params import JSONBody

from wegent.api.bodies import StrictBody
from wegent.api.docs import errors
from wegent.api.markers import AnyRequest, ServicesDep, UserName
from wegent.auth.models import Me, UserCreate, UserList, UserOut, UserPatch
from wegent.auth.policy import policy, principal_of


@get("/api/v1/users/me", opt=policy("authenticated"), responses=errors(401), tags=["users"])
async def me(request: AnyRequest, services: ServicesDep) -> Me:
    """The caller, with the namespaces it can access and its role in each."""
    return await services.users.me(principal_of(request))


@get("/api/v1/users", opt=policy("admin"), responses=errors(401, 403), tags=["users"])
async def list_users(services: ServicesDep) -> UserList:
    return await services.users.list()


@post(
    "/api/v1/users",
    opt=policy("admin"),
    dto=StrictBody[UserCreate],
    responses=errors(401, 403, 409, 415, 422),
    tags=["users"],
)
async def create_user(data: JSONBody[UserCreate], services: ServicesDep) -> UserOut:
    """A service account (no password: API tokens an admin makes for it), with its personal
    namespace."""
    return await services.users.add(data)


@patch(
    "/api/v1/users/{username:str}",
    opt=policy("admin"),
    dto=StrictBody[UserPatch],
    responses=errors(400, 401, 403, 404, 409, 415, 422),
    tags=["users"],
)
async def patch_user(
    username: UserName, data: JSONBody[UserPatch], services: ServicesDep
) -> UserOut:
    """Change a user's global role or active state."""
    return await services.users.patch(username, data)
