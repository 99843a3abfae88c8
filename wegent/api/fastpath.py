"""The two hottest reads answered without Litestar's per-request machinery.

Reading one object and listing a page are most of the traffic. On those routes this
handler-level middleware answers the plain form of the request — known query parameters with
well-formed values — with the same policy check and the same service call the handler makes.
Anything else falls through to the handler, so unusual requests get exactly the framework's
answers (its 400s included). Litestar has already routed the request: path parameters and the
route's policy come from the scope.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from litestar.types import ASGIApp, Receive, Scope, Send

from wegent.api.errors import error_for, status_body
from wegent.resources.meta import NAME_PATTERN
from wegent.resources.service import Caller, CRDService, ListQuery
from wegent.services import Services

_NAME = re.compile(NAME_PATTERN)
_BOOLEANS = {"true": True, "false": False}
_JSON = (b"content-type", b"application/json")
Answer = Callable[[CRDService[Any], Caller, dict[str, str], Scope], Awaitable[bytes]]
LIST_PARAMETERS = frozenset(
    {"namespace", "limit", "continue", "labelSelector", "deleted", "allNamespaces"}
)


def fast_get(app: ASGIApp) -> ASGIApp:
    """GET one object with no query parameters but ``namespace``."""

    async def answer(
        service: CRDService[Any],
        caller: Caller,
        query: dict[str, str],
        scope: Scope,
    ) -> bytes:
        return await service.get(caller, scope["path_params"]["name"])

    return _fast(app, frozenset({"namespace"}), answer, _plain_get)


def fast_list(app: ASGIApp) -> ASGIApp:
    """A list page with the common parameters only."""

    async def answer(
        service: CRDService[Any],
        caller: Caller,
        query: dict[str, str],
        scope: Scope,
    ) -> bytes:
        listing = ListQuery(
            limit=int(query.get("limit", "500")),
            continue_token=query.get("continue"),
            label_selector=query.get("labelSelector"),
            deleted=_BOOLEANS[query.get("deleted", "false")],
            all_namespaces=_BOOLEANS[query.get("allNamespaces", "false")],
        )
        return await service.list_objects(caller, listing)

    known = frozenset(
        {"namespace", "limit", "continue", "labelSelector", "deleted", "allNamespaces"}
    )
    return _fast(app, known, answer, _plain_list)


def _plain_get(query: dict[str, str], scope: Scope) -> bool:
    name: str = scope["path_params"].get("name", "")
    return len(name) <= 63 and _NAME.match(name) is not None


def _plain_list(query: dict[str, str], scope: Scope) -> bool:
    limit = query.get("limit", "500")
    return (
        limit.isdigit()
        and 1 <= int(limit) <= 1000
        and query.get("deleted", "false") in _BOOLEANS
        and query.get("allNamespaces", "false") in _BOOLEANS
    )


def _fast(
    app: ASGIApp,
    known: frozenset[str],
    answer: Answer,
    plain: Callable[[dict[str, str], Scope], bool],
) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        query = _query(scope, known)
        if query is None or not plain(query, scope):
            await app(scope, receive, send)
            return
        services: Services = scope["app"].state.services
        try:
            principal, namespace = await services.guard.check(
                scope["route_handler"].opt,
                _header(scope, b"authorization"),
                scope["path_params"].get("namespace") or query.get("namespace"),
                _BOOLEANS.get(query.get("allNamespaces", "false"), False),
            )
            assert principal is not None
            service = services.resources[scope["route_handler"].opt["kind"]]
            body = await answer(service, Caller(principal, namespace or ""), query, scope)
        except Exception as exc:  # every failure answers the Status the handler would give
            error = error_for(exc)
            headers = [_JSON, *((k.lower().encode(), v.encode()) for k, v in error.headers.items())]
            await _send(send, error.code, status_body(error), headers)
            return
        await _send(send, 200, body, [_JSON])

    return middleware


def _query(scope: Scope, known: frozenset[str]) -> dict[str, str] | None:
    """The query as a dict, or None when it has a parameter this path does not handle."""
    raw = scope.get("query_string", b"")
    if not raw:
        return {}
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    query = dict(pairs)
    if len(query) != len(pairs) or not query.keys() <= known:
        return None
    return query


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
