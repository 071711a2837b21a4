"""The deliveries pages in a real browser: the filterable log, a dead delivery's attempts, and its replay."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    Account,
    Switch,
    csrf_token,
    deliveries,
    make_account,
    reload_until_visible,
    send,
    sign_in,
    wait_for_deliveries,
)
from tests.receiver import Received, Receiver


async def refuses(_: Received) -> tuple[int, dict[str, str], bytes]:
    return 400, {}, b"unknown event type"  # a permanent failure: dead at the first attempt


def shown_ids(page: Page) -> list[str]:
    rows = page.locator("tbody tr")
    return [str(rows.nth(i).get_attribute("data-delivery")) for i in range(rows.count())]


def test_a_dead_delivery_shows_its_attempts_and_a_replay_succeeds_once_the_receiver_is_fixed(
    page: Page, account: Account, api: httpx.Client, failing_receiver: Receiver, switch: Switch, shoot
) -> None:
    api.post("/v1/endpoints", json={"url": failing_receiver.url("/hook")})
    event_id = send(api, "invoice.paid", invoice="in_7")
    sign_in(page, account)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Deliveries").click()
    expect(page.get_by_role("heading", name="Deliveries", level=1)).to_be_visible()
    row = page.locator("tbody tr")
    expect(row).to_have_count(1)
    reload_until_visible(page, row.locator(".badge.state-dead"), "the delivery to die (3 attempts, 1 s apart)")
    expect(row).to_contain_text("HTTP 500")
    [dead] = deliveries(api, event_id=event_id)

    row.get_by_role("link", name=dead["id"]).click()
    expect(page).to_have_url(re.compile(f"/ui/deliveries/{dead['id']}$"))
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("dead")
    expect(facts).to_contain_text("retries exhausted")
    expect(facts.get_by_role("link", name=event_id)).to_have_attribute("href", f"/ui/events/{event_id}")
    expect(facts.get_by_role("link", name=failing_receiver.url("/hook"))).to_be_visible()
    attempts = page.locator("ul.timeline > li")
    expect(attempts).to_have_count(3)
    expect(page.locator("ul.timeline > li.fail")).to_have_count(3)
    for n in range(3):
        expect(attempts.nth(n)).to_contain_text(f"Attempt {n + 1}")
        expect(attempts.nth(n)).to_contain_text("HTTP 500")
        expect(attempts.nth(n).locator("code.error-class")).to_have_text("server_error")
        expect(attempts.nth(n).locator("pre.excerpt")).to_have_text("database unavailable, try later")
    expect(attempts.nth(0)).to_contain_text("Next attempt scheduled for")
    expect(attempts.nth(2)).to_contain_text("No more attempts: the delivery is dead.")
    shoot(page, "delivery")
    page.emulate_media(color_scheme="dark")
    page.reload()
    shoot(page, "delivery")
    page.emulate_media(color_scheme="light")

    # The receiver is fixed; replay: a new delivery, which succeeds. The dead one stays as it was.
    switch.up = True
    page.get_by_role("button", name="Replay").click()
    expect(page.get_by_role("status")).to_contain_text(f"Replayed {dead['id']} as a new delivery")
    expect(page).not_to_have_url(re.compile(f"/ui/deliveries/{dead['id']}$"))
    new_id = page.url.rsplit("/", 1)[1]
    assert new_id.startswith("dlv_")
    expect(page.locator("dl.facts").get_by_role("link", name=dead["id"])).to_be_visible()  # "Replay of"
    reload_until_visible(page, page.locator("ul.timeline > li.ok"), "the replay to succeed")
    expect(page.locator("dl.facts .badge").first).to_have_text("succeeded")
    expect(page.locator("ul.timeline > li.ok")).to_contain_text("HTTP 200")
    original = api.get(f"/v1/deliveries/{dead['id']}").json()
    assert original["status"] == "dead" and original["replayed_at"] is not None and original["attempts"] == 3
    assert api.get(f"/v1/deliveries/{new_id}").json()["replay_of"] == dead["id"]


def test_the_log_filters_by_state_endpoint_type_and_event_and_the_pager_walks_it(
    page: Page, account: Account, api: httpx.Client, receiver: Receiver, shoot
) -> None:
    with Receiver(refuses) as refusing:
        good = api.post("/v1/endpoints", json={"url": receiver.url("/hook")}).json()
        bad = api.post("/v1/endpoints", json={"url": refusing.url("/refuse")}).json()
        paid = [send(api, "order.paid", n=n) for n in range(2)]
        created = send(api, "user.created", n=3)
        wait_for_deliveries(api, 3, status="succeeded")
        wait_for_deliveries(api, 3, status="dead")
    everything = [d["id"] for d in deliveries(api)]
    assert len(everything) == 6

    sign_in(page, account)
    page.goto("/ui/deliveries")
    assert shown_ids(page) == everything
    shoot(page, "deliveries")

    page.get_by_label("State").select_option("dead")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(3)
    expect(page.locator("tbody .badge.state-dead")).to_have_count(3)
    expect(page.get_by_label("State")).to_have_value("dead")  # kept
    assert set(shown_ids(page)) == {d["id"] for d in deliveries(api, endpoint_id=bad["id"])}

    page.get_by_label("State").select_option("")
    page.get_by_label("Endpoint").select_option(label=receiver.url("/hook"))
    page.get_by_label("Event type").fill("order.paid")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(2)
    assert set(shown_ids(page)) == {d["id"] for d in deliveries(api, endpoint_id=good["id"], event_type="order.paid")}
    expect(page.get_by_label("Endpoint")).to_have_value(good["id"])

    page.goto(f"/ui/deliveries?event_id={created}")
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.get_by_label("Event id")).to_have_value(created)

    # Four per page: two pages, every delivery once, newest first.
    page.goto("/ui/deliveries?limit=4")
    first = shown_ids(page)
    assert first == everything[:4]
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Older →").click()
    expect(page.locator("tbody tr")).to_have_count(2)
    assert shown_ids(page) == everything[4:]
    expect(page.get_by_role("navigation", name="Pages")).to_have_count(0)
    assert paid  # sent first: the oldest rows

    # A filter the API refuses: its reason on the page, not a server error.
    response = page.goto("/ui/deliveries?state=lost")
    assert response is not None and response.status == 400
    expect(page.get_by_role("alert")).to_have_text("State: Invalid enum value 'lost'")

    page.emulate_media(color_scheme="dark")
    page.goto("/ui/deliveries")
    shoot(page, "deliveries")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.goto(f"/ui/deliveries/{everything[0]}")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_another_tenants_delivery_is_not_found_and_cannot_be_replayed(
    page: Page, account: Account, api: httpx.Client, relay_stack: str
) -> None:
    with Receiver(refuses) as refusing:
        api.post("/v1/endpoints", json={"url": refusing.url("/refuse")})
        send(api, "order.paid", n=1)
        [dead] = wait_for_deliveries(api, 1, status="dead")
    stranger = make_account(relay_stack, "Initech")
    sign_in(page, stranger)
    response = page.goto(f"/ui/deliveries/{dead['id']}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    page.goto("/ui/deliveries")
    expect(page.get_by_text("No deliveries yet")).to_be_visible()

    forged = page.request.post(f"/ui/deliveries/{dead['id']}/replay", form={"_csrf_token": csrf_token(page)},
                               max_redirects=0)
    assert forged.status == 404
    assert api.get(f"/v1/deliveries/{dead['id']}").json()["replayed_at"] is None
    assert len(deliveries(api)) == 1
