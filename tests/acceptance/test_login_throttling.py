"""Login throttling and sessions ending, against two real `relay api` processes on one database (issue 13).

The processes share the counts (they are in PostgreSQL), so the tests alternate between
them. Each test connects from loopback addresses of its own (127.0.x.y: every one of
them reaches the API on 127.0.0.1), so the per-address limit of one test does not meet
another's. Small settings keep it quick: 2 failures per account (8 per address) within
a window of 8 seconds — long enough for 8 failed logins on a slow, busy machine (argon2
takes its time on purpose: 0.4 s each on two loaded cores), short enough to wait out a block.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from tests.acceptance.conftest import Stack
from tests.support import RelayProcess, free_port, wait_for_http, wait_until

MAX_FAILURES = 2
ADDRESS_MAX_FAILURES = 4 * MAX_FAILURES
WINDOW = 8.0
STACK_ENV = {"RELAY_LOGIN_MAX_FAILURES": str(MAX_FAILURES), "RELAY_LOGIN_WINDOW": f"{WINDOW:g}s"}
WORKERS = 0
PASSWORD = "correct horse battery staple"
_ADDRESSES = itertools.count(1)


@pytest.fixture(scope="module")
def apis(stack: Stack) -> Iterator[list[str]]:
    """Two API processes on the same database: the stack's, and a second one."""
    port = free_port()
    second = RelayProcess(["api", "--host", "127.0.0.1", "--port", str(port)], stack.env, stack.logs / "api-2.log")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", second)
        yield [stack.base_url, f"http://127.0.0.1:{port}"]
    finally:
        second.stop()


def new_address() -> str:
    """A loopback address no other test uses (never 127.0.0.1, which every other module connects from)."""
    n = next(_ADDRESSES)
    return f"127.0.{1 + n // 250}.{1 + n % 250}"


def client_from(address: str) -> httpx.Client:
    """A client whose connections come from `address`: what the API sees as the client address."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def register(apis: list[str]) -> dict:
    """A new account (its tokens, and its email under "email")."""
    address = email()
    with client_from(new_address()) as http:
        response = http.post(f"{apis[0]}/v1/auth/register", json={"email": address, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {**response.json(), "email": address}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(http: httpx.Client, base: str, address: str, password: str) -> httpx.Response:
    return http.post(f"{base}/v1/auth/login", json={"email": address, "password": password})


def account_row(db: psycopg.Connection, address: str) -> tuple | None:
    subject = "account:" + hashlib.sha256(address.lower().encode()).hexdigest()
    return db.execute("SELECT failures, strikes, blocked_until > now() FROM relay.login_throttle WHERE subject = %s",
                      (subject,)).fetchone()


def assert_throttled(response: httpx.Response) -> int:
    """A 429 problem document with Retry-After in whole seconds (at most one window for a first block); return it."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    retry_after = response.headers["retry-after"]
    assert re.fullmatch(r"[1-9][0-9]*", retry_after), retry_after
    assert "Too many failed sign-in attempts" in response.json()["detail"]
    return int(retry_after)


def test_guessing_is_answered_429_after_the_threshold_on_either_process(apis: list[str]) -> None:
    account = register(apis)
    address = new_address()
    with client_from(address) as http:
        for attempt in range(MAX_FAILURES):
            wrong = login(http, apis[attempt % 2], account["email"], f"guess {attempt}")
            assert wrong.status_code == 401, (attempt, wrong.text)
        for base in apis:  # the block is the same on both processes
            retry_after = assert_throttled(login(http, base, account["email"], "guess again"))
            assert retry_after <= WINDOW
    # The account is blocked whatever the address: guessing from many addresses gains nothing.
    with client_from(new_address()) as http:
        assert_throttled(login(http, apis[1], account["email"], "from elsewhere"))


def test_an_unknown_email_is_throttled_exactly_like_an_account(apis: list[str]) -> None:
    known = register(apis)["email"]
    unknown = email()
    answers: dict[str, list[httpx.Response]] = {}
    for who in (known, unknown):
        with client_from(new_address()) as http:
            answers[who] = [login(http, apis[n % 2], who, f"guess {n}") for n in range(MAX_FAILURES + 2)]
    assert [r.status_code for r in answers[known]] == [r.status_code for r in answers[unknown]] == \
        [401] * MAX_FAILURES + [429, 429]

    def shape(response: httpx.Response) -> tuple:
        body = response.json()
        headers = {k for k in response.headers if k not in ("date", "content-length")}
        return response.status_code, re.sub(r"\d+", "N", body["detail"]), sorted(body), sorted(headers)

    for mine, nobodys in zip(answers[known], answers[unknown], strict=True):
        assert shape(mine) == shape(nobodys)
        assert known not in mine.text and unknown not in nobodys.text  # nothing account-specific
    for mine, nobodys in zip(answers[known][-2:], answers[unknown][-2:], strict=True):
        assert abs(assert_throttled(mine) - assert_throttled(nobodys)) <= 1


def test_the_right_password_is_refused_during_a_block_and_works_after_the_window(apis: list[str]) -> None:
    account = register(apis)
    address = new_address()
    with client_from(address) as http:
        for attempt in range(MAX_FAILURES):
            assert login(http, apis[attempt % 2], account["email"], "wrong").status_code == 401
        blocked_at = time.monotonic()
        for base in apis:  # otherwise guessing would go on: a right guess would tell itself apart
            assert_throttled(login(http, base, account["email"], PASSWORD))
        # Polling with the right password (a refused attempt counts nothing), until the block is over.
        answer = wait_until(lambda: (r := login(http, apis[1], account["email"], PASSWORD)).status_code != 429 and r,
                            timeout=WINDOW + 10, interval=0.2, what="the block to end")
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - blocked_at >= WINDOW - 1  # the block lasted about one window


def test_a_success_resets_the_accounts_count_but_not_its_strikes(apis: list[str], db: psycopg.Connection) -> None:
    account = register(apis)
    with client_from(new_address()) as http:
        for attempt in range(MAX_FAILURES - 1):
            assert login(http, apis[attempt % 2], account["email"], "wrong").status_code == 401
        assert account_row(db, account["email"])[0] == MAX_FAILURES - 1
        assert login(http, apis[0], account["email"], PASSWORD).status_code == 200
        assert account_row(db, account["email"])[0] == 0
        # A full allowance again: had the count not been reset, the second of these would be refused.
        for attempt in range(MAX_FAILURES):
            assert login(http, apis[attempt % 2], account["email"], "wrong").status_code == 401
        assert_throttled(login(http, apis[0], account["email"], "wrong"))
        assert account_row(db, account["email"])[1] == 1  # one strike, kept after the success


def test_one_address_is_limited_across_many_emails(apis: list[str]) -> None:
    account = register(apis)
    guesser = new_address()

    def guess(n: int) -> int:  # one guess per email: no account reaches its own limit
        with client_from(guesser) as http:
            return login(http, apis[n % 2], email(), "password123").status_code

    with ThreadPoolExecutor(max_workers=2) as pool:  # both processes at once: well within one window
        assert list(pool.map(guess, range(ADDRESS_MAX_FAILURES))) == [401] * ADDRESS_MAX_FAILURES
    with client_from(guesser) as http:
        assert_throttled(login(http, apis[0], email(), "password123"))
        assert_throttled(login(http, apis[1], account["email"], PASSWORD))  # a right password too
    with client_from(new_address()) as http:  # the accounts themselves are not blocked
        assert login(http, apis[1], account["email"], PASSWORD).status_code == 200


def test_counts_from_both_processes_add_up_exactly(apis: list[str], db: psycopg.Connection) -> None:
    address = new_address()
    attempts = ADDRESS_MAX_FAILURES - 2

    def guess(n: int) -> int:
        with client_from(address) as http:
            return login(http, apis[n % 2], email(), "password123").status_code

    with ThreadPoolExecutor(max_workers=attempts) as pool:  # all at once, on both processes
        assert list(pool.map(guess, range(attempts))) == [401] * attempts
    row = db.execute("SELECT failures FROM relay.login_throttle WHERE subject = %s", (f"address:{address}",)).fetchone()
    assert row == (attempts,)  # one atomic upsert per failure: none lost


def test_a_repeat_offenders_next_block_lasts_longer(apis: list[str]) -> None:
    account = register(apis)

    def block_and_wait(http: httpx.Client) -> tuple[int, float]:
        for attempt in range(MAX_FAILURES):
            assert login(http, apis[attempt % 2], account["email"], "wrong").status_code == 401
        started = time.monotonic()
        retry_after = assert_throttled(login(http, apis[0], account["email"], "wrong"))
        wait_until(lambda: login(http, apis[1], account["email"], PASSWORD).status_code == 200,
                   timeout=4 * WINDOW + 10, interval=0.25, what="the block to end")
        return retry_after, time.monotonic() - started

    with client_from(new_address()) as http:
        first_retry, first_block = block_and_wait(http)
    with client_from(new_address()) as http:
        second_retry, second_block = block_and_wait(http)
    assert first_retry <= WINDOW < second_retry <= 2 * WINDOW
    assert second_block > WINDOW + 0.5 and second_block > first_block + 1


def test_refresh_token_guessing_is_throttled_per_address(apis: list[str]) -> None:
    account = register(apis)
    guesser = new_address()
    with client_from(guesser) as http:
        for attempt in range(ADDRESS_MAX_FAILURES):
            answer = http.post(f"{apis[attempt % 2]}/v1/auth/refresh", json={"refresh_token": f"rrt_guess{attempt}"})
            assert answer.status_code == 401, (attempt, answer.text)
        assert_throttled(http.post(f"{apis[0]}/v1/auth/refresh", json={"refresh_token": "rrt_one_more"}))
        # From this address even a real token waits (and is not spent: the block is checked first).
        assert_throttled(http.post(f"{apis[1]}/v1/auth/refresh", json={"refresh_token": account["refresh_token"]}))
    with client_from(new_address()) as http:
        renewed = http.post(f"{apis[1]}/v1/auth/refresh", json={"refresh_token": account["refresh_token"]})
        assert renewed.status_code == 200, renewed.text


def test_a_password_change_ends_old_access_tokens_on_the_other_process_within_a_second(apis: list[str]) -> None:
    account = register(apis)
    old = bearer(account["access_token"])
    with client_from(new_address()) as http:
        for base in apis:  # both processes have seen (and cached) that this user's tokens are good
            assert http.get(f"{base}/v1/endpoints", headers=old).status_code == 200
        changed = http.post(f"{apis[0]}/v1/auth/password", headers=old,
                            json={"current_password": PASSWORD, "new_password": "a brand new passphrase"})
        assert changed.status_code == 200, changed.text
        done = time.monotonic()
        wait_until(lambda: http.get(f"{apis[1]}/v1/endpoints", headers=old).status_code == 401,
                   timeout=1.0, interval=0.02, what="the other process to refuse the old access token")
        assert time.monotonic() - done < 1.0
        assert http.get(f"{apis[0]}/v1/endpoints", headers=old).status_code == 401
        fresh = bearer(changed.json()["access_token"])
        for base in apis:  # the caller's new session goes on, on every process
            assert http.get(f"{base}/v1/endpoints", headers=fresh).status_code == 200
        assert http.post(f"{apis[1]}/v1/auth/refresh",
                         json={"refresh_token": account["refresh_token"]}).status_code == 401


def failed_login_addresses(stack: Stack, address: str) -> list[str]:
    """The client addresses the audit log recorded for failed logins of `address`."""
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        rows = conn.execute(
            "SELECT client_address FROM relay.audit_log WHERE action = 'login.failed' AND details->>'email' = %s",
            (address,),
        ).fetchall()
    return [row[0] for row in rows]


def test_a_client_cannot_choose_its_address_with_x_forwarded_for(stack: Stack, apis: list[str]) -> None:
    """Without RELAY_TRUSTED_PROXIES the header is ignored: rotating it does not escape the per-address limit."""
    address = new_address()
    with client_from(address) as http:
        answers, victims = [], []
        for n in range(ADDRESS_MAX_FAILURES + 1):
            victim = email()
            victims.append(victim)
            answer = http.post(f"{apis[n % 2]}/v1/auth/login", json={"email": victim, "password": "wrong password"},
                               headers={"X-Forwarded-For": f"203.0.113.{n + 1}", "Forwarded": f"for=198.51.100.{n + 1}"})
            answers.append(answer.status_code)
        assert answers == [401] * ADDRESS_MAX_FAILURES + [429], answers
        assert failed_login_addresses(stack, victims[0]) == [address]  # not 203.0.113.1 nor 198.51.100.1


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_clients(stack: Stack) -> None:
    proxy = new_address()
    port = free_port()
    env = {**stack.env, "RELAY_TRUSTED_PROXIES": proxy}
    behind = RelayProcess(["api", "--host", "127.0.0.1", "--port", str(port)], env, stack.logs / "api-proxied.log")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", behind)
        victim = email()
        with client_from(proxy) as http:
            answer = http.post(f"http://127.0.0.1:{port}/v1/auth/login", json={"email": victim, "password": "wrong"},
                               headers={"X-Forwarded-For": "203.0.113.77"})
        assert answer.status_code == 401, answer.text
        assert failed_login_addresses(stack, victim) == ["203.0.113.77"]
        # Another address is not the proxy: its header is not believed.
        other, victim = new_address(), email()
        with client_from(other) as http:
            http.post(f"http://127.0.0.1:{port}/v1/auth/login", json={"email": victim, "password": "wrong"},
                      headers={"X-Forwarded-For": "203.0.113.78"})
        assert failed_login_addresses(stack, victim) == [other]
    finally:
        behind.stop()
