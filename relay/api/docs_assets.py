"""Swagger UI for `/schema`, served by Relay itself: no CDN, no inline script or style.

The page works under the Content-Security-Policy every Relay page carries (relay/api/security_headers.py).
swagger-ui's own files (JS, CSS, favicon) come from the swagger-ui-py package, which ships
swagger-ui-dist; Relay adds the small script that starts it (`docs_static/swagger-init.js`).
Relay runs on private networks, so its API documentation must not depend on the internet.
"""

from __future__ import annotations

import html
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from litestar import Request, Router
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router


def swagger_ui_dist() -> Path:
    """Return the folder of swagger-ui's built files inside the installed swagger-ui-py package."""
    # find_spec locates the package without importing it (its __init__ wires up web frameworks Relay does not use).
    spec = find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed; it ships Swagger UI for /schema")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


RELAY_ASSETS = Path(__file__).parent / "docs_static"


class LocalSwaggerRenderPlugin(SwaggerRenderPlugin):
    """Litestar's Swagger UI page, with its assets under `<docs path>/assets` and no inline script."""

    def __init__(self, docs_path: str, path: str = "/") -> None:
        self.assets_url = f"{docs_path}/assets"
        super().__init__(
            js_url=f"{self.assets_url}/swagger-ui-bundle.js",
            css_url=f"{self.assets_url}/swagger-ui.css",
            standalone_preset_js_url=f"{self.assets_url}/swagger-ui-standalone-preset.js",
            favicon=f'<link rel="icon" type="image/png" href="{self.assets_url}/favicon-32x32.png">',
            path=path,
        )

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        """Render the page; swagger-init.js starts Swagger UI with the OpenAPI document's URL."""
        title = html.escape(openapi_schema["info"]["title"])
        openapi_url = html.escape(self.get_openapi_json_route(request))
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} API</title>
  {self.favicon}
  <link rel="stylesheet" href="{self.css_url}">
  <link rel="stylesheet" href="{self.assets_url}/index.css">
  <script src="{self.js_url}"></script>
  <script src="{self.standalone_preset_js_url}"></script>
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
  <script src="{self.assets_url}/swagger-init.js"></script>
</body>
</html>
""".encode()

    def receive_router(self, router: Router) -> None:
        """Serve the assets from the docs router (public like the rest of it).

        Litestar's Swagger plugin would add an OAuth2 redirect page here; Relay has no OAuth2 flow.
        """
        router.register(
            create_static_files_router(
                path="/assets", directories=[swagger_ui_dist(), RELAY_ASSETS], include_in_schema=False,
                name="docs-assets",
            )
        )
