"""Operating Relay with several processes: /metrics, stats, operational webhooks, logs without secrets (F26-F32)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.acceptance.conftest import Stack
from tests.acceptance.helpers import add_endpoint, send_event, wait_for_states
from tests.receiver import Received, Receiver
from tests.support import REPO, RelayProcess, free_port, wait_for_http, wait_until

WORKERS = 2
OPERATOR_SECRET = "whsec_" + "b3BlcmF0b3Itc2VjcmV0LWZvci10ZXN0cw=="


@pytest.fixture(scope="module")
def operator_receiver():
    with Receiver() as receiver:
        yield receiver


def stack_env(request: pytest.FixtureRequest) -> dict[str, str]:
    receiver = request.getfixturevalue("operator_receiver")
    return {
        "RELAY_RETRY_SCHEDULE": "200ms",
        "RELAY_CIRCUIT_FAILURE_THRESHOLD": "1000",
        "RELAY_OPERATOR_WEBHOOK_URL": receiver.url("/operator"),
        "RELAY_OPERATOR_WEBHOOK_SECRET": OPERATOR_SECRET,
        "RELAY_LOG_LEVEL": "debug",
    }


def metric(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name + labels)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match, f"{name}{labels} not in /metrics"
    return float(match.group(1))


@pytest.fixture(scope="module")
def second_api(stack: Stack):
    port = free_port()
    api = RelayProcess(["api", "--host", "127.0.0.1", "--port", str(port)], stack.env, stack.logs / "api-2.log")
    wait_for_http(f"http://127.0.0.1:{port}/health", api)
    yield f"http://127.0.0.1:{port}"
    api.stop()


def test_metrics_agree_across_processes_and_count_what_happened(stack: Stack, second_api: str, client: httpx.Client) -> None:
    def scrape(base: str) -> str:
        response = httpx.get(f"{base}/metrics")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        return response.text

    before = scrape(stack.base_url)

    async def flaky(request: Received):
        return (200, {}, b"") if request.path == "/ok" else (400, {}, b"no")

    with Receiver(flaky) as receiver:
        add_endpoint(client, receiver.url("/ok"))
        add_endpoint(client, receiver.url("/bad"))
        events = [send_event(client) for _ in range(5)]
        for event in events:
            wait_for_states(client, event["id"], ["succeeded", "dead"])
    first, second = scrape(stack.base_url), scrape(second_api)
    for name, labels in (("relay_deliveries_total", '{status="succeeded"}'), ("relay_deliveries_total", '{status="dead"}'),
                         ("relay_events_ingested_total", ""), ("relay_delivery_duration_seconds_count", "")):
        assert metric(first, name, labels) == metric(second, name, labels), name  # the same from any process
    assert metric(first, "relay_events_ingested_total") - metric(before, "relay_events_ingested_total") >= 5
    assert metric(first, "relay_deliveries_total", '{status="succeeded"}') - metric(before, "relay_deliveries_total", '{status="succeeded"}') >= 5
    assert metric(first, "relay_deliveries_total", '{status="dead"}') - metric(before, "relay_deliveries_total", '{status="dead"}') >= 5
    assert metric(first, "relay_delivery_duration_seconds_bucket", '{le="+Inf"}') == metric(first, "relay_delivery_duration_seconds_count")
    for gauge in ("relay_queue_depth", "relay_queue_lag_seconds", "relay_circuit_open"):
        assert metric(first, gauge) >= 0
    assert "relay_http_requests_total" in first  # per-process HTTP metrics


def test_stats_report_today_for_the_tenant_and_the_endpoint(client: httpx.Client) -> None:
    async def answer(request: Received):
        return (200, {}, b"") if request.path == "/ok" else (500, {}, b"down")

    with Receiver(answer) as receiver:
        good = add_endpoint(client, receiver.url("/ok"))
        bad = add_endpoint(client, receiver.url("/down"))
        events = [send_event(client) for _ in range(4)]
        for event in events:
            wait_for_states(client, event["id"], ["succeeded", "dead"])
    stats = client.get("/v1/stats").json()
    assert stats["endpoints"]["total"] == 2 and stats["events_today"] == 4
    today = stats["deliveries_today"]
    assert today["succeeded"] == 4 and today["dead"] == 4 and today["attempts"] == 12  # 4 + 4 × (1 + one retry)
    assert stats["success_rate_today"] == 0.5 and stats["dead_letter"] == 4
    assert stats["latency_today"]["p50_ms"] is not None
    assert {f["endpoint_id"] for f in stats["recent_failures"]} == {bad["id"]}
    good_stats = client.get(f"/v1/endpoints/{good['id']}/stats").json()
    assert good_stats["deliveries_today"]["succeeded"] == 4 and good_stats["success_rate_today"] == 1.0
    assert good_stats["circuit"]["state"] == "closed" and good_stats["recent_failures"] == []


def test_operational_webhooks_are_signed_deliveries(client: httpx.Client, operator_receiver: Receiver) -> None:
    async def gone(_: Received):
        return 410, {}, b"gone"

    with Receiver(gone) as receiver:
        endpoint = add_endpoint(client, receiver.url())
        event = send_event(client)
        wait_for_states(client, event["id"], ["dead"])

    def reports() -> list[dict]:
        import json

        return [json.loads(r.body) for r in operator_receiver.received()
                if json.loads(r.body)["data"].get("endpoint_id") == endpoint["id"]]

    found = wait_until(lambda: len(reports()) >= 2 and reports(), what="delivery.dead and endpoint.disabled")
    assert {r["type"] for r in found} == {"delivery.dead", "endpoint.disabled"}
    disabled = next(r for r in found if r["type"] == "endpoint.disabled")
    assert disabled["data"]["reason"] == "gone" and disabled["data"]["url"] == receiver.url()
    dead = next(r for r in found if r["type"] == "delivery.dead")
    assert dead["data"]["event_id"] == event["id"] and dead["data"]["last_status"] == 410
    for request in operator_receiver.received():
        Webhook(OPERATOR_SECRET).verify(request.body, request.headers)  # signed like any delivery


def test_secrets_never_reach_the_logs(stack: Stack, client: httpx.Client, relay_stack: str) -> None:
    password = "a password that must never be logged"
    tokens = httpx.post(f"{relay_stack}/v1/auth/register", json={"email": "logs@example.com", "password": password}).json()
    httpx.post(f"{relay_stack}/v1/auth/login", json={"email": "logs@example.com", "password": "wrong " + password})
    key = client.post("/v1/api-keys", json={"name": "logged?"}).json()["key"]
    with Receiver() as receiver:
        endpoint = add_endpoint(client, receiver.url("/fail-once"), headers={"Authorization": "Bearer customer-token-123"})
        event = send_event(client)
        wait_until(receiver.received, what="a delivery")
    wait_for_states(client, event["id"], ["succeeded"])
    httpx.get(f"{relay_stack}/v1/endpoints", headers={"Authorization": "Bearer " + key + "garbled"})
    logs = "".join(Path(p).read_text(errors="replace") for p in stack.logs.glob("*.log"))
    assert "delivery" in logs  # the logs are there, at debug level
    for secret in (password, tokens["access_token"], tokens["refresh_token"], key, endpoint["secret"],
                   endpoint["secret"].removeprefix("whsec_"), "customer-token-123", OPERATOR_SECRET):
        assert secret not in logs, "a secret reached the logs"


def test_failed_delivery_log_lines_carry_every_id(stack: Stack, client: httpx.Client) -> None:
    async def down(_: Received):
        return 503, {}, b""

    with Receiver(down) as receiver:
        add_endpoint(client, receiver.url())
        event = send_event(client)
        wait_for_states(client, event["id"], ["dead"])
    lines = [line for p in stack.logs.glob("worker-*.log") for line in Path(p).read_text().splitlines()
             if event["id"] in line and "delivery.attempt_failed" in line]
    assert lines
    import json

    record = json.loads(lines[0])
    assert {"tenant_id", "endpoint_id", "event_id", "delivery_id", "attempt", "status", "level", "timestamp"} <= set(record)


@pytest.mark.parametrize("query", sorted((REPO / "sql" / "queries" / "audit").glob("*.sql")), ids=lambda p: p.name)
def test_audit_queries_run_with_psql(stack: Stack, client: httpx.Client, query: Path) -> None:
    event = send_event(client)
    result = subprocess.run(
        [sys.executable, "-m", "relay", "psql", "-v", "ON_ERROR_STOP=1", "-v", f"event_id={event['id']}", "-f", str(query)],
        env=stack.env, capture_output=True, text=True, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert "rows)" in result.stdout or "row)" in result.stdout


def test_a_new_anomaly_alert_is_sent_to_the_operator(client: httpx.Client, conninfo: str, operator_receiver: Receiver) -> None:
    import asyncio
    import json

    from relay.ai.anomalies import scan
    from relay.db.pool import open_pool

    async def down(_: Received):
        return 500, {}, b""

    async def run_scan() -> dict[str, int]:
        pool = await open_pool(conninfo, max_size=2)
        try:
            return await scan(pool, window_seconds=120)
        finally:
            await pool.close()

    with Receiver(down) as receiver:
        endpoint = add_endpoint(client, receiver.url())
        events = [send_event(client) for _ in range(3)]
        for event in events:
            wait_for_states(client, event["id"], ["dead"])
    asyncio.run(run_scan())

    def alert_reports() -> list[dict]:
        bodies = [json.loads(r.body) for r in operator_receiver.received()]
        return [b for b in bodies if b["type"] == "alert.created" and b["data"]["endpoint_id"] == endpoint["id"]]

    [report] = wait_until(alert_reports, what="alert.created at the operator")
    assert report["data"]["kind"] == "failure_rate" and report["data"]["evidence"]["recent_failure_rate"] == 1.0
    [alert] = [a for a in client.get("/v1/ai/alerts").json()["data"] if a["endpoint_id"] == endpoint["id"]]
    assert alert["id"] == report["data"]["alert_id"]
