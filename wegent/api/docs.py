"""OpenAPI helpers: each route documents every error status it can answer, as a Status body."""

from __future__ import annotations

from typing import Any

from litestar.openapi.datastructures import ResponseSpec

from wegent.api.errors import Status

_DESCRIPTIONS = {
    400: "Bad request (malformed body, parameter or token)",
    401: "Missing or invalid bearer token",
    403: "Not allowed for this caller",
    404: "Not found",
    405: "Not served on this path",
    409: "Conflict with the current state",
    410: "Expired: the resourceVersion asked for is history this server does not keep",
    408: "The request body did not arrive in time",
    413: "Request body too large",
    415: "Unsupported content type",
    422: "Invalid: every bad field is listed in details.causes",
    429: "Too many requests",
    503: "The database is unavailable",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """``responses=`` for a route: the listed codes, each a Status body. 400 and 503 are always
    there: any route answers 400 for a malformed parameter (replacing Litestar's own 400 shape)
    and 503 when the database is unreachable or the server is at its in-flight limit."""
    return {
        code: ResponseSpec(
            data_container=Status, description=_DESCRIPTIONS[code], generate_examples=False
        )
        for code in sorted({400, 503, *codes})
    }


def error_responses(*codes: int) -> dict[str, Any]:
    """The same as :func:`errors`, as OpenAPI response objects (for documents written by hand)."""
    status = {"$ref": "#/components/schemas/Status"}
    return {
        str(code): {
            "description": _DESCRIPTIONS[code],
            "content": {"application/json": {"schema": status}},
        }
        for code in sorted({400, 503, *codes})
    }


#: ``security=`` of the routes that need no token: anonymous access is allowed.
NO_TOKEN: list[dict[str, list[str]]] = [{}]
