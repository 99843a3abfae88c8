"""API tokens: the caller's own, and a global admin's view of any user's (API.md §16)."""

from __future__ import annotations

from litestar import delete, get, post
from litestar.params import JSONBody

from wegent.api.bodies import StrictBody
from wegent.api.docs import errors
from wegent.api.markers import AnyRequest, ObjectName, ServicesDep, UserName
from wegent.auth.models import TokenCreate, TokenCreated, TokenList, TokenOut
from wegent.auth.policy import policy, principal_of

MINE = "/api/v1/tokens"
THEIRS = "/api/v1/users/{username:str}/tokens"


@post(
    MINE,
    opt=policy("authenticated", no_tokens=True),
    dto=StrictBody[TokenCreate],
    responses=errors(401, 403, 409, 415, 422),
    tags=["tokens"],
)
async def create_token(
    request: AnyRequest, data: JSONBody[TokenCreate], services: ServicesDep
) -> TokenCreated:
    """A token for the caller; its secret is in this answer only."""
    return await services.api_tokens.create(principal_of(request), data)


@get(MINE, opt=policy("authenticated", no_tokens=True), responses=errors(401, 403), tags=["tokens"])
async def list_tokens(request: AnyRequest, services: ServicesDep) -> TokenList:
    """The caller's tokens, with when each was last used; never a secret."""
    return await services.api_tokens.list(principal_of(request))


@get(
    f"{MINE}/{{name:str}}",
    opt=policy("authenticated", no_tokens=True),
    responses=errors(401, 403, 404),
    tags=["tokens"],
)
async def get_token(request: AnyRequest, name: ObjectName, services: ServicesDep) -> TokenOut:
    return await services.api_tokens.get(principal_of(request), name)


@delete(
    f"{MINE}/{{name:str}}",
    opt=policy("authenticated", no_tokens=True),
    responses=errors(401, 403, 404),
    tags=["tokens"],
)
async def revoke_token(request: AnyRequest, name: ObjectName, services: ServicesDep) -> None:
    """Refused at once here, by every other worker within 5 seconds."""
    await services.api_tokens.revoke(principal_of(request), name)


@post(
    THEIRS,
    opt=policy("admin", no_tokens=True),
    dto=StrictBody[TokenCreate],
    responses=errors(401, 403, 404, 409, 415, 422),
    tags=["tokens"],
)
async def create_user_token(
    request: AnyRequest, username: UserName, data: JSONBody[TokenCreate], services: ServicesDep
) -> TokenCreated:
    """A token for a service account (people make their own)."""
    return await services.api_tokens.create(principal_of(request), data, username)


@get(THEIRS, opt=policy("admin", no_tokens=True), responses=errors(401, 403, 404), tags=["tokens"])
async def list_user_tokens(
    request: AnyRequest, username: UserName, services: ServicesDep
) -> TokenList:
    return await services.api_tokens.list(principal_of(request), username)


@get(
    f"{THEIRS}/{{name:str}}",
    opt=policy("admin", no_tokens=True),
    responses=errors(401, 403, 404),
    tags=["tokens"],
)
async def get_user_token(
    request: AnyRequest, username: UserName, name: ObjectName, services: ServicesDep
) -> TokenOut:
    return await services.api_tokens.get(principal_of(request), name, username)


@delete(
    f"{THEIRS}/{{name:str}}",
    opt=policy("admin", no_tokens=True),
    responses=errors(401, 403, 404),
    tags=["tokens"],
)
async def revoke_user_token(
    request: AnyRequest, username: UserName, name: ObjectName, services: ServicesDep
) -> None:
    await services.api_tokens.revoke(principal_of(request), name, username)


ROUTES = [
    create_token,
    list_tokens,
    get_token,
    revoke_token,
    create_user_token,
    list_user_tokens,
    get_user_token,
    revoke_user_token,
]
