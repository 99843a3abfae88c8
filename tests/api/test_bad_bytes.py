"""Bytes that are not JSON the server can read are a 400 on every route that takes a body,
never a 500 (hardening finding 7): invalid UTF-8 anywhere, and nesting deeper than the decoder
goes. Routes are taken from the app's own route table, so a new body route is covered too."""

from __future__ import annotations

import re

import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from tests.helpers import Account, status_body

PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
INVALID_UTF8 = {
    "a lone 0xff": b'{"metadata": {"name": "\xff"}}',
    "an overlong slash": b'{"metadata": {"name": "\xc0\xaf"}}',
    "a surrogate": b'{"metadata": {"name": "\xed\xa0\x80"}}',
    "in a key": b'{"\xff": 1}',
}


def body_routes(app: Litestar) -> list[tuple[str, str]]:
    """(method, path) of every route that reads a request body: the resource API's rows that
    take one, and the framework's handlers with a ``data`` parameter. They are called as a
    global admin, so that every policy lets the request through to its body."""
    rows = {
        (route.operation.method, route.path)
        for route in app.front.dispatcher.api.routes  # type: ignore[attr-defined]
        if route.operation.body is not None
    }
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if "data" not in handler.parsed_fn_signature.parameters:
                continue
            for method in handler.http_methods & {"POST", "PUT", "PATCH"}:
                rows.add((method, route.path_format.replace(":str", "")))
    return sorted(rows)


def concrete(path: str, account: Account) -> str:
    values = {"namespace": account.username, "name": "x", "username": account.username}
    return PARAM.sub(lambda m: values[m.group(1)], path)


async def test_there_are_body_routes_to_check(app: Litestar) -> None:
    assert len(body_routes(app)) > 20


@pytest.mark.parametrize("sample", sorted(INVALID_UTF8))
async def test_invalid_utf8_is_400_everywhere(
    client: httpx.AsyncClient, app: Litestar, admin: Account, sample: str
) -> None:
    body = INVALID_UTF8[sample]
    offset = body.index(next(b for b in body if b >= 0x80).to_bytes(1, "big"))
    for method, path in body_routes(app):
        response = await client.request(
            method,
            concrete(path, admin),
            content=body,
            headers={**admin.headers, "Content-Type": "application/json"},
        )
        assert (response.status_code, response.json()) == (
            400,
            status_body(400, "BadRequest", f"request body is not valid UTF-8 (byte {offset})"),
        ), (method, path)


async def test_json_nested_too_deeply_is_400_everywhere(
    client: httpx.AsyncClient, app: Litestar, admin: Account
) -> None:
    body = b'{"spec": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    for method, path in body_routes(app):
        response = await client.request(
            method,
            concrete(path, admin),
            content=body,
            headers={**admin.headers, "Content-Type": "application/json"},
        )
        assert (response.status_code, response.json()) == (
            400,
            status_body(400, "BadRequest", "request body is nested too deeply"),
        ), (method, path)


async def test_a_merge_patch_nested_10000_levels_is_400(
    client: httpx.AsyncClient, alice: Account
) -> None:
    created = await client.post(
        f"/api/v1/namespaces/{alice.username}/ghosts",
        json={"metadata": {"name": "deep"}, "spec": {"systemPrompt": "p"}},
        headers=alice.headers,
    )
    assert created.status_code == 201
    patch = b'{"spec": {"mcpServers": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_001 + b"}"
    response = await client.patch(
        f"/api/v1/namespaces/{alice.username}/ghosts/deep",
        content=patch,
        headers={**alice.headers, "Content-Type": "application/merge-patch+json"},
    )
    assert (response.status_code, response.json()) == (
        400,
        status_body(400, "BadRequest", "request body is nested too deeply"),
    )
