"""Dead letter, replay, recover, secret rotation, verification and test pings (F8, F12, F13, F19, F20)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
from standardwebhooks.webhooks import Webhook

from tests.acceptance.helpers import add_endpoint, deliveries_of, send_event, wait_for_states
from tests.receiver import Received, Receiver
from tests.support import wait_until

STACK_ENV = {"RELAY_RETRY_SCHEDULE": "200ms", "RELAY_CIRCUIT_FAILURE_THRESHOLD": "1000"}


def switchable():
    state = {"up": False}

    async def behave(_: Received):
        return (200, {}, b"ok") if state["up"] else (500, {}, b"down")

    return state, behave


def dead_letter(client: httpx.Client, **params) -> list[dict]:
    return client.get("/v1/dead-letter", params=params).json()["data"]


def wait_operation(client: httpx.Client, operation_id: str) -> dict:
    return wait_until(
        lambda: (op := client.get(f"/v1/operations/{operation_id}").json())["status"] in ("succeeded", "failed") and op,
        what=f"operation {operation_id}",
    )


def test_dead_letter_bulk_replay_replays_each_once_and_discard_hides(client: httpx.Client) -> None:
    state, behave = switchable()
    with Receiver(behave) as receiver:
        a = add_endpoint(client, receiver.url("/a"))
        b = add_endpoint(client, receiver.url("/b"), event_types=["only.b"])
        events = [send_event(client, payload={"n": i}) for i in range(4)]
        other = send_event(client, "only.b")
        for event in events:
            wait_for_states(client, event["id"], ["dead"])
        wait_for_states(client, other["id"], ["dead", "dead"])
        assert len(dead_letter(client)) == 6
        assert {d["event_id"] for d in dead_letter(client, endpoint_id=b["id"])} == {other["id"]}
        assert len(dead_letter(client, event_type="only.b")) == 2
        # Discard one of endpoint a's; it stays in the log but leaves the dead letter.
        discarded = dead_letter(client, endpoint_id=a["id"])[0]
        assert client.delete(f"/v1/dead-letter/{discarded['id']}").status_code == 204
        assert client.delete(f"/v1/dead-letter/{discarded['id']}").status_code == 404
        assert discarded["id"] not in {d["id"] for d in dead_letter(client)}

        state["up"] = True
        before = len(receiver.received())
        response = client.post("/v1/dead-letter/replay", json={"endpoint_id": a["id"]})
        assert response.status_code == 202
        operation = wait_operation(client, response.json()["id"])
        assert (operation["status"], operation["total"], operation["replayed"]) == ("succeeded", 4, 4)
        wait_until(lambda: len(receiver.received()) >= before + 4, what="replayed deliveries")
        # Running the same operation's job again replays nothing more.
        again = client.post("/v1/dead-letter/replay", json={"endpoint_id": a["id"]}).json()
        assert wait_operation(client, again["id"])["total"] == 0
        replayed = [r for r in receiver.received()[before:] if r.path == "/a"]
    assert len(replayed) == 4
    # Endpoint a takes every type: its five dead deliveries, less the discarded one.
    assert {r.headers["webhook-id"] for r in replayed} == ({e["id"] for e in events} | {other["id"]}) - {discarded["event_id"]}
    assert {d["endpoint_id"] for d in dead_letter(client)} == {b["id"]}


def test_replay_a_delivery_and_an_event(client: httpx.Client) -> None:
    with Receiver() as receiver:
        add_endpoint(client, receiver.url("/one"))
        add_endpoint(client, receiver.url("/two"))
        event = send_event(client)
        first, second = wait_for_states(client, event["id"], ["succeeded", "succeeded"])
        replay = client.post(f"/v1/deliveries/{first['id']}/replay")
        assert replay.status_code == 202 and replay.json()["replay_of"] == first["id"]
        wait_for_states(client, event["id"], ["succeeded"] * 3)
        again = client.post(f"/v1/events/{event['id']}/replay")
        assert again.status_code == 202 and len(again.json()["deliveries"]) == 2
        wait_until(lambda: len(receiver.received()) >= 5, what="two plus three deliveries")
        deliveries = wait_for_states(client, event["id"], ["succeeded"] * 5)
        assert all(r.headers["webhook-id"] == event["id"] for r in receiver.received())
    assert sorted(d["replay_of"] or "" for d in deliveries).count("") == 2
    assert client.post("/v1/deliveries/dlv_nope/replay").status_code == 404


def test_replaying_an_open_delivery_is_a_conflict(client: httpx.Client) -> None:
    endpoint = add_endpoint(client, "https://example.com/hook")
    client.post(f"/v1/endpoints/{endpoint['id']}/pause").raise_for_status()
    event = send_event(client)
    [delivery] = deliveries_of(client, event["id"])
    response = client.post(f"/v1/deliveries/{delivery['id']}/replay")
    assert response.status_code == 409 and "pending" in response.json()["detail"]


def test_recover_replays_failures_since_a_time(client: httpx.Client) -> None:
    state, behave = switchable()
    with Receiver(behave) as receiver:
        endpoint = add_endpoint(client, receiver.url())
        events = [send_event(client, payload={"n": i}) for i in range(3)]
        for event in events:
            wait_for_states(client, event["id"], ["dead"])
        state["up"] = True
        since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        response = client.post(f"/v1/endpoints/{endpoint['id']}/recover", json={"since": since})
        assert response.status_code == 202 and response.json()["kind"] == "recover_endpoint"
        assert wait_operation(client, response.json()["id"])["replayed"] == 3
        for event in events:
            wait_for_states(client, event["id"], ["dead", "succeeded"])
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    nothing = client.post(f"/v1/endpoints/{endpoint['id']}/recover", json={"since": future}).json()
    assert wait_operation(client, nothing["id"])["total"] == 0


def test_secret_rotation_signs_with_both_secrets_during_grace(client: httpx.Client) -> None:
    with Receiver() as receiver:
        endpoint = add_endpoint(client, receiver.url())
        old = endpoint["secret"]
        rotated = client.post(f"/v1/endpoints/{endpoint['id']}/rotate-secret", json={}).json()
        new = rotated["key"]
        assert new != old and new.startswith("whsec_")
        valid_until = datetime.fromisoformat(rotated["previous_valid_until"])
        assert timedelta(hours=23) < valid_until - datetime.now(UTC) <= timedelta(hours=24)
        assert client.get(f"/v1/endpoints/{endpoint['id']}/secret").json()["key"] == new
        send_event(client)
        [request] = wait_until(receiver.received, what="a delivery")
        assert len(request.headers["webhook-signature"].split(" ")) == 2
        assert Webhook(old).verify(request.body, request.headers)["type"] == "a.b"
        assert Webhook(new).verify(request.body, request.headers)["type"] == "a.b"
        # With no grace period the old secret stops signing at once.
        newest = client.post(f"/v1/endpoints/{endpoint['id']}/rotate-secret", json={"grace_period_seconds": 0}).json()["key"]
        send_event(client)
        wait_until(lambda: len(receiver.received()) >= 2, what="a second delivery")
        second = receiver.received()[1]
    assert len(second.headers["webhook-signature"].split(" ")) == 1
    assert Webhook(newest).verify(second.body, second.headers)


def test_legacy_signature_header(client: httpx.Client) -> None:
    import hashlib
    import hmac

    with Receiver() as receiver:
        endpoint = add_endpoint(client, receiver.url(), legacy_signature=True)
        send_event(client)
        [request] = wait_until(receiver.received, what="a delivery")
    expected = "sha256=" + hmac.new(endpoint["secret"].encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-relay-signature"] == expected


def test_verification_challenge_gates_events(client: httpx.Client) -> None:
    async def echo(request: Received):
        body = json.loads(request.body)
        if body["type"] == "relay.verification":
            return 200, {"content-type": "application/json"}, json.dumps({"challenge": body["data"]["challenge"]}).encode()
        return 200, {}, b"ok"

    async def ignore(_: Received):
        return 200, {}, b"hello"

    with Receiver(echo) as good, Receiver(ignore) as bad:
        verified = add_endpoint(client, good.url(), verify=True)
        refused = add_endpoint(client, bad.url(), verify=True)
        assert verified["verification"] == "pending"
        wait_until(lambda: client.get(f"/v1/endpoints/{verified['id']}").json()["verification"] == "verified",
                   what="verification")
        failed = wait_until(
            lambda: (e := client.get(f"/v1/endpoints/{refused['id']}").json())["verification"] == "failed" and e,
            what="failed verification",
        )
        assert "challenge" in failed["verification_error"]
        challenge = json.loads(good.received()[0].body)
        assert Webhook(verified["secret"]).verify(good.received()[0].body, good.received()[0].headers)
        assert challenge["type"] == "relay.verification"
        event = send_event(client)
        assert event["deliveries"] == 1  # only the verified endpoint
        wait_until(lambda: len(good.received()) == 2, what="the event at the verified endpoint")
        assert client.post(f"/v1/endpoints/{refused['id']}/test").status_code == 409


def test_test_ping_reaches_only_that_endpoint(client: httpx.Client) -> None:
    with Receiver() as receiver:
        target = add_endpoint(client, receiver.url("/target"), event_types=["something.else"])
        add_endpoint(client, receiver.url("/other"))
        response = client.post(f"/v1/endpoints/{target['id']}/test")
        assert response.status_code == 202 and response.json()["deliveries"] == 1
        [request] = wait_until(receiver.received, what="the ping")
    assert request.path == "/target"
    assert json.loads(request.body)["type"] == "relay.ping"
    assert client.post("/v1/endpoints/ep_nope/test").status_code == 404
