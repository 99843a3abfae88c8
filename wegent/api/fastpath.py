"""The resource operations that are most of the traffic, answered before Litestar routes them.

GET one, list, create, replace, merge-patch and delete, in their plain form — on
``/api/v1/kinds/{plural}[/{name}]`` or ``/api/v1/namespaces/{NS}/{plural}[/{name}]``, with only
the query parameters the route documents and well-formed values — are answered here with the
same policy check, the same body checks and the same service call the route's handler makes,
without the framework's per-request machinery (routing, dependency injection, signature
parsing, DTOs, response objects, middleware: about two thirds of what a request cost). Anything
else returns False and goes to Litestar, so unusual requests get exactly the framework's
answers (its 400s included); ``tests/api/test_fastpath.py`` runs the same requests through
both paths and compares statuses, headers and bodies.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from litestar.types import Receive, Scope, Send

from wegent.api.bodies import (
    MergePatchBody,
    StrictBody,
    check_media_type,
    decode_merge_patch,
    warning_value,
)
from wegent.api.errors import error_for, framework_error, status_body
from wegent.auth.policy import policy
from wegent.resources.decode import decode
from wegent.resources.envelope import input_type
from wegent.resources.meta import NAME_PATTERN
from wegent.resources.registry import BY_PLURAL, KindInfo
from wegent.resources.service import Caller, CRDService, ListQuery
from wegent.services import Services

Headers = list[tuple[bytes, bytes]]
Answer = tuple[int, bytes, Headers]

_NAME = re.compile(NAME_PATTERN)
_BOOLEANS = {"true": True, "false": False}
_FIELD_VALIDATION = frozenset({"Strict", "Warn", "Ignore"})
_JSON = (b"content-type", b"application/json")
_READ = policy("read")
_LIST = policy("read", all_namespaces=True)
_WRITE = policy("write")
_GET_PARAMETERS = frozenset({"namespace"})
_LIST_PARAMETERS = frozenset(
    {"namespace", "limit", "continue", "labelSelector", "deleted", "allNamespaces"}
)
_WRITE_PARAMETERS = frozenset({"namespace", "dryRun", "fieldValidation"})
_DELETE_PARAMETERS = frozenset({"namespace", "dryRun", "force"})


class Disconnected(Exception):
    """The client went away before its body arrived."""


class FastPath:
    """Answers the plain resource operations; ``handle`` says whether it did."""

    def __init__(self, services: Services, *, max_body_bytes: int, cors: bool) -> None:
        self._services = services
        self._max_body = max_body_bytes
        self._cors = cors  # CORS headers are the framework's: leave cross-origin calls to it

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> bool:
        route = _route(scope["path"])
        if route is None:
            return False
        namespace, plural, name = route
        info = BY_PLURAL.get(plural)
        if info is None or (name is not None and not _plain_name(name)):
            return False
        method: str = scope["method"]  # type: ignore[typeddict-item]
        operation = self._operation(method, info, name)
        if operation is None:
            return False
        run, opt, known = operation
        query = _query(scope, known)
        if query is None or not _plain_query(query) or (self._cors and _origin(scope)):
            return False
        try:
            principal, resolved = await self._services.guard.check(
                opt,
                _header(scope, b"authorization"),
                namespace or query.get("namespace"),
                query.get("allNamespaces") == "true",
            )
            assert principal is not None
            caller = Caller(principal, resolved or "")
            service = self._services.resources[info.kind]
            call = Call(service, caller, name or "", query, scope, receive)
            status, body, headers = await run(call)
        except Disconnected:
            return True  # nobody to answer
        except Exception as exc:  # every failure answers the Status the handler would give
            error = error_for(exc)
            headers = [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
            await _send(send, error.code, status_body(error), [_JSON, *headers])
            return True
        await _send(send, status, body, headers)
        return True

    def _operation(
        self, method: str, info: KindInfo, name: str | None
    ) -> tuple[Operation, dict[str, Any], frozenset[str]] | None:
        if method == "GET":
            if name is not None:
                return _get, _READ, _GET_PARAMETERS
            if info.kind != "Task":  # task lists take filters: the handler's
                return _list, _LIST, _LIST_PARAMETERS
            return None
        if method == "POST" and name is None:
            return self._create, _WRITE, _WRITE_PARAMETERS
        if name is None:
            return None
        if method == "PUT":
            return self._replace, _WRITE, _WRITE_PARAMETERS
        if method == "PATCH":
            return self._patch, _WRITE, _WRITE_PARAMETERS
        if method == "DELETE":
            return _delete, _WRITE, _DELETE_PARAMETERS
        return None

    async def _create(self, call: Call) -> Answer:
        body = await self._body(call, StrictBody.accepted_media_types)
        decoded = decode(body, input_type(call.service.kind), field_validation=call.validation)
        created = await call.service.create(call.caller, decoded.value, dry_run=call.dry_run)
        return 201, created, _with_warnings(decoded.warnings)

    async def _replace(self, call: Call) -> Answer:
        body = await self._body(call, StrictBody.accepted_media_types)
        decoded = decode(body, input_type(call.service.kind), field_validation=call.validation)
        replaced = await call.service.replace(
            call.caller, call.name, decoded.value, dry_run=call.dry_run
        )
        return 200, replaced, _with_warnings(decoded.warnings)

    async def _patch(self, call: Call) -> Answer:
        patch = decode_merge_patch(await self._body(call, MergePatchBody.accepted_media_types))
        patched, warnings = await call.service.patch(
            call.caller, call.name, patch, field_validation=call.validation, dry_run=call.dry_run
        )
        return 200, patched, _with_warnings(warnings)

    async def _body(self, call: Call, accepted: frozenset[str]) -> bytes:
        """The request body, refused as the framework refuses it: 413 over the size limit
        (announced or streamed), then 415 for a media type the route does not take."""
        scope, receive = call.scope, call.receive
        announced = _header(scope, b"content-length")
        if announced is not None and announced.isdigit() and int(announced) > self._max_body:
            raise framework_error(413)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise Disconnected()
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > self._max_body:
                    raise framework_error(413)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        check_media_type(_header(scope, b"content-type"), accepted)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Call(NamedTuple):
    """One request on its way through an operation; ``name`` is "" on a collection."""

    service: CRDService[Any]
    caller: Caller
    name: str
    query: dict[str, str]
    scope: Scope
    receive: Receive

    @property
    def dry_run(self) -> bool:
        return "dryRun" in self.query  # its value is checked: "All"

    @property
    def validation(self) -> str:
        return self.query.get("fieldValidation", "Warn")


Operation = Callable[[Call], Awaitable[Answer]]


async def _get(call: Call) -> Answer:
    return 200, await call.service.get(call.caller, call.name), [_JSON]


async def _list(call: Call) -> Answer:
    query = call.query
    listing = ListQuery(
        limit=int(query.get("limit", "500")),
        continue_token=query.get("continue"),
        label_selector=query.get("labelSelector"),
        deleted=_BOOLEANS[query.get("deleted", "false")],
        all_namespaces=_BOOLEANS[query.get("allNamespaces", "false")],
    )
    return 200, await call.service.list_objects(call.caller, listing), [_JSON]


async def _delete(call: Call) -> Answer:
    force = _BOOLEANS[call.query.get("force", "false")]
    await call.service.delete(call.caller, call.name, force=force, dry_run=call.dry_run)
    return 204, b"", []


def _route(path: str) -> tuple[str | None, str, str | None] | None:
    """(namespace from the path, plural, name) of a resource path, else None."""
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


def _plain_query(query: dict[str, str]) -> bool:
    """Every value the way the handler's signature would take it without a 400."""
    limit = query.get("limit", "500")
    return (
        limit.isdigit()
        and 1 <= int(limit) <= 1000
        and query.get("deleted", "false") in _BOOLEANS
        and query.get("allNamespaces", "false") in _BOOLEANS
        and query.get("force", "false") in _BOOLEANS
        and query.get("dryRun", "All") == "All"
        and query.get("fieldValidation", "Warn") in _FIELD_VALIDATION
    )


def _with_warnings(warnings: list[str]) -> Headers:
    return [_JSON, *((b"warning", warning_value(w)) for w in warnings)]


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


def _origin(scope: Scope) -> bool:
    return _header(scope, b"origin") is not None


async def _send(send: Send, status: int, body: bytes, headers: Headers) -> None:
    start: Any = {
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})
