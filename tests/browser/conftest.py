"""The dashboard in a real headless Chromium (Playwright) against real `relay api` and `relay worker` processes.

No browser can be downloaded here, so the tests use the system's Chromium (Debian:
`apt-get install -y chromium`). Without one they are skipped with that advice — unless
RELAY_REQUIRE_BROWSER=1 (set by .ci/run after installing it), when a missing browser fails.

Screenshots: every test may call `shoot(page, name)`; with RELAY_UPDATE_SCREENSHOTS=1 they
are written to docs/screenshots/ (the README shows them), otherwise under the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Dialog, Locator, Page

from relay.ids import new_id
from tests.acceptance.conftest import Stack, relay_stack, stack  # noqa: F401  (fixtures, used by name)
from tests.receiver import Received, Receiver
from tests.support import REPO, wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
HOW_TO_INSTALL = "no Chromium found: `apt-get install -y chromium` (Debian/Ubuntu) to run the dashboard's browser tests"
SCREENSHOTS = REPO / "docs" / "screenshots"
PASSWORD = "correct horse battery staple"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM:
        return
    if os.environ.get("RELAY_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(f"RELAY_REQUIRE_BROWSER=1 but {HOW_TO_INSTALL}")
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.skip(reason=HOW_TO_INSTALL))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Launch the system Chromium (pytest-playwright's own download is not possible here)."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": ["--no-sandbox"]}


@pytest.fixture
def browser_context_args(browser_context_args: dict[str, Any], relay_stack: str) -> dict[str, Any]:  # noqa: F811
    return {**browser_context_args, "base_url": relay_stack, "viewport": {"width": 1280, "height": 860}}


@dataclass(frozen=True)
class Account:
    email: str
    password: str
    tenant_id: str


def make_account(base_url: str, name: str = "Acme", tenant_name: str | None = None) -> Account:
    """Register a user (and its tenant, called `name` unless `tenant_name` says otherwise) through the API."""
    email = f"{name.lower()}-{new_id('u')[-10:].lower()}@example.com"
    response = httpx.post(f"{base_url}/v1/auth/register",
                          json={"email": email, "password": PASSWORD, "tenant_name": tenant_name or name}, timeout=30)
    assert response.status_code == 201, response.text
    return Account(email, PASSWORD, response.json()["tenant_id"])


@pytest.fixture
def account(relay_stack: str) -> Account:  # noqa: F811
    return make_account(relay_stack)


def access_token(base_url: str, account: Account) -> str:
    response = httpx.post(f"{base_url}/v1/auth/login", json={"email": account.email, "password": account.password})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture
def api(relay_stack: str, account: Account) -> Iterator[httpx.Client]:  # noqa: F811
    """The API as the same user the browser signs in as (to set things up and check them)."""
    token = access_token(relay_stack, account)
    with httpx.Client(base_url=relay_stack, headers={"authorization": f"Bearer {token}"}, timeout=30) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


class Switch:
    """A receiver's behaviour: 500 with a body while down, 200 once up; remembers the events it accepted."""

    def __init__(self) -> None:
        self.up = False
        self.accepted: list[str] = []

    async def __call__(self, request: Received) -> tuple[int, dict[str, str], bytes]:
        if not self.up:
            return 500, {}, b"database unavailable, try later"
        self.accepted.append(json.loads(request.body)["id"])
        return 200, {}, b"ok"


@pytest.fixture
def switch() -> Switch:
    return Switch()


@pytest.fixture
def failing_receiver(switch: Switch) -> Iterator[Receiver]:
    """A receiver that fails every delivery until `switch.up` is set: deliveries to it retry, then die."""
    with Receiver(switch) as running:
        yield running


def send(api: httpx.Client, event_type: str = "order.paid", **payload: Any) -> str:
    """Send an event through the API; return its id."""
    answer = api.post("/v1/events", json={"type": event_type, "payload": payload})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def deliveries(api: httpx.Client, **query: Any) -> list[dict[str, Any]]:
    """The deliveries the API lists with these filters (`status`, `endpoint_id` …), newest first."""
    answer = api.get("/v1/deliveries", params={"limit": 250, **query})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


def wait_for_deliveries(api: httpx.Client, count: int, **query: Any) -> list[dict[str, Any]]:
    """Wait until the API lists `count` deliveries with these filters (the worker sends them, not the test)."""

    def enough() -> list[dict[str, Any]] | None:
        rows = deliveries(api, **query)
        return rows if len(rows) >= count else None

    return wait_until(enough, timeout=30, interval=0.3, what=f"{count} deliveries {query}")


def sign_in(page: Any, account: Account) -> None:
    """Sign in through the login form and land on the overview."""
    page.goto("/ui/login")
    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/ui/?$"))


@pytest.fixture
def signed_in(page: Any, account: Account) -> Any:
    """A page signed in as `account`."""
    sign_in(page, account)
    return page


def reload_until_visible(page: Page, locator: Locator, what: str) -> None:
    """Reload the page until `locator` shows (deliveries happen in the worker, not in the page)."""
    wait_until(lambda: page.reload() is not None and locator.is_visible(), timeout=20, interval=0.3, what=what)


def csrf_token(page: Page) -> str:
    """The page's CSRF token, to post a form the page does not show (as a forged request would)."""
    return str(page.locator("input[name=_csrf_token]").first.input_value())


def answer_next_dialog(page: Page, *, accept: bool) -> list[str]:
    """Accept or dismiss the next confirm dialog; return the list its question is added to."""
    questions: list[str] = []

    def answer(dialog: Dialog) -> None:
        questions.append(dialog.message)
        if accept:
            dialog.accept()
        else:
            dialog.dismiss()

    page.once("dialog", answer)
    return questions


@pytest.fixture
def shoot(tmp_path: Path) -> Callable[[Any, str], Path]:
    """Take a full-page screenshot in the page's current theme: `shoot(page, "overview")` → overview-light.png."""

    def take(page: Any, name: str) -> Path:
        theme = page.evaluate(
            "document.documentElement.dataset.theme || "
            "(matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light')"
        )
        folder = SCREENSHOTS if os.environ.get("RELAY_UPDATE_SCREENSHOTS") == "1" else tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}-{theme}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
