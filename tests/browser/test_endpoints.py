"""The endpoints pages in a real browser: register, see the secret once, edit, operate, inspect, analyse, delete."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect
from standardwebhooks.webhooks import Webhook

from tests.browser.conftest import Account, answer_next_dialog, make_account, send, sign_in
from tests.receiver import Received, Receiver
from tests.support import wait_until


async def server_error(_: Received) -> tuple[int, dict[str, str], bytes]:
    return 503, {}, b"upstream down"


def create_endpoint(api: httpx.Client, url: str, **fields: Any) -> dict[str, Any]:
    response = api.post("/v1/endpoints", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def delivered(receiver: Receiver, count: int = 1) -> list[Received]:
    return wait_until(lambda: len(receiver.received()) >= count and receiver.received(), timeout=20,
                      what=f"{count} request(s) at the receiver")


def verified(secret: str, request: Received) -> dict[str, Any]:
    """The delivery's envelope, after the official Standard Webhooks library checked its signature."""
    return Webhook(secret).verify(request.body, request.headers)


def test_register_through_the_form_shows_the_secret_once_and_it_signs_deliveries(
    signed_in: Page, api: httpx.Client, receiver: Receiver
) -> None:
    page = signed_in
    page.goto("/ui/endpoints")
    expect(page.get_by_text("No endpoints yet.")).to_be_visible()
    page.get_by_role("link", name="Register endpoint").click()
    page.get_by_label("URL").fill(receiver.url("/hook"))
    page.get_by_label("Event types").fill("order.paid, order.refunded  invoice.*")
    page.get_by_label("Description").fill("Orders service")
    page.get_by_label("Timeout (s)").fill("5")
    page.get_by_label("Rate limit (/s)").fill("50")
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/ui/endpoints/new")) as posted:
        page.get_by_role("button", name="Register endpoint").click()
    assert posted.value.headers["cache-control"] == "no-store"  # the secret is never cached

    expect(page.get_by_role("heading", name="Endpoint registered")).to_be_visible()
    secret = page.locator("#new-secret").inner_text()
    assert secret.startswith("whsec_")
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    [endpoint] = api.get("/v1/endpoints").json()["data"]
    assert endpoint["url"] == receiver.url("/hook") and endpoint["description"] == "Orders service"
    assert endpoint["event_types"] == ["invoice.*", "order.paid", "order.refunded"]
    assert endpoint["timeout_seconds"] == 5 and endpoint["rate_limit"] == 50 and endpoint["fifo"] is False
    assert api.get(f"/v1/endpoints/{endpoint['id']}/secret").json()["key"] == secret
    assert secret not in page.url and all(secret not in c["value"] for c in page.context.cookies())

    # The secret shown is the one the deliveries are signed with.
    event_id = send(api, "order.paid", invoice="in_1")
    [request] = delivered(receiver)
    envelope = verified(secret, request)
    assert envelope["id"] == event_id and envelope["data"] == {"invoice": "in_1"}

    # Once: the endpoint's page does not show it again until Reveal is clicked.
    page.get_by_role("link", name="Go to the endpoint").click()
    expect(page).to_have_url(re.compile(rf"/ui/endpoints/{endpoint['id']}$"))
    expect(page.locator("main")).not_to_contain_text(secret)
    expect(page.locator("#endpoint-secret")).to_be_hidden()
    copy = page.get_by_role("button", name="Copy")
    expect(copy).to_be_hidden()
    page.get_by_role("button", name="Reveal").click()
    expect(page.locator("#endpoint-secret")).to_have_text(secret)
    expect(copy).to_be_visible()

    # The list shows it with its state, circuit and today's success rate.
    page.goto("/ui/endpoints")
    row = page.locator(f"tr[data-endpoint={endpoint['id']}]")
    expect(row.get_by_role("link", name=receiver.url("/hook"))).to_be_visible()
    expect(row).to_contain_text("Orders service")
    expect(row).to_contain_text("enabled")
    expect(row).to_contain_text("circuit closed")
    expect(row).to_contain_text("100.0 %")


def test_bad_input_shows_the_apis_message_keeps_what_was_typed_and_stores_nothing(
    signed_in: Page, api: httpx.Client
) -> None:
    page = signed_in
    page.goto("/ui/endpoints/new")
    page.get_by_label("URL").fill("http://user:password@127.0.0.1:9/hook")
    page.get_by_label("Description").fill("Kept as typed")
    page.get_by_label("Rate limit (/s)").fill("7")
    page.get_by_role("button", name="Register endpoint").click()
    expect(page.get_by_role("alert")).to_have_text(
        "URL: The URL is not valid: put credentials in custom headers, not in the URL.")
    expect(page.get_by_label("URL")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Description")).to_have_value("Kept as typed")
    expect(page.get_by_label("Rate limit (/s)")).to_have_value("7")

    page.get_by_label("URL").fill("http://127.0.0.1:9/hook")
    page.get_by_label("Event types").fill("order.paid, not a type!")
    page.get_by_role("button", name="Register endpoint").click()
    expect(page.get_by_role("alert")).to_contain_text("Event types:")
    expect(page.get_by_label("Event types")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Event types")).to_have_value("order.paid, not a type!")
    assert api.get("/v1/endpoints").json()["data"] == []


def test_edit_changes_what_the_form_changed(signed_in: Page, api: httpx.Client, receiver: Receiver) -> None:
    page = signed_in
    endpoint = create_endpoint(api, receiver.url("/hook"), description="Before", event_types=["order.paid"],
                               rate_limit=10)
    page.goto(f"/ui/endpoints/{endpoint['id']}")
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", name="Edit endpoint")).to_be_visible()
    expect(page.get_by_label("Description")).to_have_value("Before")
    expect(page.get_by_label("Event types")).to_have_value("order.paid")
    page.get_by_label("Description").fill("After")
    page.get_by_label("Event types").fill("order.*, invoice.paid")
    page.get_by_label("Timeout (s)").fill("2.5")
    page.get_by_label("Rate limit (/s)").fill("")
    page.get_by_label("FIFO").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Endpoint saved.")
    expect(page.locator(".state-line")).to_contain_text("After")
    changed = api.get(f"/v1/endpoints/{endpoint['id']}").json()
    assert changed["description"] == "After" and changed["event_types"] == ["invoice.paid", "order.*"]
    assert changed["timeout_seconds"] == 2.5 and changed["rate_limit"] is None and changed["fifo"] is True

    # A refusal keeps the edit form, the input and the API's message; nothing changes.
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("URL").fill("ftp://127.0.0.1/hook")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("URL:")
    expect(page.get_by_label("URL")).to_have_value("ftp://127.0.0.1/hook")
    assert api.get(f"/v1/endpoints/{endpoint['id']}").json()["url"] == receiver.url("/hook")


def test_pause_holds_deliveries_and_resume_sends_them(signed_in: Page, api: httpx.Client,
                                                     receiver: Receiver) -> None:
    page = signed_in
    endpoint = create_endpoint(api, receiver.url("/hook"))
    page.goto(f"/ui/endpoints/{endpoint['id']}")
    state = page.locator("[data-figure=state] .badge").first
    expect(state).to_have_text("enabled")
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("status")).to_contain_text("Paused")
    expect(state).to_have_text("paused")

    send(api, n=1)
    [waiting] = api.get("/v1/deliveries", params={"endpoint_id": endpoint["id"]}).json()["data"]
    assert waiting["status"] == "pending" and waiting["held_by"] == "pause"
    # No reload: the figures part of the page fetches itself again every few seconds.
    expect(page.locator("[data-figure=held]")).to_contain_text("1 held", timeout=15_000)
    assert receiver.received() == []

    page.get_by_role("button", name="Resume").click()
    expect(state).to_have_text("enabled")
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    delivered(receiver)
    page.goto("/ui/endpoints")
    expect(page.locator(f"tr[data-endpoint={endpoint['id']}]")).to_contain_text("enabled")


def test_disable_and_enable(signed_in: Page, api: httpx.Client, receiver: Receiver) -> None:
    page = signed_in
    endpoint = create_endpoint(api, receiver.url("/hook"))
    page.goto(f"/ui/endpoints/{endpoint['id']}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Disable").click()
    expect(page.locator("[data-figure=state]")).to_contain_text("disabled (manual)")
    assert api.get(f"/v1/endpoints/{endpoint['id']}").json()["enabled"] is False
    page.get_by_role("button", name="Send test ping").click()  # the API refuses; its reason is shown
    expect(page.get_by_role("status")).to_contain_text("is disabled (manual); enable it first.")
    page.goto("/ui/endpoints")
    expect(page.locator(f"tr[data-endpoint={endpoint['id']}]")).to_contain_text("disabled (manual)")
    page.get_by_role("link", name=receiver.url("/hook")).click()
    page.get_by_role("button", name="Enable").click()
    expect(page.locator("[data-figure=state] .badge").first).to_have_text("enabled")
    assert api.get(f"/v1/endpoints/{endpoint['id']}").json()["enabled"] is True


def test_rotate_secret_shows_the_new_one_once_and_a_test_ping_is_signed_with_it(
    signed_in: Page, api: httpx.Client, receiver: Receiver
) -> None:
    page = signed_in
    endpoint = create_endpoint(api, receiver.url("/hook"))
    page.goto(f"/ui/endpoints/{endpoint['id']}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_role("heading", name="New signing secret")).to_be_visible()
    expect(page.get_by_text("deliveries carry a signature with the previous secret too")).to_be_visible()
    rotated = page.locator("#new-secret").inner_text()
    assert rotated.startswith("whsec_") and rotated != endpoint["secret"]
    assert api.get(f"/v1/endpoints/{endpoint['id']}/secret").json()["key"] == rotated

    page.get_by_role("link", name="Go to the endpoint").click()
    page.get_by_role("button", name="Send test ping").click()
    expect(page.get_by_role("status")).to_contain_text("Test ping sent: event evt_")
    [ping] = delivered(receiver)
    envelope = verified(rotated, ping)
    assert envelope["type"] == "relay.ping" and envelope["data"]["endpoint_id"] == endpoint["id"]
    verified(endpoint["secret"], ping)  # the previous secret signs too, during the grace period


def test_failure_analysis_shows_the_rules_answer_labelled_with_its_engine(signed_in: Page, api: httpx.Client) -> None:
    page = signed_in
    with Receiver(server_error) as failing:
        endpoint = create_endpoint(api, failing.url("/hook"), description="Billing (down)")
        send(api, n=1)
        wait_until(lambda: api.get(f"/v1/endpoints/{endpoint['id']}/stats").json()["recent_failures"], timeout=20,
                   what="a failed attempt")
        page.goto(f"/ui/endpoints/{endpoint['id']}")
        expect(page.locator(".timeline")).to_contain_text("HTTP 503")
        expect(page.locator("[data-figure=engine]")).to_have_count(0)
        page.get_by_role("button", name="Run failure analysis").click()
        engine = page.locator("[data-figure=engine]")
        expect(engine).to_have_text("Engine: rules")
        answer = page.locator("#analysis")
        expect(answer).to_contain_text("The endpoint answers with server errors (5xx)")  # the likely cause
        expect(answer).to_contain_text("Recommended action")
        expect(answer).to_contain_text("server error")  # the pattern
        expect(answer).to_contain_text("503 ×")  # the evidence: the answers it read
        assert page.evaluate("location.hash") == "#analysis"  # scrolled to the answer
        expect(page.get_by_role("button", name="Run again")).to_be_visible()


def test_delete_asks_first(signed_in: Page, api: httpx.Client, receiver: Receiver) -> None:
    page = signed_in
    endpoint = create_endpoint(api, receiver.url("/hook"))
    page.goto(f"/ui/endpoints/{endpoint['id']}")
    questions = answer_next_dialog(page, accept=False)
    page.get_by_role("button", name="Delete").click()
    assert questions and questions[0].startswith("Delete this endpoint?")
    expect(page).to_have_url(re.compile(rf"/ui/endpoints/{endpoint['id']}$"))
    assert api.get(f"/v1/endpoints/{endpoint['id']}").status_code == 200  # dismissed: nothing happened

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/ui/endpoints$"))
    expect(page.get_by_role("status")).to_contain_text("Endpoint deleted")
    expect(page.get_by_text("No endpoints yet.")).to_be_visible()
    assert api.get(f"/v1/endpoints/{endpoint['id']}").status_code == 404


def test_another_tenants_endpoint_is_not_found(page: Page, api: httpx.Client, relay_stack: str,
                                              receiver: Receiver) -> None:
    endpoint = create_endpoint(api, receiver.url("/hook"), description="Not yours")
    stranger: Account = make_account(relay_stack, "Initech")
    sign_in(page, stranger)
    for path in ("", "/edit"):
        response = page.goto(f"/ui/endpoints/{endpoint['id']}{path}")
        assert response is not None and response.status == 404
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        expect(page.locator("main")).not_to_contain_text(receiver.url("/hook"))
    page.goto("/ui/endpoints")
    expect(page.get_by_text("No endpoints yet.")).to_be_visible()
    # The reveal and the actions, posted with this user's own valid CSRF token, find nothing either.
    answers = page.evaluate(
        """async (id) => {
            const token = document.querySelector("input[name=_csrf_token]").value;
            const out = {};
            for (const action of ["secret", "pause", "delete", "analysis"]) {
                const r = await fetch(`/ui/endpoints/${id}/${action}`,
                                      {method: "POST", headers: {"X-CSRFToken": token}, redirect: "manual"});
                out[action] = [r.status, await r.text()];
            }
            return out;
        }""",
        endpoint["id"],
    )
    assert {action: status for action, (status, _) in answers.items()} == {
        "secret": 404, "pause": 404, "delete": 404, "analysis": 404}
    assert endpoint["secret"] not in json.dumps(answers)
    owner = api.get(f"/v1/endpoints/{endpoint['id']}").json()
    assert owner["paused"] is False and owner["description"] == "Not yours"  # untouched


def test_screenshots_of_the_list_and_the_detail(page: Page, account: Account, api: httpx.Client, receiver: Receiver,
                                               shoot: Callable[[Any, str], Any], tmp_path: Path) -> None:
    with Receiver(server_error) as failing:
        create_endpoint(api, receiver.url("/orders"), description="Orders service",
                        event_types=["order.*"], rate_limit=100)
        billing = create_endpoint(api, failing.url("/billing"), description="Billing (returns 503)")
        paused = create_endpoint(api, receiver.url("/crm"), description="CRM sync", fifo=True)
        assert api.post(f"/v1/endpoints/{paused['id']}/pause").status_code == 200
        off = create_endpoint(api, receiver.url("/legacy"), description="Legacy hook")
        assert api.patch(f"/v1/endpoints/{off['id']}", json={"enabled": False}).status_code == 200
        for n in range(6):
            send(api, "order.paid", n=n)
        delivered(receiver, 6)
        wait_until(lambda: api.get("/v1/stats").json()["recent_failures"], timeout=20, what="a failed attempt")
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
            sign_in(page, account)
            page.goto("/ui/endpoints")
            expect(page.locator("tbody tr")).to_have_count(4)
            shoot(page, "endpoints")
            page.goto(f"/ui/endpoints/{billing['id']}")
            page.get_by_role("button", name="Run failure analysis").click()
            expect(page.locator("[data-figure=engine]")).to_have_text("Engine: rules")
            page.evaluate("window.scrollTo(0, 0)")  # the sticky header at the top of the full-page picture
            shoot(page, "endpoint")
            page.context.clear_cookies()
        page.set_viewport_size({"width": 390, "height": 844})
        sign_in(page, account)
        page.goto("/ui/endpoints")
        page.screenshot(path=str(tmp_path / "endpoints-phone.png"), full_page=True)  # looked at, not published
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing overflows sideways
        page.goto(f"/ui/endpoints/{billing['id']}")
        page.get_by_role("button", name="Run failure analysis").click()
        page.screenshot(path=str(tmp_path / "endpoint-phone.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.goto("/ui/endpoints/new")
        page.screenshot(path=str(tmp_path / "endpoint-form-phone.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
