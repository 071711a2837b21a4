"""Signing in and out, the overview, and the theme: the dashboard's frame, in a real browser."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import Account, make_account, sign_in


def test_a_visitor_is_sent_to_sign_in_and_back_where_they_were_going(page: Page, account: Account) -> None:
    page.goto("/ui/endpoints")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=/ui/endpoints$"))
    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/ui/endpoints$"))


def test_the_session_cookie_is_httponly_samesite_and_ends_on_sign_out(page: Page, account: Account,
                                                                    relay_stack: str) -> None:
    sign_in(page, account)
    [session] = [c for c in page.context.cookies() if c["name"] == "relay_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax" and session["path"] == "/ui"
    assert page.evaluate("document.cookie").find("relay_session") == -1  # scripts cannot read it
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    # The old cookie no longer opens anything, even when presented again by hand.
    answer = httpx.get(f"{relay_stack}/ui", cookies={"relay_session": session["value"]}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login")


def test_a_form_post_without_the_csrf_token_is_refused(page: Page, account: Account, relay_stack: str) -> None:
    sign_in(page, account)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    forged = httpx.post(f"{relay_stack}/ui/logout", cookies=cookies, follow_redirects=False)
    assert forged.status_code == 403
    page.reload()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()  # still signed in


def test_sign_up_creates_an_organisation_and_signs_in(page: Page, relay_stack: str) -> None:
    page.goto("/ui/login")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Organisation").fill("Globex")
    page.get_by_label("Email").fill("owner@globex.example")
    page.get_by_label("Password", exact=True).fill("a much longer password")
    page.get_by_label("Password again").fill("a much longer passwort")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_have_text("The two passwords are not the same.")
    expect(page.get_by_label("Email")).to_have_value("owner@globex.example")  # what was typed stays
    page.get_by_label("Password", exact=True).fill("a much longer password")
    page.get_by_label("Password again").fill("a much longer password")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator(".who .tenant")).to_have_text("Globex")


def test_overview_shows_the_tenants_figures_and_refreshes_itself(page: Page, account: Account, api: httpx.Client,
                                                                 shoot) -> None:
    sign_in(page, account)
    expect(page.locator("[data-figure=events-today]")).to_have_text("0")
    expect(page.get_by_role("img", name="Deliveries per hour over the last 24 hours")).to_be_visible()
    for _ in range(3):
        assert api.post("/v1/events", json={"type": "order.paid", "payload": {"n": 1}}).status_code == 202
    # No reload: the live part of the page fetches itself again every few seconds.
    expect(page.locator("[data-figure=events-today]")).to_have_text("3", timeout=15_000)
    shoot(page, "overview")


def test_dark_mode_follows_the_system_and_the_toggle_is_remembered(page: Page, account: Account, shoot) -> None:
    page.emulate_media(color_scheme="dark")
    sign_in(page, account)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 18, 32)"  # the dark theme, from the system setting alone
    shoot(page, "overview")
    toggle = page.get_by_role("button", name="Switch to light theme")
    toggle.click()
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(246, 247, 251)"
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == "light"  # remembered over the system's
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(246, 247, 251)"
    expect(page.get_by_role("button", name="Switch to dark theme")).to_be_visible()


def test_another_tenants_user_sees_none_of_it(page: Page, account: Account, api: httpx.Client,
                                              relay_stack: str) -> None:
    assert api.post("/v1/events", json={"type": "order.paid", "payload": {"n": 1}}).status_code == 202
    stranger = make_account(relay_stack, "Initech")
    sign_in(page, stranger)
    expect(page.locator("[data-figure=events-today]")).to_have_text("0")
    expect(page.locator(".who .tenant")).to_have_text("Initech")
