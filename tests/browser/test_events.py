"""The events pages in a real browser: events sent through the API, delivered to a real receiver, read back."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import httpx
from playwright.sync_api import Dialog, Page, expect

from tests.browser.conftest import Account, make_account, reload_until_visible, send, sign_in
from tests.receiver import Received, Receiver
from tests.support import wait_until


def utc_field(moment: datetime) -> str:
    """A time as a datetime-local field holds it (the pages read their time fields as UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def fits_the_screen(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_a_delivered_event_shows_in_the_list_and_in_detail_with_payload_deliveries_and_attempts(
    page: Page, account: Account, api: httpx.Client, receiver: Receiver, shoot
) -> None:
    endpoint = api.post("/v1/endpoints", json={"url": receiver.url("/hook")}).json()
    send(api, "customer.created", customer="cus_9")
    send(api, "order.shipped", order="ord_4")
    event_id = send(api, "invoice.paid", invoice="in_1", amount=1250, lines=[{"sku": "A-1", "qty": 2}])

    def arrived() -> int:
        return sum(1 for r in receiver.received("/hook") if r.headers["webhook-id"] == event_id)

    sign_in(page, account)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Events").click()
    expect(page.get_by_role("heading", name="Events", level=1)).to_be_visible()
    row = page.locator(f"tr[data-event='{event_id}']")
    expect(row).to_contain_text("invoice.paid")
    reload_until_visible(page, row.get_by_text("1 succeeded"), "the event's delivery to succeed")
    shoot(page, "events")

    row.get_by_role("link", name=event_id).click()
    expect(page).to_have_url(re.compile(f"/ui/events/{event_id}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Event {event_id}")
    # Pretty-printed: one key per line, indented.
    expect(page.locator("#payload")).to_contain_text('"amount": 1250')
    assert '\n  "invoice": "in_1",\n' in page.locator("#payload").inner_text()
    delivery = page.locator("article.delivery-block")
    expect(delivery).to_have_count(1)
    expect(delivery.get_by_role("heading", level=3)).to_have_text(receiver.url("/hook"))
    expect(delivery.locator(".badge.state-succeeded").first).to_have_text("succeeded")
    attempt = delivery.locator("table.attempts tbody tr")
    expect(attempt).to_have_count(1)
    expect(attempt).to_contain_text("HTTP 200")
    expect(attempt.locator("code.excerpt")).to_have_text("ok")  # the receiver's response body
    assert arrived() == 1
    shoot(page, "event")

    # Replay the whole event: a second delivery to the same endpoint, which the receiver gets.
    page.get_by_role("button", name="Replay event").click()
    expect(page.get_by_role("status")).to_contain_text("Replayed the event: 1 new delivery")
    expect(page.locator("article.delivery-block")).to_have_count(2)
    wait_until(lambda: arrived() == 2, timeout=20, what="the replayed event to arrive")
    deliveries = api.get("/v1/deliveries", params={"event_id": event_id}).json()["data"]
    assert {d["endpoint_id"] for d in deliveries} == {endpoint["id"]} and len(deliveries) == 2

    page.emulate_media(color_scheme="dark")
    page.reload()
    shoot(page, "event")
    page.goto("/ui/events")
    shoot(page, "events")
    page.set_viewport_size({"width": 390, "height": 844})
    assert fits_the_screen(page)
    page.goto(f"/ui/events/{event_id}")
    assert fits_the_screen(page)


def test_filters_by_type_and_time_narrow_the_list_and_the_pager_walks_it(
    page: Page, account: Account, api: httpx.Client
) -> None:
    paid = [send(api, "order.paid", n=n) for n in range(3)]
    created = [send(api, "user.created", n=n) for n in range(2)]
    sign_in(page, account)

    # Two per page: three pages, newest first, every event once, the filters kept in the pager's links.
    page.goto("/ui/events?limit=2")
    seen: list[str] = []
    for expected in (2, 2, 1):
        rows = page.locator("tbody tr")
        expect(rows).to_have_count(expected)
        seen += [str(rows.nth(i).get_attribute("data-event")) for i in range(expected)]
        older = page.get_by_role("navigation", name="Pages").get_by_role("link", name="Older →")
        if expected == 2:
            older.click()
        else:
            expect(older).to_have_count(0)
    assert seen == list(reversed(paid + created))

    page.goto("/ui/events")
    page.get_by_label("Type").fill("user.created")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(2)
    assert [page.locator("tbody tr").nth(i).get_attribute("data-event") for i in range(2)] == created[::-1]
    expect(page.get_by_label("Type")).to_have_value("user.created")  # the filter stays filled in

    now = datetime.now(UTC)
    page.get_by_label("Created from (UTC)").fill(utc_field(now - timedelta(hours=1)))
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(2)
    page.get_by_label("Created from (UTC)").fill(utc_field(now + timedelta(hours=1)))
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(0)
    expect(page.get_by_text("No event matches these filters.")).to_be_visible()
    page.get_by_role("link", name="Clear filters").click()
    page.get_by_label("Created before (UTC)").fill(utc_field(now - timedelta(hours=1)))
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No event matches these filters.")).to_be_visible()

    # A time the API cannot read: its reason, on the page, naming the filter; never a server error.
    response = page.goto("/ui/events?since=yesterday")
    assert response is not None and response.status == 400
    expect(page.get_by_role("alert")).to_have_text("Created from: Invalid RFC3339 encoded datetime")


def test_the_id_search_opens_an_event_or_a_delivery_or_says_it_is_not_there(
    page: Page, account: Account, api: httpx.Client, receiver: Receiver
) -> None:
    api.post("/v1/endpoints", json={"url": receiver.url("/hook")})
    event_id = send(api, "order.paid", n=1)
    delivery_id = api.get("/v1/deliveries", params={"event_id": event_id}).json()["data"][0]["id"]
    sign_in(page, account)
    page.goto("/ui/events")
    search = page.get_by_role("search")
    search.get_by_label("Event or delivery id").fill(event_id)
    search.get_by_role("button", name="Open").click()
    expect(page).to_have_url(re.compile(f"/ui/events/{event_id}$"))

    page.goto("/ui/events")
    page.get_by_label("Event or delivery id").fill(delivery_id)
    page.get_by_role("button", name="Open").click()
    expect(page).to_have_url(re.compile(f"/ui/deliveries/{delivery_id}$"))

    page.goto("/ui/events")
    page.get_by_label("Event or delivery id").fill("evt_00000000000000000000000000000000")
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_role("alert")).to_have_text("No event 'evt_00000000000000000000000000000000'.")
    expect(page.get_by_label("Event or delivery id")).to_have_value("evt_00000000000000000000000000000000")
    page.get_by_label("Event or delivery id").fill("order.paid")
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter an event id (evt_…) or a delivery id (dlv_…)")


async def answers_with_markup(_: Received) -> tuple[int, dict[str, str], bytes]:
    return 200, {"content-type": "text/html"}, b"<script>alert('from the receiver')</script><b>thanks</b>"


def test_markup_in_a_payload_or_a_response_is_shown_as_text_and_never_runs(
    page: Page, account: Account, api: httpx.Client
) -> None:
    dialogs: list[str] = []

    def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)
    with Receiver(answers_with_markup) as receiver:
        api.post("/v1/endpoints", json={"url": receiver.url("/hook")})
        payload = {"note": "<script>alert(1)</script>", "img": "<img src=x onerror=alert(2)>", "quote": "\"'</pre>"}
        event_id = send(api, "comment.created", **payload)
        sign_in(page, account)
        page.goto(f"/ui/events/{event_id}")
        reload_until_visible(page, page.locator("table.attempts tbody tr"), "the delivery's attempt")
    shown = page.locator("#payload").inner_text()
    assert json.loads(shown) == payload  # exactly the payload, as text
    expect(page.locator("table.attempts")).to_contain_text("<script>alert('from the receiver')</script><b>thanks</b>")
    assert page.locator("main script, main img, main b").count() == 0
    page.goto(f"/ui/deliveries/{api.get('/v1/deliveries', params={'event_id': event_id}).json()['data'][0]['id']}")
    expect(page.locator("ul.timeline pre.excerpt")).to_contain_text("<script>alert('from the receiver')</script>")
    assert page.locator("main script, main img, main b").count() == 0
    assert dialogs == []


def test_another_tenants_events_are_not_found_and_cannot_be_replayed(
    page: Page, account: Account, api: httpx.Client, receiver: Receiver, relay_stack: str
) -> None:
    api.post("/v1/endpoints", json={"url": receiver.url("/hook")})
    event_id = send(api, "order.paid", secret="theirs")
    wait_until(lambda: len(receiver.received("/hook")) == 1, timeout=20, what="the event to arrive")
    stranger = make_account(relay_stack, "Initech")
    sign_in(page, stranger)

    response = page.goto(f"/ui/events/{event_id}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("theirs")

    page.goto("/ui/events")
    expect(page.get_by_text("No events yet.")).to_be_visible()
    page.get_by_label("Event or delivery id").fill(event_id)
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_role("alert")).to_have_text(f"No event '{event_id}'.")

    token = page.locator("input[name=_csrf_token]").first.input_value()
    forged = page.request.post(f"/ui/events/{event_id}/replay", form={"_csrf_token": token}, max_redirects=0)
    assert forged.status == 404
    assert len(api.get("/v1/deliveries", params={"event_id": event_id}).json()["data"]) == 1  # nothing replayed
