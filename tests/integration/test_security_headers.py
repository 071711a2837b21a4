"""Safe browser defaults: every page Relay serves carries the CSP and the other headers; cookies are Secure on HTTPS.

The pages are found in the app's own route table, so a page added later is checked without
anyone remembering to list it here.
"""

from __future__ import annotations

import dataclasses
import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from http.cookies import SimpleCookie

import httpx
import psycopg
import pytest
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from relay.api.app import create_app
from relay.api.auth import DOCS_PATH
from relay.settings import load_settings
from relay.ui import api_client, guard
from relay.urlguard import parse_networks

PASSWORD = "a long enough password"
# The files asked for on the asset routes: a stylesheet, an image a browser may open as a page, an HTML file.
FILES = {
    "/ui/static/{file_path:path}": ["relay.css", "relay.js", "relay.svg"],
    f"{DOCS_PATH}/assets/{{file_path:path}}": ["swagger-ui.css", "swagger-init.js", "oauth2-redirect.html"],
}
# GET routes under /ui and /schema that answer something other than a page (on purpose).
NOT_PAGES = {"/ui/operations/{operation_id:str}/progress", f"{DOCS_PATH}/openapi.json", *FILES}
# What a policy may name: Relay itself, nothing, inline images. Any host or scheme would be a third party.
ALLOWED_SOURCES = {"'self'", "'none'", "data:"}


def csrf_token(client: TestClient, path: str = "/ui/signup") -> str:
    found = re.search(r'name="_csrf_token" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


def sign_up(client: TestClient) -> tuple[str, str]:
    """Sign up through the dashboard (signed in from then on); return (email, API access token)."""
    email = f"headers-{uuid.uuid4().hex[:8]}@example.com"
    answer = client.post("/ui/signup", data={"_csrf_token": csrf_token(client), "email": email, "password": PASSWORD,
                                             "password_again": PASSWORD, "tenant_name": "Headers"},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text
    login = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return email, login.json()["access_token"]


def one_of_everything(client: TestClient, db: psycopg.Connection, token: str) -> dict[str, str]:
    """Create an endpoint, an event (and its delivery), an API key and an operation; return their ids by name."""
    auth = {"authorization": f"Bearer {token}"}
    endpoint = client.post("/v1/endpoints", json={"url": "https://example.com/hook", "description": "<b>x</b>"},
                           headers=auth).json()
    event = client.post("/v1/events", json={"type": "order.paid", "payload": {"n": 1}}, headers=auth).json()
    [delivery] = client.get(f"/v1/events/{event['id']}", headers=auth).json()["deliveries"]
    key = client.post("/v1/api-keys", json={"name": "ci"}, headers=auth).json()
    db.execute("UPDATE relay.deliveries SET state = 'dead', next_attempt_at = NULL, completed_at = now() WHERE id = %s",
               (delivery["id"],))
    operation = client.post("/v1/dead-letter/replay", json={}, headers=auth).json()
    return {"endpoint_id": endpoint["id"], "event_id": event["id"], "delivery_id": delivery["id"],
            "key_id": key["id"], "operation_id": operation["id"], "name": "order.paid"}


def get_paths(client: TestClient, values: dict[str, str]) -> list[tuple[str, str]]:
    """Every GET route of the app as (route template, a path to ask), its parameters filled from `values`."""
    found = []
    for route in client.app.routes:
        if not isinstance(route, HTTPRoute) or "GET" not in route.route_handler_map:
            continue
        for file in FILES.get(route.path, [None]):
            def fill(match: re.Match[str], file: str | None = file, template: str = route.path) -> str:
                name = match.group(1)
                assert file or name in values, f"{template}: give this test a value for {{{name}}}"
                return file or values[name]

            found.append((route.path, re.sub(r"\{(\w+):\w+\}", fill, route.path)))
    return found


def policy(header: str) -> dict[str, list[str]]:
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name: sources for name, *sources in directives}


def is_page(answer: httpx.Response) -> bool:
    kind = answer.headers.get("content-type", "")
    return answer.is_redirect or kind.startswith(("text/html", "image/svg+xml"))


def page_header_problems(path: str, answer: httpx.Response) -> list[str]:
    """What is wrong with a page's headers (nothing, for a good page)."""
    headers = answer.headers
    problems = []
    for name, value in (("x-content-type-options", "nosniff"), ("x-frame-options", "DENY"),
                        ("referrer-policy", "same-origin"), ("cross-origin-opener-policy", "same-origin")):
        if headers.get(name) != value:
            problems.append(f"{path}: {name} is {headers.get(name)!r}, not {value!r}")
    if "content-security-policy" not in headers:
        return [*problems, f"{path}: no Content-Security-Policy"]
    csp = policy(headers["content-security-policy"])
    expected = {"default-src": ["'self'"], "script-src": ["'self'"], "style-src": ["'self'"],
                "object-src": ["'none'"], "base-uri": ["'none'"], "frame-ancestors": ["'none'"],
                "form-action": ["'self'"]}
    for name, sources in expected.items():
        if csp.get(name) != sources:
            problems.append(f"{path}: {name} is {csp.get(name)}, not {sources}")
    for name, sources in csp.items():
        if set(sources) - ALLOWED_SOURCES:  # 'unsafe-inline', 'unsafe-eval', a host, a scheme
            problems.append(f"{path}: {name} allows {sorted(set(sources) - ALLOWED_SOURCES)}")
    return problems


@pytest.fixture
def visitor(api: TestClient) -> Iterator[TestClient]:
    """The session-wide API client, with no cookies before and after."""
    api.cookies.clear()
    yield api
    api.cookies.clear()


def test_every_html_route_carries_the_policy_and_the_browser_headers(visitor: TestClient, db, monkeypatch) -> None:
    client = visitor
    missing = {"endpoint_id": "ep_missing", "event_id": "evt_missing", "delivery_id": "dlv_missing",
               "key_id": "key_missing", "operation_id": "op_missing", "name": "missing", "rest": "no/such/page",
               "path": "no-such-page"}
    asked: list[tuple[str, str, int, str]] = []
    problems = []

    def walk(who: str, values: dict[str, str]) -> None:
        for template, path in get_paths(client, values):
            answer = client.get(path, follow_redirects=False)
            assert answer.status_code < 500, (who, path, answer.status_code, answer.text[:300])
            asked.append((who, template, answer.status_code, answer.headers.get("content-type", "")))
            if answer.headers.get("x-content-type-options") != "nosniff":
                problems.append(f"{who} {path}: no X-Content-Type-Options: nosniff")
            if is_page(answer):
                problems.extend(f"{who} {problem}" for problem in page_header_problems(path, answer))
            elif template.startswith(("/ui", DOCS_PATH)) and template not in NOT_PAGES:
                problems.append(f"{who} {path}: answered {answer.status_code} {answer.headers.get('content-type')}")

    # Signed out: the sign-in pages, the redirects to them, the docs, the front page's redirect.
    walk("signed out", missing)
    _, token = sign_up(client)
    ids = one_of_everything(client, db, token)
    walk("signed in", {**missing, **ids})
    walk("signed in, unknown ids", missing)

    # The error pages: an API failure no page expects, and PostgreSQL away while the session is looked up.
    async def failing(self, method, path, **kwargs):  # noqa: ANN001, ANN003, ANN202
        raise api_client.ApiError(503, {"detail": "The database is unavailable; retry shortly."})

    with monkeypatch.context() as patch:
        patch.setattr(api_client.Api, "call", failing)
        problem_page = client.get("/ui/endpoints", follow_redirects=False)
    assert problem_page.status_code == 502 and "text/html" in problem_page.headers["content-type"]

    async def database_away(conn, token):  # noqa: ANN001, ANN202
        raise psycopg.OperationalError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(guard, "session_user", database_away)
        unavailable = client.get("/ui", follow_redirects=False)
    assert unavailable.status_code == 503 and "text/html" in unavailable.headers["content-type"]
    for path, answer in (("/ui/endpoints (502)", problem_page), ("/ui (503)", unavailable)):
        problems.extend(page_header_problems(path, answer))

    assert problems == []
    # The walk did reach the pages: signed in with real ids they render, with unknown ones they say so.
    seen = {(who, template): status for who, template, status, _ in asked}
    assert seen[("signed in", "/ui/endpoints/{endpoint_id:str}")] == 200
    assert seen[("signed in, unknown ids", "/ui/endpoints/{endpoint_id:str}")] == 404
    assert seen[("signed in", "/ui/{rest:path}")] == 404
    assert seen[("signed out", "/ui")] == 303 and seen[("signed out", "/ui/login")] == 200
    assert seen[("signed out", "/")] == 302 and seen[("signed out", DOCS_PATH)] == 200
    assert seen[("signed out", f"{DOCS_PATH}/{{path:str}}")] == 404
    pages = {template for who, template, status, kind in asked if kind.startswith("text/html")}
    assert len(pages) >= 15, pages


def test_api_answers_carry_nosniff_and_no_page_policy(visitor: TestClient, auth: dict[str, str]) -> None:
    answer = visitor.post("/v1/events", json={"type": "order.paid", "payload": {}}, headers=auth)
    assert answer.status_code == 202
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in answer.headers  # the ingest path pays for one header, not a policy
    refused = visitor.get("/v1/endpoints")
    assert refused.status_code == 401 and refused.headers["x-content-type-options"] == "nosniff"
    nowhere = visitor.get("/no/such/thing")
    assert nowhere.status_code == 404 and nowhere.headers["x-content-type-options"] == "nosniff"


@pytest.fixture
def app_at(conninfo: str) -> Iterator[Callable[[str | None], TestClient]]:
    """Start the app as served at a given RELAY_PUBLIC_URL (None: not set); stop it after the test."""
    with ExitStack() as running:
        def start(public_url: str | None) -> TestClient:
            os.environ.pop("DATABASE_URL", None)
            settings = dataclasses.replace(load_settings(), public_url=public_url,
                                           allowed_networks=parse_networks("127.0.0.0/8"))
            return running.enter_context(TestClient(create_app(settings, conninfo), raise_server_exceptions=False))

        yield start


def set_cookies(answer: httpx.Response) -> dict[str, dict[str, str | bool]]:
    """The cookies an answer sets, by name: their attributes in lower case (flags as True)."""
    found = {}
    for header in answer.headers.get_list("set-cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        for name, morsel in cookie.items():
            found[name] = {"value": morsel.value, **{key: value for key, value in morsel.items() if value}}
    return found


def sign_in_cookies(client: TestClient) -> tuple[dict[str, dict[str, str | bool]], dict[str, dict[str, str | bool]]]:
    """Register through the API, then sign in on the dashboard; return the cookies the form and the sign-in set."""
    email = f"cookies-{uuid.uuid4().hex[:8]}@example.com"
    registered = client.post("/v1/auth/register", json={"email": email, "password": PASSWORD, "tenant_name": "C"})
    assert registered.status_code == 201, registered.text
    form = client.get("/ui/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    form_cookies = set_cookies(form)
    # Sent by hand: the client itself would not send a Secure cookie back over plain http.
    client.cookies.clear()
    csrf_cookie = f"csrftoken={form_cookies['csrftoken']['value']}"
    signed_in = client.post("/ui/login", data={"_csrf_token": token, "email": email, "password": PASSWORD},
                            headers={"cookie": csrf_cookie}, follow_redirects=False)
    assert signed_in.status_code == 303, signed_in.text
    return form_cookies, set_cookies(signed_in)


def test_cookies_are_secure_when_relay_is_served_over_https(app_at: Callable[[str | None], TestClient]) -> None:
    form, signed_in = sign_in_cookies(app_at("https://relay.example.com"))
    assert form["csrftoken"]["secure"] is True and form["csrftoken"]["httponly"] is True
    assert str(form["csrftoken"]["samesite"]).lower() == "strict"
    session = signed_in["relay_session"]
    assert session["secure"] is True and session["httponly"] is True and str(session["samesite"]).lower() == "lax"
    assert session["path"] == "/ui"


def test_cookies_work_over_plain_http_without_a_public_https_url(app_at: Callable[[str | None], TestClient]) -> None:
    client = app_at(None)
    form, signed_in = sign_in_cookies(client)
    assert "secure" not in form["csrftoken"] and form["csrftoken"]["httponly"] is True
    session = signed_in["relay_session"]
    assert "secure" not in session and session["httponly"] is True
    # The browser sends it back over plain http: local development signs in as before.
    assert client.get("/ui", follow_redirects=False).status_code == 200
