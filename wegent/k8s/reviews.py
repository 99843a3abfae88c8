"""``kubectl auth whoami`` and ``kubectl auth can-i`` (API.md §14).

A ``SelfSubjectAccessReview`` is answered by the policy that decides requests: the attributes
name a route (a resource and verb of the operation table, or of the namespaces API) and the
route's declared policy is checked with :meth:`PolicyGuard.check`, as a request to it would be.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec

from wegent.auth.access import Principal
from wegent.errors import ApiError
from wegent.k8s.discovery import GROUP, REVIEW_GROUPS, VERBS, Operated

#: ``(plural or plural/subresource, verb, across every namespace)`` → the route's ``opt`` (its
#: declared policy).
Policies = Mapping[tuple[str, str, bool], Mapping[str, Any]]
#: The policy check of :class:`wegent.auth.policy.PolicyGuard`: (opt, namespace, all namespaces).
Check = Callable[[Mapping[str, Any], str | None, bool], Awaitable[object]]
#: Paths anyone authenticated may GET: the probes, ``/version``, discovery and OpenAPI.
OPEN_PATHS = ("/healthz", "/readyz", "/version", "/api", "/apis", "/openapi")


class ResourceAttributes(msgspec.Struct, kw_only=True, omit_defaults=True):
    namespace: str = ""
    verb: str = ""
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


class NonResourceAttributes(msgspec.Struct, kw_only=True, omit_defaults=True):
    path: str = ""
    verb: str = ""


class AccessReviewSpec(msgspec.Struct, kw_only=True, omit_defaults=True):
    resourceAttributes: ResourceAttributes | None = None
    nonResourceAttributes: NonResourceAttributes | None = None


class AccessReview(msgspec.Struct, kw_only=True):
    """``authorization.k8s.io/v1`` ``SelfSubjectAccessReview`` (its ``status`` is ignored)."""

    spec: AccessReviewSpec
    metadata: dict[str, Any] = {}


class SubjectReview(msgspec.Struct, kw_only=True):
    """``authentication.k8s.io/v1`` ``SelfSubjectReview``: nothing in it is read."""

    metadata: dict[str, Any] = {}


def verb_routes(routes: list[tuple[Operated, Mapping[str, Any], bool]]) -> Policies:
    """Each family C route with its ``opt`` and whether it lists across namespaces →
    :data:`Policies`."""
    policies: dict[tuple[str, str, bool], Mapping[str, Any]] = {}
    for route, opt, across in routes:
        verb = VERBS.get((route.method, route.target, route.suffix))
        if verb is not None:
            resource = f"{route.plural}/{route.suffix}" if route.suffix else route.plural
            policies[(resource, verb, across)] = opt
    return policies


def subject_review(principal: Principal) -> bytes:
    """Who the caller is: its name, id, groups and global role."""
    return msgspec.json.encode(
        {
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "status": {
                "userInfo": {
                    "username": principal.username,
                    "uid": str(principal.id),
                    "groups": ["system:authenticated", f"wegent:{principal.role}"],
                    "extra": _extra(principal),
                }
            },
        }
    )


def _extra(principal: Principal) -> dict[str, list[str]]:
    """The global role, and the API token the caller came with (its name, never its secret)."""
    extra = {"wegent.io/role": [principal.role]}
    if principal.token is not None:
        extra["wegent.io/token"] = [principal.token.name]
    return extra


class AccessReviewer:
    """Decides a review from the same policies the routes declare."""

    def __init__(self, resources: Policies, namespaces: Policies) -> None:
        self.resources = resources  # the agent.wecode.io group's, from the operation table
        self.namespaces = namespaces  # core v1 namespaces', from their framework routes

    async def review(self, principal: Principal, review: AccessReview, check: Check) -> bytes:
        allowed, reason = await self.decide(principal, review.spec, check)
        status: dict[str, Any] = {"allowed": allowed}
        if reason:
            status["reason"] = reason
        spec = msgspec.to_builtins(review.spec)
        return msgspec.json.encode(
            {
                "kind": "SelfSubjectAccessReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": spec,
                "status": status,
            }
        )

    async def decide(
        self, principal: Principal, spec: AccessReviewSpec, check: Check
    ) -> tuple[bool, str]:
        if spec.resourceAttributes is not None:
            return await self._resource(principal, spec.resourceAttributes, check)
        if spec.nonResourceAttributes is not None:
            attributes = spec.nonResourceAttributes
            path = attributes.path.rstrip("/") or "/"
            opened = any(path == p or path.startswith(f"{p}/") for p in OPEN_PATHS)
            return (True, "") if attributes.verb == "get" and opened else (False, "")
        return False, "no resourceAttributes or nonResourceAttributes"

    async def _resource(
        self, principal: Principal, attributes: ResourceAttributes, check: Check
    ) -> tuple[bool, str]:
        resource, verb = attributes.resource, attributes.verb
        if attributes.subresource:
            resource = f"{resource}/{attributes.subresource}"
        namespace = attributes.namespace or None
        if attributes.group == GROUP:
            across = namespace is None and verb in ("list", "watch")
            policies = self.resources
            if verb == "watch":
                verb = "list"  # a watch is a list's, where it is served
        elif attributes.group == "":
            across, policies = False, self.namespaces
            if resource == "namespaces" and verb in ("get", "delete"):
                namespace = attributes.name or namespace
        elif verb == "create" and (resource, verb) in _REVIEWS:
            return True, ""
        else:
            return False, f'no resources of group "{attributes.group}" are served here'
        opt = policies.get((resource, verb, across))
        if opt is None:
            return False, f'verb "{attributes.verb}" is not served on "{resource}"'
        if namespace is None and not across and policies is self.resources:
            # Every namespace at once: only a global admin writes everywhere.
            return principal.is_admin, "" if principal.is_admin else "not in every namespace"
        try:
            await check(opt, namespace, across)
        except ApiError as refused:
            return False, refused.message
        return True, ""


_REVIEWS = {(plural, "create") for reviews in REVIEW_GROUPS.values() for plural, _ in reviews}
