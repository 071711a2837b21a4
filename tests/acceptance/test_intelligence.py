"""The rule analyser on attempt histories made by real receivers that misbehave in each way (F33),
and anomaly alerts from a real endpoint that degrades and recovers (F36)."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from tests.acceptance.helpers import add_endpoint, send_event
from tests.receiver import RESET, Received, Receiver
from tests.support import free_port, wait_until

STACK_ENV = {"RELAY_RETRY_SCHEDULE": "100ms,100ms", "RELAY_CIRCUIT_FAILURE_THRESHOLD": "1000"}


def answering(status: int, headers: dict[str, str] | None = None):
    async def behave(_: Received):
        return status, headers or {}, b"nope"

    return behave


async def hang(_: Received):
    await asyncio.sleep(3)  # slower than the endpoint's 1 s timeout, on purpose
    return 200, {}, b""


async def reset(_: Received):
    return RESET


CASES = {
    "server_error": (answering(503), "/"),
    "auth": (answering(401), "/"),
    "rate_limited": (answering(429), "/"),
    "gone": (answering(410), "/"),
    "payload": (answering(422), "/"),
    "not_found": (answering(404), "/"),
    "redirect": (answering(301, {"Location": "https://elsewhere.example.com/"}), "/"),
    "timeout": (hang, "/"),
    "network": (reset, "/"),
}


def analyse_when_ready(client: httpx.Client, endpoint_id: str, attempts: int) -> dict:
    def ready():
        body = client.post(f"/v1/ai/analyse-failure/{endpoint_id}").json()
        return body if body["evidence"]["attempts"] >= attempts else None

    return wait_until(ready, timeout=30, what=f"{attempts} attempts to analyse")


@pytest.mark.parametrize("expected", sorted(CASES))
def test_each_failure_pattern_is_recognised(client: httpx.Client, expected: str) -> None:
    behaviour, path = CASES[expected]
    with Receiver(behaviour) as receiver:
        endpoint = add_endpoint(client, receiver.url(path), timeout_seconds=1)
        send_event(client)
        analysis = analyse_when_ready(client, endpoint["id"], 1 if expected in ("gone", "payload", "auth", "not_found") else 3)
    assert analysis["engine"] == "rules"
    assert analysis["pattern"] == expected, analysis
    assert analysis["patterns"][0]["pattern"] == expected and analysis["evidence"]["failures"] >= 1
    assert analysis["summary"] and analysis["likely_cause"] and analysis["recommended_action"]
    assert 0 < analysis["confidence"] <= 1


def test_connection_refused(client: httpx.Client) -> None:
    endpoint = add_endpoint(client, f"http://127.0.0.1:{free_port()}/nobody")
    send_event(client)
    analysis = analyse_when_ready(client, endpoint["id"], 3)
    assert analysis["pattern"] == "connection_refused" and analysis["severity"] == "critical"


def test_tls_against_a_plain_http_receiver(client: httpx.Client) -> None:
    with Receiver() as receiver:
        endpoint = add_endpoint(client, f"https://127.0.0.1:{receiver.port}/hook")  # https:// to a plain HTTP server
        send_event(client)
        analysis = analyse_when_ready(client, endpoint["id"], 3)
    assert analysis["pattern"] == "tls", analysis


def test_dns_for_a_name_that_does_not_resolve(client: httpx.Client) -> None:
    try:
        socket.getaddrinfo("relay-test.invalid", 80)
        pytest.skip("this machine resolves .invalid names")
    except OSError:
        pass
    endpoint = add_endpoint(client, "http://relay-test.invalid/hook")
    send_event(client)
    analysis = analyse_when_ready(client, endpoint["id"], 3)
    assert analysis["pattern"] == "dns", analysis


def test_timeout_evidence_compares_durations_with_the_timeout(client: httpx.Client) -> None:
    with Receiver(hang) as receiver:
        endpoint = add_endpoint(client, receiver.url(), timeout_seconds=1)
        send_event(client)
        analysis = analyse_when_ready(client, endpoint["id"], 3)
    assert analysis["evidence"]["timeout_ms"] == 1000 and analysis["evidence"]["p95_duration_ms"] >= 900
    assert "1000 ms" in analysis["likely_cause"]


def test_change_point_after_a_healthy_run(client: httpx.Client) -> None:
    state = {"up": True}

    async def flip(_: Received):
        return (200, {}, b"") if state["up"] else (500, {}, b"")

    with Receiver(flip) as receiver:
        endpoint = add_endpoint(client, receiver.url())
        for _ in range(3):
            send_event(client)
        analyse_when_ready(client, endpoint["id"], 3)
        state["up"] = False
        send_event(client)
        analysis = analyse_when_ready(client, endpoint["id"], 6)
    assert analysis["pattern"] == "server_error"
    assert analysis["evidence"]["last_success"] is not None and analysis["evidence"]["failing_since"] is not None
    assert "it worked before that" in analysis["summary"]


def test_healthy_and_unknown_endpoints(client: httpx.Client) -> None:
    with Receiver() as receiver:
        endpoint = add_endpoint(client, receiver.url())
        assert client.post(f"/v1/ai/analyse-failure/{endpoint['id']}").json()["pattern"] == "no_data"
        send_event(client)
        assert analyse_when_ready(client, endpoint["id"], 1)["pattern"] == "healthy"
    assert client.post("/v1/ai/analyse-failure/ep_nope").status_code == 404


def test_anomaly_alert_opens_once_and_resolves(client: httpx.Client, conninfo: str, db) -> None:
    from datetime import UTC, datetime, timedelta

    from relay.ai.anomalies import scan
    from relay.db.pool import open_pool

    state = {"up": True}

    async def flip(_: Received):
        return (200, {}, b"") if state["up"] else (503, {}, b"")

    def run_scan(window: float) -> dict[str, int]:
        async def go():
            pool = await open_pool(conninfo, max_size=2)
            try:
                return await scan(pool, window_seconds=window)
            finally:
                await pool.close()

        return asyncio.run(go())

    def alerts() -> list[dict]:
        return client.get("/v1/ai/alerts").json()["data"]

    with Receiver(flip) as receiver:
        endpoint = add_endpoint(client, receiver.url())
        tenant_id = db.execute("SELECT tenant_id FROM relay.endpoints WHERE id = %s", (endpoint["id"],)).fetchone()[0]
        # A healthy baseline: the previous six hours, 100 successful attempts each (as the workers would have rolled up).
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        for back in range(1, 7):
            db.execute(
                "INSERT INTO relay.delivery_rollups (tenant_id, endpoint_id, hour, attempts, succeeded, latency_buckets)"
                " VALUES (%s, %s, %s, 100, 100, '{100,0,0,0,0,0,0,0,0,0,0,0,0}')",
                (tenant_id, endpoint["id"], hour - timedelta(hours=back)),
            )
        state["up"] = False
        for _ in range(4):
            send_event(client)
        wait_until(lambda: len(receiver.received()) >= 12, what="degraded attempts")
        run_scan(window=120)
        run_scan(window=120)  # the same ongoing anomaly again: refreshed, not duplicated
        [alert] = [a for a in alerts() if a["endpoint_id"] == endpoint["id"]]
        assert (alert["kind"], alert["status"], alert["engine"]) == ("failure_rate", "open", "rules")
        assert alert["evidence"]["recent_failure_rate"] == 1.0 and alert["evidence"]["baseline_failure_rate"] == 0.0
        state["up"] = True
        for _ in range(6):
            send_event(client)
        wait_until(lambda: len(receiver.received()) >= 18, what="recovered attempts")
        def resolved_now() -> bool:
            run_scan(window=1.5)
            return all(a["status"] == "resolved" for a in alerts() if a["endpoint_id"] == endpoint["id"])

        wait_until(resolved_now, timeout=20, interval=0.5, what="the alert to resolve")
    [resolved] = [a for a in alerts() if a["endpoint_id"] == endpoint["id"]]
    assert resolved["status"] == "resolved" and resolved["resolved_at"]
    still_open = client.get("/v1/ai/alerts", params={"status": "open"}).json()["data"]
    assert all(a["endpoint_id"] != endpoint["id"] for a in still_open)
