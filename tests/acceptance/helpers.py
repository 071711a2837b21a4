"""HTTP helpers shared by the acceptance tests."""

from __future__ import annotations

import httpx

from tests.support import wait_until


def add_endpoint(client: httpx.Client, url: str, **fields) -> dict:
    response = client.post("/v1/endpoints", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def send_event(client: httpx.Client, event_type: str = "a.b", payload: dict | None = None, **fields) -> dict:
    response = client.post("/v1/events", json={"type": event_type, "payload": payload or {}, **fields})
    assert response.status_code == 202, response.text
    return response.json()


def deliveries_of(client: httpx.Client, event_id: str) -> list[dict]:
    return client.get(f"/v1/events/{event_id}").json()["deliveries"]


def wait_for_states(client: httpx.Client, event_id: str, states: list[str], timeout: float = 30) -> list[dict]:
    """Wait until the event's deliveries have exactly these states (in any order)."""
    return wait_until(
        lambda: (d := deliveries_of(client, event_id)) and sorted(x["status"] for x in d) == sorted(states) and d,
        timeout=timeout,
        what=f"deliveries of {event_id} to be {states}",
    )
