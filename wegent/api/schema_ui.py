"""The interactive docs page (``/schema``): Swagger UI, its assets served by this service.

Litestar's render plugins point the browser at a CDN for their scripts, styles and favicon, so
the docs page is blank without internet access. Here the page loads everything from the
service itself: the Swagger UI distribution files shipped by the ``swagger-ui-py`` package
(docs/decisions.md, "Interactive docs offline"), served under ``/schema/swagger-ui/``, and the
document from ``/schema/openapi.json``. The online validator badge, the one other address Swagger
UI would call, is off.
"""

from __future__ import annotations

import html
import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

from litestar import Request, Router, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.response import Response

ASSETS_PATH = "/swagger-ui"
# The files the page loads, with their content types (Litestar adds "; charset=utf-8" to text
# types); nothing else of the package is served.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
CACHE_CONTROL = "public, max-age=86400"


def assets_dir() -> Path:
    """Swagger UI's distribution files in the installed ``swagger-ui-py`` package (found
    without importing it: its own code is for other frameworks)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:  # pragma: no cover - a declared dependency
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(spec.origin).parent / "static"


@cache
def asset(name: str) -> bytes:
    """One file's bytes, read once per process."""
    return (assets_dir() / name).read_bytes()


class OfflineSwagger(SwaggerRenderPlugin):
    """Swagger UI at ``/schema`` and ``/schema/swagger``, every asset from this service."""

    def __init__(self, prefix: str = "/schema") -> None:
        base = f"{prefix}{ASSETS_PATH}"
        super().__init__(
            js_url=f"{base}/swagger-ui-bundle.js",
            css_url=f"{base}/swagger-ui.css",
            standalone_preset_js_url=f"{base}/swagger-ui-standalone-preset.js",
            favicon=f'<link rel="icon" type="image/png" href="{base}/favicon-32x32.png">',
            path=["/", "/swagger"],
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(str(openapi_schema["info"]["title"]))
        document = html.escape(self.get_openapi_json_route(request))
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
{self.favicon}
<link rel="stylesheet" href="{self.css_url}">
{self.style}
</head>
<body>
<div id="swagger-ui"></div>
<script src="{self.js_url}"></script>
<script src="{self.standalone_preset_js_url}"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: "{document}",
  dom_id: "#swagger-ui",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
}});
</script>
</body>
</html>
""".encode()

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)  # /schema/oauth2-redirect.html, a page of Litestar's own
        for name, media_type in ASSETS.items():
            router.register(_asset_route(name, media_type))


def _asset_route(name: str, media_type: str) -> HTTPRouteHandler:
    @get(
        f"{ASSETS_PATH}/{name}",
        media_type=media_type,
        include_in_schema=False,
        sync_to_thread=False,
        name=f"swagger-ui:{name}",
    )
    def serve() -> Response[bytes]:
        return Response(
            asset(name), media_type=media_type, headers={"Cache-Control": CACHE_CONTROL}
        )

    return serve
