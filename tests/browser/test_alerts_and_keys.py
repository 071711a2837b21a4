"""The alerts and API keys pages in a real browser: a real anomaly from the scan, a key shown once, then revoked."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from relay.ai.anomalies import scan
from relay.db.pool import open_pool
from tests.browser.conftest import Account, answer_next_dialog, csrf_token, make_account, sign_in
from tests.receiver import Received, Receiver
from tests.support import wait_until

# Failing attempts in a row would open the circuit and hold the deliveries instead of attempting them.
STACK_ENV = {"RELAY_CIRCUIT_FAILURE_THRESHOLD": "100000"}


def run_scan(conninfo: str, window_seconds: float) -> dict[str, int]:
    """Run the periodic job's anomaly scan once, now, on what the API and worker recorded."""

    async def go() -> dict[str, int]:
        pool = await open_pool(conninfo, max_size=2)
        try:
            return await scan(pool, window_seconds=window_seconds)
        finally:
            await pool.close()

    with ThreadPoolExecutor(1) as thread:  # Playwright's sync API already runs an event loop in this one
        return thread.submit(asyncio.run, go()).result()


def test_a_new_key_is_shown_once_works_and_can_be_revoked(page: Page, account: Account, relay_stack: str,
                                                         api: httpx.Client, shoot, tmp_path: Path) -> None:
    sign_in(page, account)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="API keys", level=1)).to_be_visible()
    expect(page.get_by_text("No API keys yet.")).to_be_visible()

    page.get_by_label("Name").fill("billing-service")
    page.get_by_label("Rate limit (events per second)").fill("50")
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/ui/api-keys")) as created:
        page.get_by_role("button", name="Create key").click()
    assert created.value.headers["cache-control"] == "no-store"
    key = page.locator("#new-key").inner_text()
    assert re.fullmatch(r"rly_[\w-]{20,}", key), key
    expect(page.get_by_text("you will not see it again")).to_be_visible()
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    assert key not in page.url and all(key not in c["value"] for c in page.context.cookies())
    shoot(page, "api-keys")

    # The key works against the API.
    assert httpx.get(f"{relay_stack}/v1/endpoints", headers={"authorization": f"Bearer {key}"}).status_code == 200

    # Listed by its prefix only: the key itself is nowhere on the list.
    page.goto("/ui/api-keys")
    row = page.locator("tbody tr", has_text="billing-service")
    expect(row).to_contain_text(key[:12] + "…")
    expect(row).to_contain_text("50/s")
    expect(row).to_contain_text("active")
    assert key not in page.content()
    expect(page.locator("#new-key")).to_have_count(0)

    messages = answer_next_dialog(page, accept=True)
    row.get_by_role("button", name="Revoke billing-service").click()
    expect(page.get_by_role("status")).to_contain_text("Revoked")
    expect(row).to_contain_text("revoked")
    expect(row.get_by_role("button", name="Revoke billing-service")).to_have_count(0)
    assert messages and "billing-service" in messages[0]
    assert httpx.get(f"{relay_stack}/v1/endpoints", headers={"authorization": f"Bearer {key}"}).status_code == 401

    # Dark theme, with another key just created.
    page.emulate_media(color_scheme="dark")
    page.reload()
    page.get_by_label("Name").fill("ci-runner")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key")).to_be_visible()
    shoot(page, "api-keys")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing wider than the screen
    page.goto("/ui/api-keys")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate("[...document.querySelectorAll('.table-wrap')].every(w => w.scrollWidth <= w.clientWidth)")
    page.screenshot(path=str(tmp_path / "api-keys-narrow.png"), full_page=True)


def test_a_send_events_only_key_made_on_the_page_sends_events_and_nothing_else(
    page: Page, account: Account, relay_stack: str, api: httpx.Client
) -> None:
    sign_in(page, account)
    page.goto("/ui/api-keys")
    expect(page.get_by_label("Full access")).to_be_checked()  # what keys made without a choice get
    page.get_by_label("Name").fill("checkout-producer")
    page.get_by_label("Send events only").check()
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").inner_text()
    bearer = {"authorization": f"Bearer {key}"}
    sent = httpx.post(f"{relay_stack}/v1/events", json={"type": "order.paid", "payload": {}}, headers=bearer)
    assert sent.status_code == 202, sent.text
    refused = httpx.get(f"{relay_stack}/v1/endpoints", headers=bearer)
    assert refused.status_code == 403 and refused.json()["required_scope"] == "read"
    page.goto("/ui/api-keys")
    row = page.locator("tbody tr", has_text="checkout-producer")
    expect(row).to_contain_text("events:write")
    expect(row).not_to_contain_text("admin")
    assert {k["name"]: k["scopes"] for k in api.get("/v1/api-keys").json()["data"]} == {
        "checkout-producer": ["events:write"]
    }


def test_a_refused_key_shows_the_apis_reason_and_keeps_the_input(page: Page, account: Account,
                                                                 api: httpx.Client) -> None:
    sign_in(page, account)
    page.goto("/ui/api-keys")
    page.get_by_label("Name").fill("too-fast")
    page.get_by_label("Rate limit (events per second)").fill("5000000")
    page.get_by_role("button", name="Create key").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Rate limit")
    expect(alert).to_contain_text("1000000")
    expect(page.get_by_label("Name")).to_have_value("too-fast")
    expect(page.get_by_label("Rate limit (events per second)")).to_have_value("5000000")
    expect(page.get_by_label("Rate limit (events per second)")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#new-key")).to_have_count(0)
    assert api.get("/v1/api-keys").json()["data"] == []


def test_another_tenants_key_cannot_be_revoked(page: Page, account: Account, api: httpx.Client,
                                               relay_stack: str) -> None:
    theirs = api.post("/v1/api-keys", json={"name": "production"}).json()
    sign_in(page, make_account(relay_stack, "Initech"))
    page.goto("/ui/api-keys")
    expect(page.get_by_text("No API keys yet.")).to_be_visible()  # none of theirs listed
    answer = page.request.post(f"/ui/api-keys/{theirs['id']}/revoke", form={"_csrf_token": csrf_token(page)},
                               max_redirects=0)
    assert answer.status == 404 and "Not found" in answer.text()
    assert httpx.get(f"{relay_stack}/v1/endpoints",
                     headers={"authorization": f"Bearer {theirs['key']}"}).status_code == 200


def test_alerts_empty_state_and_status_filter(page: Page, account: Account) -> None:
    sign_in(page, account)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    expect(page.get_by_role("heading", name="Alerts", level=1)).to_be_visible()
    expect(page.get_by_label("Status")).to_have_value("open")
    expect(page.get_by_text("No open alerts")).to_be_visible()
    page.get_by_label("Status").select_option("resolved")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/ui/alerts\?status=resolved$"))
    expect(page.get_by_label("Status")).to_have_value("resolved")
    expect(page.get_by_text("No resolved alerts yet.")).to_be_visible()
    answer = page.goto("/ui/alerts?cursor=" + "x" * 100)  # a cursor the API refuses: its reason, not a 500
    assert answer is not None and answer.status == 400
    expect(page.get_by_role("alert")).to_contain_text("cursor")


def test_an_anomaly_found_by_the_scan_is_shown_then_resolved(page: Page, account: Account, api: httpx.Client,
                                                             conninfo: str, relay_stack: str, shoot) -> None:
    state = {"up": False}

    async def flaky(_: Received) -> tuple[int, dict[str, str], bytes]:
        return (200, {}, b"ok") if state["up"] else (500, {}, b"down")

    with Receiver(flaky) as receiver:
        endpoint = api.post("/v1/endpoints", json={"url": receiver.url("/hook")}).json()
        for n in range(2):
            assert api.post("/v1/events", json={"type": "order.paid", "payload": {"n": n}}).status_code == 202
        wait_until(lambda: len(receiver.received()) >= 6, timeout=30, what="six failed attempts")
        # Received is not yet recorded (the worker records outcomes in batches, after the exchange).
        wait_until(lambda: api.get("/v1/stats").json()["deliveries_today"]["attempts"] >= 6, timeout=30,
                   what="six attempts recorded")
        run_scan(conninfo, window_seconds=300)

        sign_in(page, account)
        page.goto("/ui/alerts")
        card = page.locator("article.alert")
        expect(card).to_have_count(1)
        expect(card.get_by_role("heading", level=2)).to_have_text(
            "Failure rate 100% over the last 5 min against a baseline of 0%.")
        expect(card.locator(".badge.severity-high")).to_have_text("severity: high")
        expect(card.locator(".badge.kind")).to_have_text("failure rate")
        expect(card.locator(".badge.state-open")).to_have_text("open")
        expect(card.locator("dl.facts").first).to_contain_text("Recent failure rate100.0 %")
        expect(card.locator("dl.facts").first).to_contain_text("Recent attempts6")
        link = card.get_by_role("link", name=endpoint["url"])
        expect(link).to_have_attribute("href", f"/ui/endpoints/{endpoint['id']}")
        shoot(page, "alerts")
        page.emulate_media(color_scheme="dark")
        page.reload()
        shoot(page, "alerts")
        page.emulate_media(color_scheme="light")

        # Another tenant sees none of it.
        stranger = page.context.browser.new_context(base_url=relay_stack)  # type: ignore[union-attr]
        other = stranger.new_page()
        sign_in(other, make_account(relay_stack, "Initech"))
        other.goto("/ui/alerts?status=all")
        expect(other.get_by_text("No alerts yet.")).to_be_visible()
        stranger.close()

        # The endpoint recovers; the next scan resolves the alert.
        state["up"] = True
        assert api.post("/v1/events", json={"type": "order.paid", "payload": {"n": 9}}).status_code == 202
        wait_until(lambda: len(receiver.received()) >= 7, timeout=30, what="a successful attempt")

        def resolved() -> bool:
            run_scan(conninfo, window_seconds=1.5)
            alerts = api.get("/v1/ai/alerts", params={"status": "resolved"}).json()["data"]
            return any(a["endpoint_id"] == endpoint["id"] for a in alerts)

        wait_until(resolved, timeout=20, interval=0.5, what="the alert to resolve")

    page.reload()
    expect(page.get_by_text("No open alerts")).to_be_visible()
    page.get_by_label("Status").select_option("resolved")
    page.get_by_role("button", name="Show").click()
    expect(card).to_have_count(1)
    expect(card.locator(".badge.state-resolved")).to_have_text("resolved")
    expect(card.locator("dl.facts").nth(1)).not_to_contain_text("Resolved—")
