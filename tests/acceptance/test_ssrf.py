"""SSRF protection with no allow-list (F18): refused at registration and at connect time."""

from __future__ import annotations

import httpx

from tests.acceptance.helpers import add_endpoint, send_event, wait_for_states
from tests.receiver import Receiver

STACK_ENV = {"RELAY_ALLOWED_NETWORKS": ""}  # production default: public addresses only


def test_private_ip_literals_are_refused_at_registration(client: httpx.Client) -> None:
    for url in ("http://127.0.0.1:8080/hook", "http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data",
                "http://[::1]/hook", "http://192.168.1.10/", "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/"):
        response = client.post("/v1/endpoints", json={"url": url})
        assert response.status_code == 422, url
        assert "RELAY_ALLOWED_NETWORKS" in response.json()["detail"]


def test_a_name_resolving_to_loopback_is_refused_when_connecting(client: httpx.Client) -> None:
    with Receiver() as receiver:
        # "localhost" is a name, not a literal: only the resolved address tells it is this machine.
        endpoint = add_endpoint(client, f"http://localhost:{receiver.port}/hook")
        event = send_event(client)
        [delivery] = wait_for_states(client, event["id"], ["dead"])
        assert receiver.received() == []
    [attempt] = delivery["attempt_log"]  # refused addresses are permanent: no retries
    assert attempt["error_class"] == "blocked" and "127.0.0.1" in attempt["error_message"]
    assert endpoint["url"].startswith("http://localhost:")
