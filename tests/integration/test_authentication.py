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
    "/schema", "/schema/openapi.json", "/schema/oauth2-redirect.html", "/schema/{path}",
}
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
        if route.path_format in PUBLIC:
            continue
        for method in sorted(route.route_handler_map):
            if method != "OPTIONS":  # lists the allowed methods only; CORS preflights carry no credentials
                found.append((method, re.sub(r"\{\w+\}", "dummy", route.path_format)))
    return found


def test_the_public_routes_are_exactly_these(api: TestClient) -> None:
    assert {route.path_format for route in http_routes(api) if is_public(route.path_format)} == PUBLIC


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
    assert raw and raw <= PUBLIC
