"""/schema works with no internet: every script, stylesheet and icon comes from Relay itself, and no script is inline.

Relay runs on private networks; Litestar's stock Swagger page loads swagger-ui from a CDN.
The last test opens the page in a real Chromium with every request to another host refused.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from litestar.testing import TestClient

from tests.support import RelayProcess, free_port, relay_env, wait_for_http

DOCS_PAGES = ["/schema", "/schema/"]
CONTENT_TYPES = {"script": "text/javascript", "stylesheet": "text/css", "icon": "image/png"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class PageReferences(HTMLParser):
    """Collects what an HTML page loads (scripts, stylesheets, icons), every URL it names, and inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[tuple[str, str]] = []  # (kind, url)
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        self.urls += [value for name, value in found.items() if name in ("src", "href") or name.endswith("-url")]
        if tag == "script":
            self._in_script = "src" not in found
            if "src" in found:
                self.assets.append(("script", found["src"]))
        elif tag == "link" and found.get("rel") in ("stylesheet", "icon"):
            self.assets.append((found["rel"], found["href"]))

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


def references(html: str) -> PageReferences:
    parser = PageReferences()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("page", DOCS_PAGES)
def test_the_docs_page_names_no_other_origin_and_has_no_inline_script(api: TestClient, page: str) -> None:
    response = api.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    found = references(response.text)
    assert {kind for kind, _ in found.assets} == set(CONTENT_TYPES), found.assets
    for url in found.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), f"{page} names {url!r}"
    assert found.inline_scripts == [], "a Content-Security-Policy without 'unsafe-inline' would block these"


def test_every_asset_of_the_docs_page_is_served_by_relay_with_its_type(api: TestClient) -> None:
    found = references(api.get("/schema").text)
    for kind, url in found.assets:
        response = api.get(url)  # no credentials: the docs are public, like the rest of /schema
        assert response.status_code == 200, url
        assert response.headers["content-type"].split(";")[0] == CONTENT_TYPES[kind], url
        assert len(response.content) > 100, url
    scripts = [api.get(url).text for kind, url in found.assets if kind == "script"]
    assert any("SwaggerUIBundle(" in script and "validatorUrl: null" in script for script in scripts)


def test_the_openapi_document_the_page_names_is_served(api: TestClient) -> None:
    [openapi_url] = [url for url in references(api.get("/schema").text).urls if url.endswith(".json")]
    response = api.get(openapi_url)
    assert response.status_code == 200 and response.json()["info"]["title"] == "Relay"


def test_only_files_under_the_assets_folder_are_served(api: TestClient) -> None:
    for path in ("/schema/assets/../../relay/settings.py", "/schema/assets/%2e%2e/%2e%2e/pyproject.toml",
                 "/schema/assets/no-such-file.js"):
        assert api.get(path).status_code == 404, path


@pytest.fixture(scope="module")
def relay_api(conninfo: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `relay api` process (no worker) for the browser to talk to."""
    port = free_port()
    logs: Path = tmp_path_factory.mktemp("docs-offline")
    api = RelayProcess(["api", "--host", "127.0.0.1", "--port", str(port)], relay_env(conninfo), logs / "api.log")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", api)
        yield f"http://127.0.0.1:{port}"
    finally:
        api.stop()


@pytest.mark.skipif(
    not CHROMIUM and os.environ.get("RELAY_REQUIRE_BROWSER") != "1",
    reason="no Chromium found: `apt-get install -y chromium` to open /schema in a browser",
)
def test_swagger_ui_renders_the_operations_with_every_other_host_unreachable(relay_api: str) -> None:
    from playwright.sync_api import Route, sync_playwright

    assert CHROMIUM, "RELAY_REQUIRE_BROWSER=1 but no Chromium found"
    refused: list[str] = []

    def local_only(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1" or url.startswith("data:"):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.route("**/*", local_only)
            page.goto(f"{relay_api}/schema")
            page.get_by_text("/v1/endpoints/{endpoint_id}/rotate-secret").first.wait_for(timeout=20_000)
            assert page.locator(".opblock").count() >= 35
            assert page.locator(".opblock-tag").filter(has_text="endpoints").count() >= 1
        finally:
            browser.close()
    assert refused == [], "the docs page asked hosts other than Relay"
    assert errors == []
