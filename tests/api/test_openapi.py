"""The OpenAPI document describes every route, each kind's own schemas and every error."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from litestar import Litestar

from tests.auth.test_authorization import route_table
from wegent.resources.registry import KINDS


@pytest.fixture(scope="module")
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "responses" in op
    ]


async def test_it_is_openapi_3_1_and_served_without_auth(
    document: dict[str, Any], client: httpx.AsyncClient
) -> None:
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert (await client.get("/schema")).status_code == 200


async def test_every_kind_has_its_own_schemas(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for info in KINDS:
        for name in (info.kind, f"{info.kind}Input", f"{info.kind}List", f"{info.kind}Spec"):
            assert name in schemas, name
        post = document["paths"][f"/api/v1/namespaces/{{namespace}}/{info.plural}"]["post"]
        body = post["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{info.kind}Input"}
        created = post["responses"]["201"]["content"]["application/json"]["schema"]
        assert created == {"$ref": f"#/components/schemas/{info.kind}"}
    assert schemas["Task"]["properties"]["status"] == {"$ref": "#/components/schemas/TaskStatus"}


async def test_every_route_is_documented_once(document: dict[str, Any], app: Litestar) -> None:
    documented = {(method, path) for method, path, _ in operations(document)}
    served = {
        (method, path.replace(":str", ""))
        for method, path, _ in route_table(app)
        if not path.startswith("/schema")
    }
    served = {
        (m, p.replace("{namespace}", "{namespace}").replace("{name}", "{name}")) for m, p in served
    }
    assert served == documented
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))


async def test_errors_are_documented_as_status_bodies(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        for code, response in op["responses"].items():
            if int(code) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Status"}, (method, path, code)
        if path not in (
            "/healthz",
            "/readyz",
            "/api/v1/auth/register",
            "/api/v1/auth/login",
            "/api/auth/login",
        ):
            assert "401" in op["responses"], (method, path)
        if "requestBody" in op:
            assert {"400", "415", "422"} <= set(op["responses"]), (method, path)
