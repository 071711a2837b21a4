"""End to end: real API and worker processes deliver to a real receiver on 127.0.0.1."""

from __future__ import annotations

import json
from collections import Counter

import httpx
from standardwebhooks.webhooks import Webhook

from relay import __version__
from tests.receiver import Received, Receiver
from tests.support import wait_until


def add_endpoint(client: httpx.Client, url: str, **fields) -> dict:
    response = client.post("/v1/endpoints", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def delivery_states(client: httpx.Client, event_id: str) -> list[str]:
    return [d["status"] for d in client.get(f"/v1/events/{event_id}").json()["deliveries"]]


def test_delivery_verifies_with_standardwebhooks(client: httpx.Client) -> None:
    with Receiver() as receiver:
        endpoint = add_endpoint(client, receiver.url(), headers={"X-Customer": "acme"})
        payload = b'{"amount" : 1250, "currency":"eur",  "lines":[{"sku":"a"}]}'
        accepted = client.post("/v1/events", content=b'{"type":"invoice.paid","payload":' + payload + b"}").json()
        [request] = wait_until(receiver.received, what="the delivery")

    verified = Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert verified["id"] == accepted["id"] and verified["type"] == "invoice.paid"
    assert verified["data"] == json.loads(payload)
    assert payload in request.body  # the payload's exact bytes, whitespace and all
    assert request.headers["webhook-id"] == accepted["id"]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == f"Relay-Webhooks/{__version__}"
    assert request.headers["x-customer"] == "acme"
    wait_until(lambda: delivery_states(client, accepted["id"]) == ["succeeded"], what="succeeded state")
    [delivery] = client.get(f"/v1/events/{accepted['id']}").json()["deliveries"]
    [attempt] = delivery["attempt_log"]
    assert attempt["response_status"] == 200 and attempt["outcome"] == "succeeded" and attempt["response_body"] == "ok"


def test_fan_out_with_filters_reaches_exactly_the_matching_endpoints(client: httpx.Client) -> None:
    with Receiver() as receiver:
        add_endpoint(client, receiver.url("/all"))
        add_endpoint(client, receiver.url("/invoices"), event_types=["invoice.*"])
        add_endpoint(client, receiver.url("/paid"), event_types=["invoice.paid"])
        add_endpoint(client, receiver.url("/users"), event_types=["user.created"])
        paid = client.post("/v1/events", json={"type": "invoice.paid", "payload": {}}).json()
        user = client.post("/v1/events", json={"type": "user.created", "payload": {}}).json()
        assert (paid["deliveries"], user["deliveries"]) == (3, 2)
        wait_until(lambda: len(receiver.received()) >= 5, what="five deliveries")
        wait_until(lambda: set(delivery_states(client, user["id"])) == {"succeeded"}, what="all succeeded")
        got = Counter((r.path, r.headers["webhook-id"]) for r in receiver.received())
    assert got == Counter(
        {("/all", paid["id"]): 1, ("/invoices", paid["id"]): 1, ("/paid", paid["id"]): 1,
         ("/all", user["id"]): 1, ("/users", user["id"]): 1}
    )


def test_thousand_event_batch_is_delivered_exactly_once_per_endpoint(client: httpx.Client) -> None:
    with Receiver() as receiver:
        for path in ("/a", "/b", "/c"):
            add_endpoint(client, receiver.url(path))
        events = [{"type": "order.created", "payload": {"n": i}} for i in range(1000)]
        response = client.post("/v1/events/batch", json={"events": events})
        assert response.status_code == 202
        answers = response.json()["events"]
        assert len(answers) == 1000 and all(a["deliveries"] == 3 for a in answers)
        wait_until(lambda: len(receiver.received()) >= 3000, timeout=120, what="3000 deliveries")
        received = Counter((r.path, r.headers["webhook-id"]) for r in receiver.received())
    expected = {(path, a["id"]) for path in ("/a", "/b", "/c") for a in answers}
    assert set(received) == expected
    assert max(received.values()) == 1, "a delivery arrived twice under normal operation"
    by_id = {a["id"]: i for i, a in enumerate(answers)}
    for request in receiver.received()[:50]:
        body = json.loads(request.body)
        assert body["data"] == {"n": by_id[body["id"]]}  # each answer's id is its own event, in order


def test_failing_endpoint_retries_then_succeeds_with_attempts_logged(client: httpx.Client) -> None:
    calls: list[int] = []

    async def flaky(_: Received):
        calls.append(1)
        return (503, {}, b"busy") if len(calls) == 1 else (200, {}, b"fine")

    with Receiver(flaky) as receiver:
        add_endpoint(client, receiver.url())
        event = client.post("/v1/events", json={"type": "a.b", "payload": {}}).json()
        wait_until(lambda: delivery_states(client, event["id"]) == ["succeeded"], timeout=30, what="success after retry")
    [delivery] = client.get(f"/v1/events/{event['id']}").json()["deliveries"]
    assert [(a["attempt_number"], a["response_status"], a["outcome"]) for a in delivery["attempt_log"]] == [
        (1, 503, "retrying"), (2, 200, "succeeded")
    ]
    first = delivery["attempt_log"][0]
    assert first["error_class"] == "server_error" and first["response_body"] == "busy"
    assert first["next_attempt_at"] is not None


def test_permanent_failure_goes_dead_at_once(client: httpx.Client) -> None:
    async def reject(_: Received):
        return 400, {}, b"bad"

    with Receiver(reject) as receiver:
        add_endpoint(client, receiver.url())
        event = client.post("/v1/events", json={"type": "a.b", "payload": {}}).json()
        wait_until(lambda: delivery_states(client, event["id"]) == ["dead"], what="dead")
        assert len(receiver.received()) == 1


def test_retries_run_out_then_dead(client: httpx.Client) -> None:
    async def broken(_: Received):
        return 500, {}, b"down"

    with Receiver(broken) as receiver:
        add_endpoint(client, receiver.url())
        event = client.post("/v1/events", json={"type": "a.b", "payload": {}}).json()
        wait_until(lambda: delivery_states(client, event["id"]) == ["dead"], timeout=30, what="dead after retries")
        assert len(receiver.received()) == 3  # the first attempt and the two of the test schedule
    [delivery] = client.get(f"/v1/events/{event['id']}").json()["deliveries"]
    assert [a["outcome"] for a in delivery["attempt_log"]] == ["retrying", "retrying", "dead"]


def test_redirect_is_a_failure_and_not_followed(client: httpx.Client) -> None:
    async def redirect(_: Received):
        return 302, {"Location": "/elsewhere"}, b""

    with Receiver(redirect) as receiver:
        add_endpoint(client, receiver.url())
        event = client.post("/v1/events", json={"type": "a.b", "payload": {}}).json()
        wait_until(lambda: client.get(f"/v1/events/{event['id']}").json()["deliveries"][0]["attempt_log"], what="an attempt")
        assert all(r.path == "/hook" for r in receiver.received())
    attempt = client.get(f"/v1/events/{event['id']}").json()["deliveries"][0]["attempt_log"][0]
    assert attempt["error_class"] == "redirect" and attempt["outcome"] == "retrying"


def test_unreachable_endpoint_logs_a_network_error(client: httpx.Client) -> None:
    from tests.support import free_port

    add_endpoint(client, f"http://127.0.0.1:{free_port()}/nobody-home")
    event = client.post("/v1/events", json={"type": "a.b", "payload": {}}).json()
    attempts = wait_until(
        lambda: client.get(f"/v1/events/{event['id']}").json()["deliveries"][0]["attempt_log"], what="an attempt"
    )
    assert attempts[0]["error_class"] == "network" and attempts[0]["response_status"] is None


def test_slow_endpoint_times_out(client: httpx.Client) -> None:
    import asyncio

    async def slow(_: Received):
        await asyncio.sleep(3)  # the receiver is slow on purpose; the test itself polls
        return 200, {}, b""

    with Receiver(slow) as receiver:
        add_endpoint(client, receiver.url(), timeout_seconds=1)
        event = client.post("/v1/events", json={"type": "a.b", "payload": {}}).json()
        attempts = wait_until(
            lambda: client.get(f"/v1/events/{event['id']}").json()["deliveries"][0]["attempt_log"], what="an attempt"
        )
    assert attempts[0]["error_class"] == "timeout"
    assert 900 <= attempts[0]["duration_ms"] < 2500
