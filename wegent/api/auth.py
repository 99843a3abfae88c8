"""Registration and login (API.md §11)."""

from __future__ import annotations

from litestar import post
from litestar.params import JSONBody

from wegent.api.bodies import StrictBody
from wegent.api.docs import NO_TOKEN, errors
from wegent.api.markers import AnyRequest, ServicesDep
from wegent.auth.models import LoginRequest, RegisterRequest, TokenResponse, UserOut
from wegent.auth.policy import policy


@post(
    "/api/v1/auth/register",
    opt=policy("public"),
    security=NO_TOKEN,
    dto=StrictBody[RegisterRequest],
    responses=errors(400, 403, 409, 415, 422),
    tags=["auth"],
)
async def register(data: JSONBody[RegisterRequest], services: ServicesDep) -> UserOut:
    """Create an account and its personal namespace."""
    return await services.users.register(data)


@post(
    ["/api/v1/auth/login", "/api/auth/login"],
    opt=policy("public"),
    security=NO_TOKEN,
    status_code=200,
    dto=StrictBody[LoginRequest],
    responses=errors(400, 401, 415, 422, 429),
    tags=["auth"],
)
async def login(
    request: AnyRequest, data: JSONBody[LoginRequest], services: ServicesDep
) -> TokenResponse:
    """Exchange a username (or ``user_name``) and password for a bearer token."""
    address = request.client.host if request.client else ""
    return await services.users.login(data, address)
