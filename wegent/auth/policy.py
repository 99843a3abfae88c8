"""Access policy: every route declares one in ``opt["policy"]``; one guard enforces them all.

Deny by default: a route without a declared policy answers 403 to everyone. Policies:
``public`` (no token), ``authenticated``, ``admin`` (global role), and ``read``/``write``/
``admin-namespace`` on the namespace named by the path (``{namespace}``) or the ``namespace``
query parameter (default ``default``). Namespace access is decided before any lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from wegent.auth.access import Access, Principal, Verb
from wegent.auth.tokens import InvalidToken, TokenIssuer
from wegent.errors import BadRequest, Forbidden, Unauthorized
from wegent.names import DEFAULT, is_namespace

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

    def __init__(self, tokens: TokenIssuer, access: Access) -> None:
        self._tokens = tokens
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
            connection.headers.get("authorization"),
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
        authorization: str | None,
        namespace: str | None,
        all_namespaces: bool,
    ) -> tuple[Principal | None, str | None]:
        """The caller and the namespace it may act in under the route's policy (``opt``)."""
        name = opt.get("policy")
        if name not in POLICIES:
            raise Forbidden("this route has no access policy")
        if name == "public":
            return None, None
        principal = await self.authenticate(authorization)
        if name == "admin" and not principal.is_admin:
            raise Forbidden(f'user "{principal.username}" is not an admin')
        verb = _VERBS.get(name)
        if verb is None:
            return principal, None
        requested = namespace or DEFAULT
        if not is_namespace(requested):
            raise BadRequest(f"invalid namespace name {requested[:70]!r}: must be a DNS label")
        if all_namespaces and opt.get("all_namespaces"):
            return principal, None  # an all-namespaces list is limited to what the caller reads
        return principal, await self._access.require(principal, requested, verb)

    async def authenticate(self, authorization: str | None) -> Principal:
        """Bearer token → the user's current record; every failure is the same 401."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized()
        try:
            claims = self._tokens.decode(token.strip())
        except InvalidToken:
            raise Unauthorized() from None
        return await self._access.principal(claims)


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1", "yes")
