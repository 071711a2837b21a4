"""Lost attempts (issue 14): a worker killed mid-attempt costs no retry step; a crash loop ends in the dead letter."""

from __future__ import annotations

import time
from collections import Counter

import httpx
import psycopg

from tests.acceptance.conftest import Stack
from tests.acceptance.helpers import add_endpoint, send_event, wait_for_states
from tests.receiver import Holding, Received, Receiver
from tests.support import RelayProcess, wait_until

TIMEOUT = 3.0  # the endpoint's timeout_seconds
LEASE = TIMEOUT + 0.5  # + RELAY_LEASE_MARGIN
FIRST_STEP, SECOND_STEP = 2.0, 60.0
JITTER = 0.2
PROMPTLY = 2.0  # how soon after its lease expires a lost attempt is sent again
MAX_LOST_ATTEMPTS = 3  # RELAY_MAX_LOST_ATTEMPTS, left at its default
STACK_ENV = {"RELAY_LEASE_MARGIN": "0.5s", "RELAY_RETRY_SCHEDULE": "2s,60s", "RELAY_POLL_INTERVAL": "0.2"}


def live_worker(stack: Stack) -> RelayProcess:
    """The module's one running worker (the tests keep exactly one alive, so it holds every attempt)."""
    [alive] = [worker for worker in stack.workers if worker.proc.poll() is None]
    return alive


def replace_worker(stack: Stack) -> float:
    """kill -9 the running worker mid-attempt, start a fresh one, and return when the kill happened."""
    worker = live_worker(stack)
    worker.proc.kill()
    worker.proc.wait()
    killed_at = time.time()
    stack.start_worker()
    return killed_at


def test_a_killed_attempt_is_sent_again_after_its_lease_and_costs_no_retry_step(
    client: httpx.Client, stack: Stack, conninfo: str
) -> None:
    holding = Holding(seconds=2.5)  # shorter than the timeout: the worker never gives up on it by itself
    seen: Counter[str] = Counter()

    async def hold_then_fail_then_succeed(request: Received):
        seen[request.headers["webhook-id"]] += 1
        if seen[request.headers["webhook-id"]] == 1:
            await holding.hold()
            return 200, {}, b"too late: the worker that asked is dead"
        if seen[request.headers["webhook-id"]] == 2:
            return 500, {}, b"down"
        return 200, {}, b"ok"

    with Receiver(hold_then_fail_then_succeed) as receiver:
        try:
            add_endpoint(client, receiver.url(), timeout_seconds=TIMEOUT)
            event = send_event(client)
            wait_until(lambda: receiver.received(), timeout=10, what="the first request")
            killed_at = replace_worker(stack)
            wait_until(lambda: len(receiver.received()) >= 2, timeout=LEASE + PROMPTLY + 5,
                       what="the lost attempt to be sent again once its lease expired")
            wait_until(lambda: len(receiver.received()) >= 3, timeout=15,
                       what=f"the retry after the 500, due after the first step ({FIRST_STEP} s), not the second "
                            f"({SECOND_STEP} s): a lost attempt must not advance the schedule")
            [delivery] = wait_for_states(client, event["id"], ["succeeded"], timeout=10)
        finally:
            holding.release()
        first, second, third = (r.at for r in receiver.received())

    # Sent again once the lease (counted from the claim, just before the first request) ran out, and promptly.
    assert LEASE - 0.5 <= second - first, second - first
    assert second - killed_at <= LEASE + PROMPTLY, second - killed_at
    # The 500 was the first real failure: it waits the first step, jittered.
    assert FIRST_STEP * (1 - JITTER) - 0.1 <= third - second <= FIRST_STEP * (1 + JITTER) + 1.0, third - second
    assert (delivery["attempts"], delivery.get("lost_attempts")) == (2, 1), delivery
    log = delivery["attempt_log"]
    assert [(a["error_class"], a.get("lost")) for a in log] == [
        ("lease_expired", True), ("server_error", False), (None, False)
    ], log
    with psycopg.connect(conninfo, autocommit=True) as conn:
        columns = {row[0] for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'relay' AND table_name = %s",
            ("delivery_log",),
        )}
        assert "lost" in columns, f"relay.delivery_log has no column `lost`: {sorted(columns)}"
        rows = conn.execute(
            "SELECT error_class, lost FROM relay.delivery_log WHERE delivery_id = %s ORDER BY started_at",
            (delivery["id"],),
        ).fetchall()
    assert rows == [("lease_expired", True), ("server_error", False), (None, False)], rows


def test_a_delivery_lost_three_times_in_a_row_is_dead_and_in_the_dead_letter(
    client: httpx.Client, stack: Stack
) -> None:
    holding = Holding(seconds=10)  # longer than the timeout: only a kill ends these attempts

    async def hold_every_request(_: Received):
        await holding.hold()
        return 200, {}, b"too late"

    with Receiver(hold_every_request) as receiver:
        try:
            endpoint = add_endpoint(client, receiver.url(), timeout_seconds=TIMEOUT)
            event = send_event(client)
            for n in range(1, MAX_LOST_ATTEMPTS + 1):
                # Only one worker runs at a time, so the one running has this request in flight.
                wait_until(lambda n=n: len(receiver.received()) >= n, timeout=LEASE + PROMPTLY + 5,
                           what=f"request {n} (lost attempts so far: {n - 1})")
                replace_worker(stack)
            [delivery] = wait_for_states(client, event["id"], ["dead"], timeout=LEASE + PROMPTLY + 10)
        finally:
            holding.release()
        requests = len(receiver.received())

    assert (delivery.get("dead_reason"), delivery["attempts"], delivery.get("lost_attempts")) == (
        "lost_attempts", 0, MAX_LOST_ATTEMPTS
    ), delivery
    assert requests == MAX_LOST_ATTEMPTS, f"sent {requests} times: a crash loop must stop after {MAX_LOST_ATTEMPTS}"
    assert [(a["error_class"], a.get("lost")) for a in delivery["attempt_log"]] == [
        ("lease_expired", True)
    ] * MAX_LOST_ATTEMPTS, delivery["attempt_log"]
    dead_letter = client.get("/v1/dead-letter", params={"endpoint_id": endpoint["id"]}).json()["data"]
    assert [(d["id"], d.get("dead_reason")) for d in dead_letter] == [(delivery["id"], "lost_attempts")], dead_letter
