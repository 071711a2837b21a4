"""The dead letter page in a real browser: deliveries die at a failing receiver, then are replayed or discarded."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    Account,
    Switch,
    answer_next_dialog,
    csrf_token,
    make_account,
    send,
    sign_in,
    wait_for_deliveries,
)
from tests.receiver import Receiver
from tests.support import wait_until

# Many deliveries fail in a row here; the circuit breaker would hold them for a minute instead of letting them die.
STACK_ENV = {"RELAY_CIRCUIT_FAILURE_THRESHOLD": "100000"}


def dead_letter(api: httpx.Client) -> list[dict[str, Any]]:
    answer = api.get("/v1/dead-letter", params={"limit": 250})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


def test_replay_one_and_discard_one_from_the_page(page: Page, account: Account, api: httpx.Client,
                                                   failing_receiver: Receiver, switch: Switch, shoot,
                                                   tmp_path: Path) -> None:
    endpoint = api.post("/v1/endpoints", json={"url": failing_receiver.url("/hook")}).json()
    events = [send(api, n=n) for n in range(3)]
    dead = {row["event_id"]: row for row in wait_for_deliveries(api, 3, status="dead")}
    replayed, discarded, kept = (dead[event]["id"] for event in events)

    sign_in(page, account)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dead letter").click()
    expect(page.get_by_role("heading", name="Dead letter", level=1)).to_be_visible()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(3)
    first = page.locator(f"tr[data-delivery='{replayed}']")
    expect(first).to_contain_text("retries exhausted")
    expect(first).to_contain_text("HTTP 500")
    expect(first).to_contain_text("order.paid")
    expect(first.get_by_role("link", name=endpoint["url"])).to_have_attribute("href", f"/ui/endpoints/{endpoint['id']}")
    shoot(page, "dead-letter")
    page.emulate_media(color_scheme="dark")
    page.reload()
    shoot(page, "dead-letter")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing wider than the screen
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate("[...document.querySelectorAll('.table-wrap')].every(w => w.scrollWidth <= w.clientWidth)")
    page.screenshot(path=str(tmp_path / "dead-letter-narrow.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 860})
    page.emulate_media(color_scheme="light")
    page.reload()

    # The receiver is fixed; one delivery is replayed from the page and arrives.
    switch.up = True
    first.get_by_role("button", name="Replay").click()
    expect(page.get_by_role("status")).to_contain_text(f"Replayed {replayed}")
    expect(page.locator(f"tr[data-delivery='{replayed}']")).to_have_count(0)
    expect(rows).to_have_count(2)
    wait_until(lambda: events[0] in switch.accepted, timeout=20, what="the replayed delivery to arrive")
    assert all(row["id"] != replayed for row in dead_letter(api))

    # Discarding asks first; saying no changes nothing.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator(f"tr[data-delivery='{discarded}']").get_by_role("button", name="Discard").click()
    expect(rows).to_have_count(2)
    assert discarded in {row["id"] for row in dead_letter(api)}
    messages = answer_next_dialog(page, accept=True)
    page.locator(f"tr[data-delivery='{discarded}']").get_by_role("button", name="Discard").click()
    expect(page.get_by_role("status")).to_contain_text(f"Discarded {discarded}")
    expect(page.locator(f"tr[data-delivery='{discarded}']")).to_have_count(0)
    expect(page.locator(f"tr[data-delivery='{kept}']")).to_have_count(1)
    assert messages and discarded in messages[0]
    assert {row["id"] for row in dead_letter(api)} == {kept}
    assert api.get(f"/v1/deliveries/{discarded}").json()["status"] == "dead"  # still in the log
    assert events[1] not in switch.accepted  # discarded, never sent again


def test_bulk_replay_by_filter_shows_its_progress_until_everything_is_delivered(
    page: Page, account: Account, api: httpx.Client, failing_receiver: Receiver, switch: Switch, shoot
) -> None:
    api.post("/v1/endpoints", json={"url": failing_receiver.url("/hook")}).raise_for_status()
    paid = {send(api, n=n) for n in range(30)}
    refunded = {send(api, "order.refunded", n=n) for n in range(3)}
    wait_for_deliveries(api, 33, status="dead")
    switch.up = True

    sign_in(page, account)
    page.goto("/ui/dead-letter?limit=20")
    expect(page.locator("tbody tr")).to_have_count(20)
    page.get_by_label("Event type").fill("order.paid")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"event_type=order\.paid"))
    expect(page.get_by_label("Event type")).to_have_value("order.paid")  # the filter stays filled in
    expect(page.locator("tbody tr")).to_have_count(30)
    expect(page.locator("tbody")).not_to_contain_text("order.refunded")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Replay all matching").click()
    expect(page).to_have_url(re.compile(r"/ui/operations/op_\w+$"))
    expect(page.get_by_role("heading", name="Bulk replay")).to_be_visible()
    page.evaluate("window.stillTheSamePage = true")
    bar = page.locator("[data-operation] progress")
    expect(page.locator("[data-operation-text]")).to_have_text("Finished: 30 of 30 replayed.", timeout=20_000)
    expect(bar).to_have_js_property("max", 30)
    expect(bar).to_have_js_property("value", 30)
    expect(page.locator("[data-operation]")).to_have_attribute("data-status", "succeeded")
    expect(page.locator("[data-operation-status]")).to_have_text("succeeded")
    assert page.evaluate("window.stillTheSamePage") is True  # followed live, without a reload
    operation_id = page.url.rsplit("/", 1)[1]
    progress = page.request.get(f"/ui/operations/{operation_id}/progress").json()
    assert progress == {"total": 30, "done": 30, "status": "succeeded", "finished": True,
                        "text": "Finished: 30 of 30 replayed."}
    shoot(page, "operation")
    page.emulate_media(color_scheme="dark")
    page.reload()
    expect(page.locator("[data-operation-text]")).to_have_text("Finished: 30 of 30 replayed.")
    shoot(page, "operation")
    page.emulate_media(color_scheme="light")

    wait_until(lambda: paid <= set(switch.accepted), timeout=30, what="every replayed delivery to arrive")
    assert not refunded & set(switch.accepted)
    assert {row["event_id"] for row in dead_letter(api)} == refunded  # outside the filter: untouched

    page.get_by_role("link", name="Back to the dead letter").click()
    expect(page).to_have_url(re.compile(r"/ui/dead-letter\?event_type=order\.paid$"))
    expect(page.get_by_text("No dead delivery matches these filters.")).to_be_visible()


def test_paging_keeps_the_filters(page: Page, account: Account, api: httpx.Client,
                                  failing_receiver: Receiver) -> None:
    api.post("/v1/endpoints", json={"url": failing_receiver.url("/hook")}).raise_for_status()
    for n in range(5):
        send(api, "invoice.sent", n=n)
    send(api, "order.paid", n=0)
    wait_for_deliveries(api, 6, status="dead")
    sign_in(page, account)
    page.goto("/ui/dead-letter?event_type=invoice.sent&limit=3")
    expect(page.locator("tbody tr")).to_have_count(3)
    newest = set(page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.delivery)"))
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Older →").click()
    expect(page).to_have_url(re.compile(r"event_type=invoice\.sent.*cursor=dlv_"))
    expect(page.locator("tbody tr")).to_have_count(2)
    older = set(page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.delivery)"))
    assert not newest & older
    expect(page.locator("tbody")).not_to_contain_text("order.paid")
    expect(page.get_by_role("navigation", name="Pages")).to_have_count(0)

    # A time range, typed as UTC in the form's datetime fields.
    page.goto("/ui/dead-letter?event_type=invoice.sent")
    page.get_by_label("Created from (UTC)").fill("2000-01-01T00:00")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(5)
    expect(page.get_by_label("Created from (UTC)")).to_have_value("2000-01-01T00:00")
    page.get_by_label("Created before (UTC)").fill("2000-01-02T00:00")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No dead delivery matches these filters.")).to_be_visible()


def test_a_bad_filter_shows_the_apis_reason(page: Page, account: Account) -> None:
    sign_in(page, account)
    answer = page.goto("/ui/dead-letter?since=yesterday&event_type=order.paid")
    assert answer is not None and answer.status == 400
    expect(page.get_by_role("alert")).to_contain_text("since")
    expect(page.get_by_label("Event type")).to_have_value("order.paid")
    expect(page.get_by_role("button", name="Replay all matching")).to_have_count(0)


def test_an_empty_dead_letter_says_so(page: Page, account: Account) -> None:
    sign_in(page, account)
    page.goto("/ui/dead-letter")
    expect(page.get_by_text("The dead letter is empty")).to_be_visible()
    expect(page.get_by_role("button", name="Replay all matching")).to_have_count(0)


def test_another_tenants_deliveries_and_operations_are_not_found(
    page: Page, account: Account, api: httpx.Client, failing_receiver: Receiver, relay_stack: str
) -> None:
    api.post("/v1/endpoints", json={"url": failing_receiver.url("/hook")}).raise_for_status()
    send(api, n=1)
    [theirs] = wait_for_deliveries(api, 1, status="dead")
    operation = api.post("/v1/dead-letter/replay", json={"event_type": "nothing.matches"}).json()

    sign_in(page, make_account(relay_stack, "Initech"))
    page.goto("/ui/dead-letter")
    expect(page.get_by_text("The dead letter is empty")).to_be_visible()
    token = csrf_token(page)
    for action in ("replay", "discard"):
        refused = page.request.post(f"/ui/dead-letter/{theirs['id']}/{action}",
                                    form={"_csrf_token": token, "back": "/ui/dead-letter"}, max_redirects=0)
        assert refused.status == 404, (action, refused.status)
        assert "Not found" in refused.text()
    answer = page.goto(f"/ui/operations/{operation['id']}")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    assert page.request.get(f"/ui/operations/{operation['id']}/progress").status == 404
    assert [row["id"] for row in dead_letter(api)] == [theirs["id"]]  # nothing changed for its owner
