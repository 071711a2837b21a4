"""The audit log page in a real browser: what the user just did in the dashboard is there, by them, from their
address; stored markup shows as text; filters, a refused filter and paging."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import Account, sign_in

MARKUP = '<script>window.__pwned = 1</script><b id="injected">bold</b>'


def test_the_audit_log_shows_what_was_done_by_whom_from_where(page: Page, account: Account, api: httpx.Client,
                                                             shoot) -> None:
    me = api.get("/v1/auth/me").json()
    user_id = me["user"]["id"]
    created = api.post("/v1/endpoints", json={"url": "https://example.com/audited", "description": MARKUP})
    assert created.status_code == 201, created.text
    endpoint = created.json()

    # Two things done in the dashboard: reveal the secret, pause the endpoint.
    sign_in(page, account)
    page.goto(f"/ui/endpoints/{endpoint['id']}")
    page.get_by_role("button", name="Reveal").click()
    expect(page.locator("#endpoint-secret")).to_have_text(endpoint["secret"])
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Resume")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/ui/audit-log$"))
    rows = page.locator("tbody tr")
    for action in ("endpoint.paused", "endpoint.secret_revealed", "endpoint.created"):
        row = page.locator("tbody tr", has=page.locator("code.action", has_text=re.compile(rf"^{action}$")))
        expect(row).to_have_count(1)
        expect(row).to_contain_text(user_id)
        expect(row).to_contain_text("127.0.0.1")  # the browser's address, though the dashboard called the API
        expect(row.get_by_role("link", name=endpoint["id"])).to_have_attribute(
            "href", f"/ui/endpoints/{endpoint['id']}")
    # Newest first.
    actions = rows.locator("code.action").all_inner_texts()
    assert actions.index("endpoint.paused") < actions.index("endpoint.secret_revealed") < actions.index(
        "endpoint.created"), actions

    # The stored description is shown as text: neither run nor rendered as markup; no secret on the page.
    created_row = page.locator("tbody tr", has=page.locator("code.action", has_text=re.compile(r"^endpoint.created$")))
    expect(created_row).to_contain_text("<script>window.__pwned = 1</script>")
    expect(page.locator("#injected")).to_have_count(0)
    assert page.evaluate("window.__pwned") is None
    assert endpoint["secret"] not in page.content()
    shoot(page, "audit-log")

    # Filter by an action: only its row stays, and the filter stays in the form.
    page.get_by_label("Action").fill("endpoint.secret_revealed")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=endpoint\.secret_revealed"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("endpoint.secret_revealed")
    expect(page.get_by_label("Action")).to_have_value("endpoint.secret_revealed")
    # A prefix matches every action under it; another target type matches none of these.
    page.get_by_label("Action").fill("endpoint.")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(3)
    page.get_by_label("Target type").select_option("api_key")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No entry matches these filters.")).to_be_visible()
    page.get_by_role("link", name="Clear filters").click()
    expect(page).to_have_url(re.compile(r"/ui/audit-log$"))

    # A filter the API refuses is explained on the page, naming the field.
    page.get_by_label("Action").fill("Not an action!")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("alert")).to_contain_text("Action")

    # Paging, one entry a page: Older → walks back from the newest.
    page.goto("/ui/audit-log?action=endpoint.&limit=1")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("endpoint.paused")
    page.get_by_role("link", name="Older →").click()
    expect(rows.first).to_contain_text("endpoint.secret_revealed")
    page.get_by_role("link", name="Older →").click()
    expect(rows.first).to_contain_text("endpoint.created")
    expect(page.get_by_role("link", name="Older →")).to_have_count(0)
