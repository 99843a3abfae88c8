"""Access policy: every route declares one in ``opt["policy"]``; one guard enforces them all.

Deny by default: a route without a declared policy answers 403 to everyone. Policies:
``public`` (no token), ``authenticated``, ``admin`` (global role), and ``read``/``write``/
``admin-namespace`` on the namespace named by the path (``{namespace}``) or the ``namespace``
query parameter (default ``default``). Namespace access is decided before any lookup.
``no_tokens=True`` in a route's ``opt`` refuses callers that came with an API token (the routes
that manage tokens, API.md §16), before the request's body is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from wegent.auth.access import Access, Principal, Verb, describe
from wegent.auth.api_tokens import NOT_THROUGH_ONE, PREFIX, ApiTokens
from wegent.auth.cache import MISSING, Missing
from wegent.auth.tokens import Claims, InvalidToken, TokenIssuer
from wegent.errors import BadRequest, Forbidden, Unauthorized
from wegent.names import DEFAULT, is_namespace
from wegent.request_context import note_caller

Policy = Literal["public", "authenticated", "admin", "read", "write", "admin-namespace"]
POLICIES: frozenset[str] = frozenset(
    {"public", "authenticated", "admin", "read", "write", "admin-namespace"}
)
NAMESPACE_KEY = "wegent.namespace"
_VERBS: dict[str, Verb] = {"read": "read", "write": "write", "admin-namespace": "admin"}


def policy(name: Policy, **extra: Any) -> dict[str, Any]:
    """The ``opt`` of a route with this policy."""
    return {"policy": name, **extra}


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The authenticated caller (set by the guard)."""
    principal: Principal = connection.scope["user"]
    return principal


def namespace_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The namespace the guard resolved and authorized for this request."""
    namespace: str = connection.scope["state"][NAMESPACE_KEY]
    return namespace


class PolicyGuard:
    """The app-level guard: authenticate, then authorize by the route's declared policy."""

    def __init__(self, tokens: TokenIssuer, api_tokens: ApiTokens, access: Access) -> None:
        self._tokens = tokens
        self._api_tokens = api_tokens
        self._access = access

    async def before_request(self, request: Request[Any, Any, Any]) -> None:
        """The same check as a ``before_request`` hook: Litestar copies the route handler for
        every guard call, a cost on every request that this hook does not pay."""
        await self(request, request.route_handler)

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        if connection.scope.get("method") == "OPTIONS":
            return  # the framework's own answer: which methods a path allows, nothing more
        if handler.opt.get("operation"):
            return  # the resource API authorizes its operations itself (wegent.api.operations)
        query = connection.query_params
        principal, namespace = await self.check(
            handler.opt,
            credential(
                connection.headers.get("authorization"), connection.headers.get("x-api-key")
            ),
            connection.path_params.get("namespace") or query.get("namespace"),
            _truthy(query.get("allNamespaces")),
        )
        if principal is not None:
            connection.scope["user"] = principal
        if namespace is not None:
            connection.scope.setdefault("state", {})[NAMESPACE_KEY] = namespace

    async def check(
        self,
        opt: Mapping[str, Any],
        credential: str | None,
        namespace: str | None,
        all_namespaces: bool,
    ) -> tuple[Principal | None, str | None]:
        """The caller and the namespace it may act in under the route's policy (``opt``)."""
        name = _policy_of(opt)
        if name == "public":
            return None, None
        principal = self._known(credential)
        if principal is MISSING:
            principal = await self.authenticate(credential)
        note_caller(principal.username, principal.token.name if principal.token else None)
        asked = self._asked(principal, opt, name, namespace, all_namespaces)
        if asked is None:
            return principal, None
        return principal, await self._access.require(principal, *asked)

    async def authorize(
        self,
        principal: Principal,
        opt: Mapping[str, Any],
        namespace: str | None,
        all_namespaces: bool,
    ) -> str | None:
        """The namespace ``principal`` may act in under the route's policy, if it names one."""
        asked = self._asked(principal, opt, _policy_of(opt), namespace, all_namespaces)
        return None if asked is None else await self._access.require(principal, *asked)

    @staticmethod
    def _asked(
        principal: Principal,
        opt: Mapping[str, Any],
        name: str,
        namespace: str | None,
        all_namespaces: bool,
    ) -> tuple[str, Verb] | None:
        """What the route's policy asks of ``principal`` beyond its global role: a verb in a
        namespace, or nothing (None)."""
        if opt.get("no_tokens") and principal.token is not None:
            raise Forbidden(NOT_THROUGH_ONE, kind="Token")  # before its body is read
        if name == "admin" and not principal.is_admin:
            raise Forbidden(f"{describe(principal)} is not an admin")
        verb = _VERBS.get(name)
        if verb is None:
            return None
        requested = namespace or DEFAULT
        if not is_namespace(requested):
            raise BadRequest(f"invalid namespace name {requested[:70]!r}: must be a DNS label")
        if all_namespaces and opt.get("all_namespaces"):
            return None  # an all-namespaces list is limited to what the caller reads
        return requested, verb

    def _known(self, credential: str | None) -> Principal | Missing:
        """:meth:`authenticate` from the caches, without a coroutine; MISSING when a cache
        must be filled first."""
        if not credential:
            raise Unauthorized()
        if credential.startswith(PREFIX):
            return self._api_tokens.known(credential)
        return self._access.known_principal(self._claims(credential))

    async def authenticate(self, credential: str | None) -> Principal:
        """A login JWT or an API token (see :func:`credential`) → the caller as the server's
        records say now; every failure is the same 401."""
        if not credential:
            raise Unauthorized()
        if credential.startswith(PREFIX):
            return await self._api_tokens.authenticate(credential)
        return await self._access.principal(self._claims(credential))

    def _claims(self, token: str) -> Claims:
        try:
            return self._tokens.decode(token)
        except InvalidToken:
            raise Unauthorized() from None


def _policy_of(opt: Mapping[str, Any]) -> str:
    """The route's declared policy; a route without one is refused to everyone."""
    name = opt.get("policy")
    if name not in POLICIES:
        raise Forbidden("this route has no access policy")
    return str(name)


def credential(authorization: str | None, api_key: str | None) -> str | None:
    """The token a request authenticates with: ``Authorization: Bearer <token>`` (a login JWT
    or an API token), else ``X-API-Key: wg-…`` (API.md §16). An ``Authorization`` header that
    is not a bearer token authenticates nothing, whatever else is sent."""
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    if api_key is not None and api_key.strip().startswith(PREFIX):
        return api_key.strip()
    return None


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1", "yes")
