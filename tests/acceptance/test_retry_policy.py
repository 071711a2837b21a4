"""The retry policy against a scripted, misbehaving receiver (F9-F11): every delivery ends as the policy says."""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx

from tests.acceptance.helpers import add_endpoint, deliveries_of, send_event, wait_for_states
from tests.receiver import RESET, Received, Receiver, SlowBody
from tests.support import wait_until

SCHEDULE = (1.0, 2.0)  # after the first attempt: 1 s, then 2 s, then dead
STACK_ENV = {"RELAY_RETRY_SCHEDULE": "1s,2s", "RELAY_CIRCUIT_FAILURE_THRESHOLD": "100"}
JITTER = 0.2


def gap(attempt: dict) -> float:
    """Seconds between an attempt's start and the next attempt it scheduled."""
    started = datetime.fromisoformat(attempt["started_at"])
    return (datetime.fromisoformat(attempt["next_attempt_at"]) - started).total_seconds()


def scripted(*answers):
    """A behaviour that gives these answers in turn, then keeps giving the last."""
    calls = []

    async def behave(_: Received):
        calls.append(1)
        answer = answers[min(len(calls), len(answers)) - 1]
        if answer == "hang":
            await asyncio.sleep(5)  # longer than the endpoint's 1 s timeout
            return 200, {}, b"too late"
        return answer

    return behave


def test_failures_then_success_follow_the_schedule(client: httpx.Client) -> None:
    with Receiver(scripted((500, {}, b"oops"), RESET, (200, {}, b"ok"))) as receiver:
        add_endpoint(client, receiver.url())
        event = send_event(client)
        [delivery] = wait_for_states(client, event["id"], ["succeeded"])
    log = delivery["attempt_log"]
    assert [(a["attempt_number"], a["error_class"], a["outcome"]) for a in log] == [
        (1, "server_error", "retrying"), (2, "network", "retrying"), (3, None, "succeeded")
    ]
    for attempt, step in zip(log, SCHEDULE, strict=False):
        # Never early; late by at most the time a busy worker takes to claim a due retry.
        assert step * (1 - JITTER) - 0.05 <= gap(attempt) <= step * (1 + JITTER) + 0.5, attempt
    starts = [datetime.fromisoformat(a["started_at"]) for a in log]
    assert (starts[1] - starts[0]).total_seconds() >= SCHEDULE[0] * (1 - JITTER) - 0.05
    assert (starts[2] - starts[1]).total_seconds() >= SCHEDULE[1] * (1 - JITTER) - 0.05


def test_timeouts_until_dead(client: httpx.Client) -> None:
    with Receiver(scripted("hang")) as receiver:
        add_endpoint(client, receiver.url(), timeout_seconds=1)
        event = send_event(client)
        [delivery] = wait_for_states(client, event["id"], ["dead"], timeout=45)
    assert [a["error_class"] for a in delivery["attempt_log"]] == ["timeout"] * 3
    assert [a["outcome"] for a in delivery["attempt_log"]] == ["retrying", "retrying", "dead"]
    assert all(900 <= a["duration_ms"] < 2500 for a in delivery["attempt_log"])


def test_slow_body_counts_against_the_timeout(client: httpx.Client) -> None:
    async def trickle(_: Received):
        return SlowBody(200, chunks=10, delay=0.3)  # headers at once, body takes 3 s

    with Receiver(trickle) as receiver:
        add_endpoint(client, receiver.url(), timeout_seconds=1)
        event = send_event(client)
        attempts = wait_until(lambda: deliveries_of(client, event["id"])[0]["attempt_log"], what="an attempt")
    assert attempts[0]["error_class"] == "timeout"


def test_retry_after_is_honoured_within_the_schedule_bounds(client: httpx.Client) -> None:
    with Receiver(scripted((429, {"Retry-After": "100"}, b""), (503, {"Retry-After": "1"}, b""), (200, {}, b""))) as receiver:
        add_endpoint(client, receiver.url())
        event = send_event(client)
        [delivery] = wait_for_states(client, event["id"], ["succeeded"])
    first, second, _ = delivery["attempt_log"]
    assert first["error_class"] == "rate_limited"
    assert abs(gap(first) - max(SCHEDULE)) < 0.1  # 100 s asked, clamped to the longest step
    assert abs(gap(second) - 1.0) < 0.1  # 1 s asked, within bounds: taken as it is


def test_retry_after_as_http_date(client: httpx.Client) -> None:
    import time
    from email.utils import formatdate

    with Receiver(scripted((503, {"Retry-After": formatdate(time.time() + 2, usegmt=True)}, b""), (200, {}, b""))) as receiver:
        add_endpoint(client, receiver.url())
        event = send_event(client)
        [delivery] = wait_for_states(client, event["id"], ["succeeded"])
    assert 0.9 <= gap(delivery["attempt_log"][0]) <= 2.1


def test_non_retryable_4xx_is_dead_at_once(client: httpx.Client) -> None:
    with Receiver(scripted((422, {}, b"bad"))) as receiver:
        add_endpoint(client, receiver.url())
        event = send_event(client)
        [delivery] = wait_for_states(client, event["id"], ["dead"])
        assert len(receiver.received()) == 1
    assert delivery["attempt_log"][0]["error_class"] == "client_error"


def test_gone_kills_the_delivery_and_disables_the_endpoint(client: httpx.Client) -> None:
    with Receiver(scripted((410, {}, b"gone"))) as receiver:
        endpoint = add_endpoint(client, receiver.url())
        first = send_event(client)
        wait_for_states(client, first["id"], ["dead"])
        shown = wait_until(lambda: not (e := client.get(f"/v1/endpoints/{endpoint['id']}").json())["enabled"] and e,
                           what="endpoint disabled")
        assert shown["disabled_reason"] == "gone"
        later = send_event(client)
        assert later["deliveries"] == 0
        assert len(receiver.received()) == 1


def test_per_endpoint_and_per_event_type_schedules(client: httpx.Client) -> None:
    async def down(_: Received):
        return 500, {}, b""

    client.post("/v1/event-types", json={"name": "billing.failed", "retry_schedule": [0.2, 0.2, 0.2]}).raise_for_status()
    with Receiver(down) as receiver:
        add_endpoint(client, receiver.url(), retry_schedule=[0.2])
        by_endpoint = send_event(client, "billing.other")
        by_type = send_event(client, "billing.failed")
        [endpoint_delivery] = wait_for_states(client, by_endpoint["id"], ["dead"])
        [type_delivery] = wait_for_states(client, by_type["id"], ["dead"])
    assert endpoint_delivery["attempts"] == 2  # first attempt + one retry from the endpoint's schedule
    assert type_delivery["attempts"] == 4  # the event type's schedule wins: first + three retries
