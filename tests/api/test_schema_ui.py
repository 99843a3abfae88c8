"""The interactive docs work offline: every asset of the page is served by the service itself."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest

from wegent.api.schema_ui import assets_dir

BASE = "/schema/swagger-ui"
ASSETS = {
    f"{BASE}/swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    f"{BASE}/swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    f"{BASE}/swagger-ui.css": "text/css; charset=utf-8",
    f"{BASE}/favicon-32x32.png": "image/png",
}


class Links(HTMLParser):
    """Every address the page makes the browser load: src and href attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in {"src", "href"} and value]


@pytest.mark.parametrize("page", ["/schema", "/schema/swagger"])
async def test_the_docs_page_loads_only_the_services_own_assets(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    links = Links()
    links.feed(response.text)
    assert sorted(links.found) == sorted(ASSETS)
    assert re.findall(r"(?:https?:)?//[^\s\"'<>]+", response.text) == []  # no other host at all
    assert re.findall(r'url: "([^"]*)"', response.text) == ["/schema/openapi.json"]
    assert "validatorUrl: null" in response.text  # Swagger UI's online validator badge is off


@pytest.mark.parametrize(("url", "content_type"), sorted(ASSETS.items()))
async def test_each_asset_is_served_with_its_content_type(
    client: httpx.AsyncClient, url: str, content_type: str
) -> None:
    response = await client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "public, max-age=86400"
    assert response.content == (assets_dir() / url.rsplit("/", 1)[1]).read_bytes()
    assert len(response.content) > 500


async def test_the_document_the_page_loads_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "Wegent resource API"


async def test_other_files_of_the_package_are_not_served(client: httpx.AsyncClient) -> None:
    for path in ("swagger-editor-bundle.js", "LICENSE", "../__init__.py", "index.css"):
        assert (await client.get(f"{BASE}/{path}")).status_code == 404
    for site in ("redoc", "elements", "rapidoc"):  # the CDN-loading pages are not served
        assert (await client.get(f"/schema/{site}")).status_code == 404
