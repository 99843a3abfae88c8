"""What makes this a Kubernetes API server for kubectl and client libraries (API.md §14), besides
family C's operations: discovery, ``/version``, OpenAPI v3 and the two self-reviews.

Every document is built once per app from the operation table and the kind registry. These
routes are Kubernetes' protocol, described in docs/kubectl.md, and kept out of the service's
own OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from litestar import Request, get, post
from litestar.response import Response

from wegent.api import namespaces
from wegent.api import params as p
from wegent.api.markers import AnyRequest, ServicesDep
from wegent.api.operations import Route, build_routes
from wegent.auth.policy import policy, principal_of
from wegent.k8s import bodies, discovery, openapi_v3, reviews
from wegent.k8s.discovery import GROUP, GROUP_VERSION

JSON = "application/json"
DISCOVERY_PATHS = [
    "/api",
    "/api/v1",
    "/apis",
    f"/apis/{GROUP}",
    f"/apis/{GROUP_VERSION}",
    *(f"/apis/{group}" for group in discovery.REVIEW_GROUPS),
    *(f"/apis/{group}/v1" for group in discovery.REVIEW_GROUPS),
]
OPENAPI_PATHS = [f"/openapi/v3/apis/{GROUP_VERSION}", "/openapi/v3/api/v1"]
_VERSION = discovery.version_info()


def _operated(route: Route) -> discovery.Operated:
    assert route.kind is not None
    operation = route.operation
    return discovery.Operated(
        route.kind.plural,
        operation.method,
        operation.target,
        operation.suffix,
        watch=p.WATCH in operation.params,
    )


class KubernetesProtocol:
    """The documents and the reviewer of one app (``app.state.kubernetes``)."""

    def __init__(self, document: Callable[[], dict[str, Any]]) -> None:
        """``document``: the service's whole OpenAPI document, which the group document is cut
        from (built on first use)."""
        self._document = document
        table = [r for r in build_routes() if r.kind is not None]
        routes = [r for r in table if r.family.name == "C"]
        namespace_verbs = ["create", "delete", "get", "list"]
        self.discovery = discovery.Discovery(map(_operated, routes), namespace_verbs)
        across = [r for r in table if r.family.name == "C-all"]
        self.reviewer = reviews.AccessReviewer(
            reviews.verb_routes(
                [(_operated(r), r.opt, False) for r in routes]
                + [(_operated(r), r.opt, True) for r in across]
            ),
            {
                ("namespaces", "list", False): namespaces.list_namespaces.opt,
                ("namespaces", "create", False): namespaces.create_namespace.opt,
                ("namespaces", "get", False): namespaces.get_namespace.opt,
                ("namespaces", "delete", False): namespaces.delete_namespace.opt,
            },
        )

    @cached_property
    def openapi(self) -> dict[str, openapi_v3.Published]:
        document = self._document()
        return {
            f"apis/{GROUP_VERSION}": openapi_v3.publish(openapi_v3.group_document(document)),
            "api/v1": openapi_v3.publish(openapi_v3.core_document(document["info"]["version"])),
        }

    @cached_property
    def openapi_index(self) -> bytes:
        return openapi_v3.index(self.openapi)


def _protocol(request: Request[Any, Any, Any]) -> KubernetesProtocol:
    protocol: KubernetesProtocol = request.app.state.kubernetes
    return protocol


@get(DISCOVERY_PATHS, opt=policy("authenticated"), include_in_schema=False, sync_to_thread=False)
def discovery_document(request: AnyRequest) -> Response[bytes]:
    """Discovery: the plain documents, whatever aggregated form the client also accepts."""
    documents = _protocol(request).discovery.documents
    return Response(documents[request.url.path.rstrip("/")], media_type=JSON)


@get("/version", opt=policy("public"), include_in_schema=False, sync_to_thread=False)
def version() -> Response[bytes]:
    """``version.Info``; no token needed."""
    return Response(_VERSION, media_type=JSON)


@get("/openapi/v3", opt=policy("authenticated"), include_in_schema=False, sync_to_thread=False)
def openapi_index(request: AnyRequest) -> Response[bytes]:
    return Response(_protocol(request).openapi_index, media_type=JSON)


@get(OPENAPI_PATHS, opt=policy("authenticated"), include_in_schema=False, sync_to_thread=False)
def openapi_document(request: AnyRequest) -> Response[bytes]:
    """A group version's document, with its hash as ``ETag`` (304 when the client has it)."""
    published = _protocol(request).openapi[request.url.path.removeprefix("/openapi/v3/")]
    etag = f'"{published.hash}"'
    if request.headers.get("if-none-match") == etag:
        return Response(b"", status_code=304, headers={"ETag": etag})
    return Response(published.body, media_type=JSON, headers={"ETag": etag})


@post(
    "/apis/authentication.k8s.io/v1/selfsubjectreviews",
    opt=policy("authenticated"),
    include_in_schema=False,
)
async def subject_review(request: AnyRequest) -> Response[bytes]:
    """``kubectl auth whoami``: the body (JSON or protobuf) is read and otherwise ignored."""
    content_type = request.headers.get("content-type")
    bodies.read(content_type, await request.body(), reviews.SubjectReview, "SelfSubjectReview")
    return Response(reviews.subject_review(principal_of(request)), media_type=JSON, status_code=201)


@post(
    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
    opt=policy("authenticated"),
    include_in_schema=False,
)
async def access_review(request: AnyRequest, services: ServicesDep) -> Response[bytes]:
    """``kubectl auth can-i``: allowed exactly when a request would pass the route's policy."""
    content_type = request.headers.get("content-type")
    review = bodies.read(
        content_type, await request.body(), reviews.AccessReview, "SelfSubjectAccessReview"
    )
    principal = principal_of(request)

    async def check(opt: Any, namespace: str | None, across: bool) -> None:
        await services.guard.authorize(principal, opt, namespace, across)

    answer = await _protocol(request).reviewer.review(principal, review, check)
    return Response(answer, media_type=JSON, status_code=201)


ROUTES = [
    discovery_document,
    version,
    openapi_index,
    openapi_document,
    subject_review,
    access_review,
]
