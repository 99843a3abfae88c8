"""``OPTIONS`` lists every method of its path, as a 405 on the same path does."""

from __future__ import annotations

import httpx
import pytest
from litestar import Litestar

from tests.auth.test_authorization import route_table

PATHS = {
    "/api/v1/namespaces/alice/skills": "GET, OPTIONS, POST",
    "/api/v1/kinds/skills": "GET, OPTIONS, POST",
    "/api/v1/namespaces/alice/skills/s1": "DELETE, GET, OPTIONS, PATCH, PUT",
    "/api/v1/kinds/tasks/t1": "DELETE, GET, OPTIONS, PATCH, PUT",
    "/api/v1/kinds/tasks/t1/status": "OPTIONS, PUT",
    "/api/v1/namespaces": "GET, OPTIONS, POST",
    "/api/v1/namespaces/alice": "DELETE, GET, OPTIONS",
    "/api/v1/namespaces/alice/members/bob": "DELETE, OPTIONS, PUT",
    "/healthz": "GET, OPTIONS",
}


@pytest.mark.parametrize(("path", "allow"), PATHS.items())
async def test_options_and_405_list_the_same_methods(
    client: httpx.AsyncClient, path: str, allow: str
) -> None:
    options = await client.options(path)
    assert (options.status_code, options.headers["allow"]) == (204, allow)
    refused = await client.request("TRACE", path)
    assert refused.status_code == 405
    assert sorted(refused.headers["allow"].split(", ")) == allow.split(", ")


async def test_every_path_answers_options_with_all_its_methods(
    client: httpx.AsyncClient, app: Litestar
) -> None:
    served: dict[str, set[str]] = {}
    for method, path, _ in route_table(app):
        served.setdefault(path, {"OPTIONS"}).add(method)
    for path, methods in served.items():
        concrete = path.replace("{namespace:str}", "alice").replace("{name:str}", "n1")
        concrete = concrete.replace("{username:str}", "bob").replace("{path:str}", "x")
        response = await client.options(concrete)
        assert response.headers.get("allow") == ", ".join(sorted(methods)), path
