"""The two hottest reads answered before Litestar routes the request.

Reading one object and listing a page are most of the traffic. Their plain form — a GET on
``/api/v1/kinds/{plural}[/{name}]`` or ``/api/v1/namespaces/{NS}/{plural}[/{name}]`` with known
query parameters and well-formed values — is answered here with the same policy check and the
same service call the route's handler makes, without the framework's per-request machinery
(routing, dependency injection, signature parsing, response objects: about two thirds of what
a read cost). Anything else returns False and goes to Litestar, so unusual requests get
exactly the framework's answers (its 400s included); the tests compare both paths byte for byte.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from litestar.types import Receive, Scope, Send

from wegent.api.errors import error_for, status_body
from wegent.auth.policy import policy
from wegent.resources.meta import NAME_PATTERN
from wegent.resources.registry import BY_PLURAL
from wegent.resources.service import Caller, ListQuery
from wegent.services import Services

_NAME = re.compile(NAME_PATTERN)
_BOOLEANS = {"true": True, "false": False}
_JSON = (b"content-type", b"application/json")
_GET_POLICY = policy("read")
_LIST_POLICY = policy("read", all_namespaces=True)
GET_PARAMETERS = frozenset({"namespace"})
LIST_PARAMETERS = frozenset(
    {"namespace", "limit", "continue", "labelSelector", "deleted", "allNamespaces"}
)


class FastReads:
    """Answers plain GET-one and list requests; ``handle`` says whether it did."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> bool:
        route = _route(scope["path"])
        if route is None:
            return False
        namespace, plural, name = route
        info = BY_PLURAL.get(plural)
        if info is None or (name is None and info.kind == "Task"):  # task lists take filters
            return False
        query = _query(scope, GET_PARAMETERS if name else LIST_PARAMETERS)
        if query is None or not (_plain_name(name) if name else _plain_list(query)):
            return False
        try:
            principal, resolved = await self._services.guard.check(
                _GET_POLICY if name else _LIST_POLICY,
                _header(scope, b"authorization"),
                namespace or query.get("namespace"),
                query.get("allNamespaces") == "true",
            )
            assert principal is not None
            caller = Caller(principal, resolved or "")
            service = self._services.resources[info.kind]
            if name:
                body = await service.get(caller, name)
            else:
                body = await service.list_objects(caller, _list_query(query))
        except Exception as exc:  # every failure answers the Status the handler would give
            error = error_for(exc)
            headers = [_JSON, *((k.lower().encode(), v.encode()) for k, v in error.headers.items())]
            await _send(send, error.code, status_body(error), headers)
            return True
        await _send(send, 200, body, [_JSON])
        return True


def _route(path: str) -> tuple[str | None, str, str | None] | None:
    """(namespace from the path, plural, name) of a resource GET path, else None."""
    parts = path.split("/")
    if len(parts) < 5 or parts[1] != "api" or parts[2] != "v1":
        return None
    if parts[3] == "kinds" and len(parts) in (5, 6):
        return None, parts[4], parts[5] if len(parts) == 6 else None
    if parts[3] == "namespaces" and len(parts) in (6, 7) and parts[4]:
        return parts[4], parts[5], parts[6] if len(parts) == 7 else None
    return None


def _plain_name(name: str) -> bool:
    return len(name) <= 63 and _NAME.match(name) is not None


def _plain_list(query: dict[str, str]) -> bool:
    limit = query.get("limit", "500")
    return (
        limit.isdigit()
        and 1 <= int(limit) <= 1000
        and query.get("deleted", "false") in _BOOLEANS
        and query.get("allNamespaces", "false") in _BOOLEANS
    )


def _list_query(query: dict[str, str]) -> ListQuery:
    return ListQuery(
        limit=int(query.get("limit", "500")),
        continue_token=query.get("continue"),
        label_selector=query.get("labelSelector"),
        deleted=_BOOLEANS[query.get("deleted", "false")],
        all_namespaces=_BOOLEANS[query.get("allNamespaces", "false")],
    )


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
    start: Any = {
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})
