"""Circuit breaker, rate limit, FIFO and pause, enforced across two worker processes (F14-F17)."""

from __future__ import annotations

from collections import Counter

import httpx

from tests.acceptance.helpers import add_endpoint, deliveries_of, send_event
from tests.receiver import Received, Receiver
from tests.support import wait_until

WORKERS = 2
STACK_ENV = {
    "RELAY_RETRY_SCHEDULE": "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s",
    "RELAY_CIRCUIT_FAILURE_THRESHOLD": "3",
    "RELAY_CIRCUIT_COOLDOWN": "1s",
    "RELAY_CIRCUIT_MAX_COOLDOWN": "2s",
}


def stats(client: httpx.Client, endpoint_id: str) -> dict:
    return client.get(f"/v1/endpoints/{endpoint_id}/stats").json()


def test_circuit_opens_waits_without_burning_attempts_probes_and_closes(client: httpx.Client) -> None:
    healthy = {"now": False}

    async def switchable(_: Received):
        return (200, {}, b"ok") if healthy["now"] else (500, {}, b"down")

    with Receiver(switchable) as receiver:
        endpoint = add_endpoint(client, receiver.url())
        events = [send_event(client, payload={"n": i}) for i in range(3)]
        opened = wait_until(lambda: (s := stats(client, endpoint["id"]))["circuit"]["state"] == "open" and s,
                            what="the circuit to open")
        assert opened["circuit"]["consecutive_failures"] >= 3
        hits_when_opened = len(receiver.received())
        # While open, deliveries wait for the circuit, not for their retry schedule.
        wait_until(lambda: any(d["held_by"] == "circuit" for e in events for d in deliveries_of(client, e["id"])),
                   what="a delivery held by the circuit")
        # Two more probes fail: half-open lets exactly one request through each time.
        wait_until(lambda: len(receiver.received()) >= hits_when_opened + 2, timeout=20, what="two probes")
        probes_window = len(receiver.received()) - hits_when_opened
        attempts_during = sum(d["attempts"] for e in events for d in deliveries_of(client, e["id"]))
        healthy["now"] = True
        for event in events:
            wait_until(lambda e=event: [d["status"] for d in deliveries_of(client, e["id"])] == ["succeeded"],
                       timeout=30, what="success after the circuit closed")
        closed = stats(client, endpoint["id"])
    assert closed["circuit"]["state"] == "closed" and closed["circuit"]["consecutive_failures"] == 0
    # Three deliveries retrying every second would have made ~3 requests a second; the open circuit
    # let through one probe per cool-down, and the deliveries' attempt counts show it.
    assert probes_window <= 4, probes_window
    assert attempts_during <= 3 + probes_window + 3, attempts_during


def test_rate_limit_holds_across_two_workers(client: httpx.Client) -> None:
    limit, count = 4, 20
    with Receiver() as receiver:
        add_endpoint(client, receiver.url(), rate_limit=limit)
        client.post("/v1/events/batch", json={"events": [{"type": "a.b", "payload": {"n": i}} for i in range(count)]}).raise_for_status()
        wait_until(lambda: len(receiver.received()) >= count, timeout=30, what="all deliveries")
        times = sorted(r.at for r in receiver.received())
    span = times[-1] - times[0]
    # A window of one second never holds more than the limit twice over (fixed windows can meet at an edge),
    # and the whole run cannot be faster than the limit allows.
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 2 * limit, busiest
    assert span >= (count - 2 * limit) / limit, span


def test_fifo_delivers_in_order_even_through_a_retry(client: httpx.Client) -> None:
    failed_once: set[str] = set()
    arrivals: list[str] = []

    async def fail_third_once(request: Received):
        body_n = request.body.split(b'"n":')[1].split(b"}")[0]
        arrivals.append(body_n.decode())
        if body_n == b"3" and "3" not in failed_once:
            failed_once.add("3")
            return 503, {}, b"later"
        return 200, {}, b"ok"

    with Receiver(fail_third_once) as receiver:
        add_endpoint(client, receiver.url(), fifo=True)
        count = 12
        client.post("/v1/events/batch", json={"events": [{"type": "a.b", "payload": {"n": i}} for i in range(6)]}).raise_for_status()
        for i in range(6, count):
            send_event(client, payload={"n": i})
        wait_until(lambda: len(receiver.received()) >= count + 1, timeout=60, what="every event (and one retry)")
    order = [int(n) for n in arrivals]
    assert order == [0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11], order


def test_pause_holds_then_resume_releases_oldest_first(client: httpx.Client) -> None:
    with Receiver() as receiver:
        endpoint = add_endpoint(client, receiver.url(), rate_limit=3)
        assert client.post(f"/v1/endpoints/{endpoint['id']}/pause").json()["paused"] is True
        events = [send_event(client, payload={"n": i}) for i in range(9)]
        for event in events:
            [delivery] = deliveries_of(client, event["id"])
            assert (delivery["status"], delivery["held_by"], delivery["attempts"]) == ("pending", "pause", 0)
        assert stats(client, endpoint["id"])["deliveries_today"]["held"] == 9
        assert client.post(f"/v1/endpoints/{endpoint['id']}/resume").json()["paused"] is False
        wait_until(lambda: len(receiver.received()) >= 9, timeout=30, what="released deliveries")
        arrived = [r.headers["webhook-id"] for r in sorted(receiver.received(), key=lambda r: r.at)]
    ids = [e["id"] for e in events]
    # Three a second: each group of three arrivals is the next three events in order.
    assert [set(arrived[i:i + 3]) for i in (0, 3, 6)] == [set(ids[i:i + 3]) for i in (0, 3, 6)]
    assert Counter(arrived) == Counter(ids)


def test_fifo_keeps_going_when_events_arrive_one_by_one_as_fast_as_they_can(client: httpx.Client) -> None:
    # Each delivery's recording hands the endpoint's next one over. A claim running at the same moment
    # held that next one behind the one being recorded, after the recording had looked: the endpoint
    # stopped for good after a few deliveries (seen with one worker and with two).
    arrivals: list[int] = []

    async def note(request: Received):
        arrivals.append(int(request.body.split(b'"n":')[1].split(b"}")[0]))
        return 200, {}, b"ok"

    count = 40
    with Receiver(note) as receiver:
        add_endpoint(client, receiver.url(), fifo=True)
        for i in range(count):
            send_event(client, payload={"n": i})
        wait_until(lambda: len(receiver.received()) >= count, timeout=60, what="every event, in order")
    assert arrivals == list(range(count)), arrivals
