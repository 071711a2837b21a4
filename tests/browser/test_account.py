"""Sign-in throttling and the Account page's password change, in a real browser (issue 13)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Account, sign_in

MAX_FAILURES = 3
STACK_ENV = {"RELAY_LOGIN_MAX_FAILURES": str(MAX_FAILURES)}  # the window stays the default 15 minutes
NEW_PASSWORD = "an entirely new passphrase"


@pytest.fixture(autouse=True)
def forget_failures(db: psycopg.Connection, account: Account) -> Iterator[None]:
    """Leave no count behind: the browser connects from 127.0.0.1, as the other modules' tests do."""
    yield
    subject = "account:" + hashlib.sha256(account.email.encode()).hexdigest()
    db.execute("DELETE FROM relay.login_throttle WHERE subject = ANY(%s)", ([subject, "address:127.0.0.1"],))


def try_sign_in(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_too_many_wrong_passwords_get_a_429_page_that_says_when_to_try_again(page: Page, account: Account) -> None:
    page.goto("/ui/login")
    for _ in range(MAX_FAILURES):
        try_sign_in(page, account.email, "not the password")
        expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    with page.expect_response(re.compile(r"/ui/login$")) as answer:
        try_sign_in(page, account.email, account.password)  # the right password waits too
    assert answer.value.status == 429 and 890 <= int(answer.value.headers["retry-after"]) <= 900
    expect(page.get_by_role("alert")).to_have_text("Too many failed sign-in attempts. Try again in 15 minutes.")
    expect(page.get_by_label("Email")).to_have_value(account.email)
    expect(page).to_have_url(re.compile(r"/ui/login$"))  # not signed in


def test_changing_the_password_on_the_account_page_ends_every_session(
    page: Page, browser: Browser, account: Account, api: httpx.Client, relay_stack: str, shoot, tmp_path
) -> None:
    elsewhere = browser.new_context(base_url=relay_stack)
    try:
        other = elsewhere.new_page()
        sign_in(other, account)  # the same user in another browser
        sign_in(page, account)
        page.get_by_role("link", name="Account").click()
        expect(page.get_by_role("heading", name="Account", exact=True)).to_be_visible()
        expect(page.get_by_role("link", name="Account")).to_have_attribute("aria-current", "page")
        shoot(page, "account")

        page.get_by_label("Current password").fill("not my password")
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("New password again").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_role("alert")).to_have_text("The current password is not right.")
        expect(page.get_by_label("Current password")).to_have_attribute("aria-invalid", "true")

        page.get_by_label("Current password").fill(account.password)
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("New password again").fill(NEW_PASSWORD + "!")
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_role("alert")).to_have_text("The two new passwords are not the same.")

        page.get_by_label("Current password").fill(account.password)
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("New password again").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Change password").click()
        expect(page).to_have_url(re.compile(r"/ui/login\?next=/ui/account$"))
        expect(page.get_by_role("status")).to_contain_text("Your password is changed")

        # Every session ended: the other browser's, and the API token got before the change.
        other.reload()
        expect(other).to_have_url(re.compile(r"/ui/login\?next="))
        assert api.get("/v1/endpoints").status_code == 401

        try_sign_in(page, account.email, account.password)
        expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
        try_sign_in(page, account.email, NEW_PASSWORD)
        expect(page).to_have_url(re.compile(r"/ui/account$"))
        expect(page.get_by_role("heading", name="Account", exact=True)).to_be_visible()
    finally:
        elsewhere.close()
