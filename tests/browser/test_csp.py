"""Every dashboard page and the API docs work in Chromium under Relay's Content-Security-Policy, and stored
markup (an endpoint description like `<script>…`) is shown as text, never run.

A CSP violation means a page relies on something the policy forbids (an inline script or style, a
third-party origin): it is broken for every user, so any violation fails the test. The pages come
from the app's route table, so a page added later is visited too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from litestar.routes import HTTPRoute
from playwright.sync_api import Dialog, Page, expect

from relay.api.app import create_app
from relay.api.auth import DOCS_PATH
from relay.settings import load_settings
from tests.browser.conftest import Account, access_token, make_account, sign_in, wait_for_deliveries
from tests.receiver import Received, Receiver
from tests.support import wait_until

STACK_ENV = {"RELAY_CIRCUIT_FAILURE_THRESHOLD": "100000"}  # the hostile receiver's failures must not open a circuit
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
# GET routes under /ui that are not pages: the assets, and the JSON an operation page polls.
NOT_PAGES = {"/ui/static/{file_path:path}", "/ui/operations/{operation_id:str}/progress"}
# Filters a list page may reflect back into its form: each is given the hostile text too.
FILTERS = ["state", "status", "endpoint_id", "event_type", "type", "since", "until", "q", "limit", "cursor", "next"]
WATCH = """
document.addEventListener("securitypolicyviolation", (e) =>
  window.relayCspViolation(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} on ${e.documentURI}` +
                           ` (line ${e.lineNumber}: ${e.sample})`));
"""


@dataclass
class Watch:
    """What went wrong in a page while the test looked: CSP violations, script errors, dialogs."""

    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def clean(self) -> bool:
        return not (self.violations or self.errors or self.dialogs)


@pytest.fixture
def watch(page: Page) -> Watch:
    seen = Watch()
    page.expose_function("relayCspViolation", lambda report: seen.violations.append(report))
    page.add_init_script(WATCH)
    page.on("console", lambda message: seen.violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.on("pageerror", lambda error: seen.errors.append(str(error)))

    def dismiss(dialog: Dialog) -> None:
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    return seen


def dashboard_pages(conninfo: str, values: dict[str, str]) -> dict[str, str]:
    """Every dashboard page as {route template: path}, from the app's route table, parameters from `values`."""
    app = create_app(load_settings(), conninfo)  # not started: only its route table is read
    found = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or "GET" not in route.route_handler_map:
            continue
        if not route.path.startswith("/ui") or route.path in NOT_PAGES:
            continue

        def fill(match: re.Match[str], template: str = route.path) -> str:
            assert match.group(1) in values, f"{template}: give this test a value for {{{match.group(1)}}}"
            return quote(values[match.group(1)], safe="/")

        found[route.path] = re.sub(r"\{(\w+):\w+\}", fill, route.path)
    return found


async def hostile_answer(_: Received) -> tuple[int, dict[str, str], bytes]:
    return 500, {"x-note": "<b>not bold</b>"}, HOSTILE.encode()


@pytest.fixture
def hostile_receiver() -> Iterator[Receiver]:
    with Receiver(hostile_answer) as running:
        yield running


@pytest.fixture
def hostile_account(relay_stack: str) -> Account:
    """An account whose organisation's name is the hostile text (it is shown on every page)."""
    return make_account(relay_stack, "csp", tenant_name=HOSTILE)


@pytest.fixture
def hostile_data(relay_stack: str, hostile_account: Account, hostile_receiver: Receiver) -> dict[str, str]:
    """Store the hostile text in every field the dashboard shows; return the ids of what holds it."""
    token = access_token(relay_stack, hostile_account)
    with httpx.Client(base_url=relay_stack, headers={"authorization": f"Bearer {token}"}, timeout=30) as api:
        def created(path: str, body: dict[str, Any]) -> dict[str, Any]:
            answer = api.post(path, json=body)
            assert answer.status_code in (200, 201, 202), (path, answer.text)
            return dict(answer.json())

        url = hostile_receiver.url('/hook?q="><img/src=x/onerror=window.__pwned=3>')
        endpoint = created("/v1/endpoints", {"url": url, "description": HOSTILE, "headers": {"X-Note": HOSTILE}})
        created("/v1/api-keys", {"name": HOSTILE, "scopes": ["read"]})
        created("/v1/event-types", {"name": "order.paid", "description": HOSTILE})
        event = created("/v1/events", {"type": "order.paid", "payload": {"note": HOSTILE, HOSTILE: [HOSTILE]},
                                       "idempotency_key": HOSTILE})
        [delivery] = wait_for_deliveries(api, 1, status="dead")  # two failed attempts, each answered with it
        operation = created("/v1/dead-letter/replay", {"endpoint_id": endpoint["id"]})
        return {"endpoint_id": endpoint["id"], "event_id": event["id"], "delivery_id": delivery["id"],
                "operation_id": operation["id"], "rest": "no/such/page"}


def assert_inert(page: Page, watch: Watch, where: str) -> None:
    """The page ran none of the hostile text, made no element of it, and broke no policy."""
    assert page.evaluate("typeof window.__pwned") == "undefined", where
    scripts = page.evaluate("[...document.scripts].map((s) => s.getAttribute('src'))")
    assert all(src and src.startswith("/ui/static/") for src in scripts), (where, scripts)
    made = page.evaluate("document.querySelectorAll('img[src=x], img[onerror], [onerror], img[src^=\"x\"]').length")
    assert made == 0, where
    assert watch.clean(), (where, watch)


def test_every_page_works_under_the_policy_and_shows_stored_markup_as_text(
    page: Page, watch: Watch, conninfo: str, hostile_account: Account, hostile_data: dict[str, str], shoot
) -> None:
    # Signed out: the sign-in and sign-up pages, with a hostile `next`.
    for path in ("/ui/login", f"/ui/login?next={quote(HOSTILE)}", "/ui/signup"):
        page.goto(path)
        expect(page.locator("main form").first).to_be_visible()
        assert_inert(page, watch, path)

    sign_in(page, hostile_account)
    pages = dashboard_pages(conninfo, hostile_data)
    assert len(pages) >= 12, pages
    # Where the hostile text is shown as data, beyond the organisation's name in the header of every page.
    shown_in_main = {
        "/ui/endpoints": HOSTILE,
        "/ui/endpoints/{endpoint_id:str}": HOSTILE,
        "/ui/events/{event_id:str}": json.dumps(HOSTILE)[1:-1],  # inside the payload's JSON
        "/ui/deliveries/{delivery_id:str}": HOSTILE,  # the receiver's answer
        "/ui/api-keys": HOSTILE,
    }
    for template, path in pages.items():
        answer = page.goto(path)
        assert answer is not None and answer.status in (200, 404), (path, answer and answer.status)
        assert_inert(page, watch, path)
        if page.locator(".who .tenant").count():  # pages, not the fragments a live page fetches
            expect(page.locator(".who .tenant")).to_have_text(HOSTILE)
        if template in shown_in_main:
            assert shown_in_main[template] in page.locator("main").inner_text(), path
        if template in ("/ui/endpoints/{endpoint_id:str}", "/ui/deliveries/{delivery_id:str}"):
            shoot(page, "csp-" + template.split("/")[2])

    # The filters of the list pages, all given the hostile text: shown back in the form, never run.
    for path in ("/ui/endpoints", "/ui/events", "/ui/deliveries", "/ui/dead-letter", "/ui/alerts"):
        page.goto(f"{path}?{urlencode({name: HOSTILE for name in FILTERS})}")
        assert_inert(page, watch, f"{path} with hostile filters")


def test_the_theme_toggle_and_the_overview_refresh_work_under_the_policy(
    page: Page, watch: Watch, account: Account, api: httpx.Client, shoot
) -> None:
    sign_in(page, account)
    expect(page.locator("[data-figure=events-today]")).to_have_text("0")
    before = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.locator("[data-theme-toggle]").click()
    wait_until(lambda: page.evaluate("getComputedStyle(document.body).backgroundColor") != before, timeout=5,
               what="the other theme's background")
    assert page.evaluate("document.documentElement.dataset.theme") in ("dark", "light")
    shoot(page, "csp-overview")
    assert api.post("/v1/events", json={"type": "order.paid", "payload": {"n": 1}}).status_code == 202
    with page.expect_response(re.compile(r"/ui/overview/live$"), timeout=15_000):
        pass  # relay.js fetches the live part of the page by itself (connect-src 'self')
    expect(page.locator("[data-figure=events-today]")).to_have_text("1", timeout=15_000)
    assert watch.clean(), watch


def test_the_api_docs_render_their_operations_under_the_policy(page: Page, watch: Watch, relay_stack: str,
                                                               shoot: Callable[[Any, str], Path]) -> None:
    answer = page.goto(DOCS_PATH)
    assert answer is not None
    assert "script-src 'self';" in answer.headers["content-security-policy"]
    assert "style-src 'self';" in answer.headers["content-security-policy"]  # no inline style either
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible(timeout=15_000)
    assert operations.count() >= 30
    # Open an operation and try it: parameters, the request made from the page (connect-src 'self'), and the
    # highlighted answer render too (Swagger UI styles them through the DOM, which the policy allows, not
    # with inline style attributes); then the authorization dialog and the schemas.
    listing = operations.filter(has=page.locator("[data-path='/v1/events']")).filter(has_text="GET").first
    listing.locator(".opblock-summary").click()
    listing.get_by_role("button", name="Try it out").click()
    with page.expect_response(re.compile(r"/v1/events")) as tried:
        listing.get_by_role("button", name="Execute").click()
    assert tried.value.status == 401  # no key given: the API's refusal, shown in the page
    expect(listing.locator(".responses-table.live-responses-table")).to_contain_text("401")
    page.get_by_role("button", name="Authorize").first.click()
    expect(page.locator(".dialog-ux .modal-ux")).to_be_visible()
    page.locator(".dialog-ux .modal-ux .close-modal").click()
    schema = page.locator("section.models article.json-schema-2020-12").first
    schema.get_by_role("button", name="Expand all").click()
    expect(schema.locator(".json-schema-2020-12-property").first).to_be_visible()
    assert watch.clean(), watch
    shoot(page, "csp-docs")
