"""Authentication by default: every route but the public few answers 401 to missing or junk credentials.

Routes are enumerated from the app's own route table, so a route added without a thought
for authentication is covered the day it is added.
"""

from __future__ import annotations

import re

import pytest
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from relay.api.auth import is_public

# Kept here as well as in relay/api/auth.py on purpose: making a route public takes two edits.
PUBLIC = {
    "/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/logout",
    "/health", "/health/ready", "/metrics",
    "/schema", "/schema/openapi.json", "/schema/{path}", "/schema/assets/{file_path}",
}
# The dashboard signs its users in with a session cookie (relay/ui/guard.py), not API keys:
# to the API's authentication its routes are public, and the guard stands in front of them.
DASHBOARD_OPEN = {"/", "/ui/login", "/ui/signup"}  # and the assets under /ui/static
NOT_CREDENTIALS = {
    "none": {},
    "junk bearer token": {"Authorization": "Bearer junk"},
    "junk access token": {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlIGp1bms"},
    "junk API key": {"X-API-Key": "rly_junk"},
    "another scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
}


def http_routes(api: TestClient) -> list[HTTPRoute]:
    return [route for route in api.app.routes if isinstance(route, HTTPRoute)]


def protected(api: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) of the route table that is not public, path parameters filled with a dummy value."""
    found = []
    for route in http_routes(api):
        if route.path_format in PUBLIC or is_dashboard(route.path_format):
            continue
        for method in sorted(route.route_handler_map):
            if method != "OPTIONS":  # lists the allowed methods only; CORS preflights carry no credentials
                found.append((method, re.sub(r"\{\w+\}", "dummy", route.path_format)))
    return found


def is_dashboard(path: str) -> bool:
    return path == "/" or path == "/ui" or path.startswith("/ui/")


def test_the_public_routes_are_exactly_these(api: TestClient) -> None:
    public = {route.path_format for route in http_routes(api) if is_public(route.path_format)}
    assert {path for path in public if not is_dashboard(path)} == PUBLIC
    assert {path for path in public if is_dashboard(path)} == {
        route.path_format for route in http_routes(api) if is_dashboard(route.path_format)
    }


def test_every_dashboard_page_needs_a_session(api: TestClient) -> None:
    pages = [
        (method, re.sub(r"\{\w+(:\w+)?\}", "dummy", route.path_format))
        for route in http_routes(api) if is_dashboard(route.path_format) and route.path_format not in DASHBOARD_OPEN
        and not route.path_format.startswith("/ui/static")
        for method in sorted(route.route_handler_map) if method != "OPTIONS"
    ]
    assert len(pages) >= 10, pages
    wrong = []
    for method, path in pages:
        for cookies in ({}, {"relay_session": "forged.0000"}):
            api.cookies.clear()
            response = api.request(method, path, cookies=cookies, follow_redirects=False)
            if response.status_code != 303 or not response.headers["location"].startswith("/ui/login?next="):
                wrong.append((method, path, cookies, response.status_code))
    assert wrong == []


@pytest.mark.parametrize("credentials", NOT_CREDENTIALS.values(), ids=NOT_CREDENTIALS.keys())
def test_every_other_route_answers_401(api: TestClient, credentials: dict[str, str]) -> None:
    routes = protected(api)
    assert len(routes) >= 35, routes
    wrong = []
    for method, path in routes:
        response = api.request(method, path, headers=credentials)
        if (
            response.status_code != 401
            or not response.headers["content-type"].startswith("application/problem+json")
            or response.json()["status"] != 401
            or not response.headers["www-authenticate"].startswith("Bearer")
        ):
            wrong.append((method, path, response.status_code, response.text[:120]))
    assert wrong == []


def test_public_routes_answer_without_credentials(api: TestClient) -> None:
    for path in ("/health", "/metrics", "/schema/openapi.json"):
        assert api.get(path).status_code == 200, path
    assert api.get("/health/ready").status_code in (200, 503)
    for path in ("/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/logout"):
        assert api.post(path, json={}).status_code == 400, path  # the body is judged, not the caller


def test_options_lists_methods_without_credentials(api: TestClient) -> None:
    response = api.options("/v1/endpoints")
    assert response.status_code == 204 and "POST" in response.headers["allow"]


def test_only_public_routes_take_a_raw_connection(api: TestClient) -> None:
    """The others reach the database through `db`, a TenantDb that binds the caller's tenant to every query."""
    raw = {
        route.path_format
        for route in http_routes(api)
        for handler in route.route_handlers
        if "conn" in handler.parsed_fn_signature.parameters
    }
    assert raw and raw <= PUBLIC | {"/ui/login", "/ui/signup", "/ui/logout"}  # signing in needs no tenant yet
