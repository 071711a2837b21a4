"""Failure intelligence in-process: the Claude path through the real anthropic SDK against a local fake
Messages API (success, malformed output, timeout, 5xx → rules), prompts without secrets, payload checks, debug."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from relay.api.app import create_app
from relay.db.tenants import create_tenant
from relay.settings import load_settings
from relay.urlguard import parse_networks
from tests.fake_anthropic import FakeAnthropic

VERDICT = {"summary": "The receiver is down.", "likely_cause": "Its process crashed.", "pattern": "server_error",
           "recommended_action": "Restart it.", "severity": "high", "confidence": 0.8}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture(scope="module")
def claude_api(conninfo: str, fake: FakeAnthropic) -> Iterator[TestClient]:
    settings = dataclasses.replace(
        load_settings(), allowed_networks=parse_networks("127.0.0.0/8"), anthropic_api_key="sk-ant-test-key",
        anthropic_base_url=fake.base_url, ai_timeout_seconds=1.0,
    )
    with TestClient(create_app(settings, conninfo)) as client:
        yield client


@pytest.fixture
def failing_endpoint(db, tenant) -> dict[str, str]:
    """An endpoint with a custom secret header and a history of 503s."""
    from relay.signing import new_secret

    tenant_id, key = tenant
    secret = new_secret()
    endpoint_id = "ep_" + "a" * 32
    db.execute("DELETE FROM relay.endpoints WHERE id = %s", (endpoint_id,))
    db.execute(
        "INSERT INTO relay.endpoints (id, tenant_id, url, secret, headers) VALUES (%s, %s, %s, %s, %s)",
        (endpoint_id, tenant_id, "https://hooks.example.com/in?token=query-secret-123", secret,
         json.dumps({"Authorization": "Bearer header-secret-456"})),
    )
    for n in range(6):
        db.execute(
            "INSERT INTO relay.attempts (id, tenant_id, delivery_id, event_id, endpoint_id, attempt_number, started_at,"
            " duration_ms, response_status, response_body, error_class, error_message, outcome)"
            " VALUES (%s, %s, 'dlv_x', 'evt_x', %s, %s, now() - %s * interval '1 minute', 40, 503, %s, 'server_error',"
            " 'HTTP 503 Service Unavailable', 'retrying')",
            (f"att_{tenant_id[-8:]}{n}", tenant_id, endpoint_id, n + 1, 6 - n, f"upstream said {secret} v1,abc{'x' * 30}"),
        )
    return {"id": endpoint_id, "secret": secret, "key": key}


def test_claude_answer_is_used_and_the_prompt_holds_no_secret(claude_api, fake, failing_endpoint) -> None:
    fake.mode, fake.answer = "ok", VERDICT
    fake.raw_requests.clear()
    response = claude_api.post(f"/v1/ai/analyse-failure/{failing_endpoint['id']}",
                               headers={"Authorization": f"Bearer {failing_endpoint['key']}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["engine"] == "claude" and body["summary"] == "The receiver is down." and body["pattern"] == "server_error"
    assert body["evidence"]["failures"] == 6  # figures still come from the rules
    [sent] = fake.raw_requests
    prompt = sent.decode()
    assert "rule_analysis" in prompt and "503" in prompt  # grounded in the findings
    for secret in (failing_endpoint["secret"], failing_endpoint["secret"].removeprefix("whsec_"), failing_endpoint["key"],
                   "header-secret-456", "query-secret-123", "v1,abc"):
        assert secret not in prompt, f"{secret[:12]}… reached the prompt"
    assert any("sk-ant-test-key" in value for value in fake.headers[-1].values())  # the SDK sent its own key


@pytest.mark.parametrize("mode", ["malformed", "slow", "error"])
def test_any_claude_failure_falls_back_to_the_rules(claude_api, fake, failing_endpoint, mode: str) -> None:
    fake.mode = mode
    response = claude_api.post(f"/v1/ai/analyse-failure/{failing_endpoint['id']}",
                               headers={"Authorization": f"Bearer {failing_endpoint['key']}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["engine"] == "rules" and body["pattern"] == "server_error" and body["fallback_reason"]


def test_rules_without_an_api_key(api: TestClient, failing_endpoint) -> None:
    body = api.post(f"/v1/ai/analyse-failure/{failing_endpoint['id']}",
                    headers={"Authorization": f"Bearer {failing_endpoint['key']}"}).json()
    assert body["engine"] == "rules" and body["fallback_reason"] is None
    assert body["pattern"] == "server_error" and body["severity"] == "high"
    assert "6" in body["summary"] and body["patterns"][0] == {**body["patterns"][0], "pattern": "server_error", "count": 6}


def test_validate_payload_against_a_json_schema(api: TestClient, auth) -> None:
    schema = {"type": "object", "required": ["invoice_id", "amount"],
              "properties": {"invoice_id": {"type": "string"}, "amount": {"type": "integer"}, "currency": {"type": "string"}}}
    assert api.post("/v1/event-types", json={"name": "invoice.paid", "schema": schema}, headers=auth).status_code == 201
    report = api.post("/v1/ai/validate-payload", headers=auth,
                      json={"event_type": "invoice.paid", "payload": {"invoice_id": 7, "ammount": 10}}).json()
    assert report["engine"] == "rules" and report["checked_against"] == "schema" and not report["valid"]
    kinds = {(i["path"], i["kind"]) for i in report["issues"]}
    assert ("$.invoice_id", "type") in kinds and ("$.ammount", "likely_typo") in kinds and ("$", "missing_field") in kinds
    assert report["suggested_payload"] == {"invoice_id": 7, "amount": 10}
    ok = api.post("/v1/ai/validate-payload", headers=auth,
                  json={"event_type": "invoice.paid", "payload": {"invoice_id": "in_1", "amount": 10}}).json()
    assert ok["valid"] and ok["issues"] == []
    bad_schema = api.post("/v1/event-types", json={"name": "x.y", "schema": {"type": "nonsense"}}, headers=auth)
    assert bad_schema.status_code == 422


def test_validate_payload_against_recent_events(api: TestClient, auth) -> None:
    for n in range(5):
        api.post("/v1/events", json={"type": "user.created", "payload": {"user_id": n, "email": "a@b.c"}}, headers=auth)
    report = api.post("/v1/ai/validate-payload", headers=auth,
                      json={"event_type": "user.created", "payload": {"user_id": 1, "emial": "x"}}).json()
    assert report["checked_against"] == "recent_payloads" and not report["valid"]
    assert {"path": "$.emial", "kind": "likely_typo", "message": "'emial' looks like a typo of 'email'"} in report["issues"]


def test_validate_payload_with_claude(claude_api, fake, auth) -> None:
    fake.mode, fake.answer = "ok", {"summary": "Rename ammount.", "suggested_payload": {"amount": 1}}
    report = claude_api.post("/v1/ai/validate-payload", headers=auth,
                             json={"event_type": "nothing.known", "payload": {"ammount": 1}}).json()
    assert report["engine"] == "claude" and report["summary"] == "Rename ammount."


def test_debug_is_grounded_in_the_tenants_data(api: TestClient, db, failing_endpoint) -> None:
    from datetime import UTC, datetime

    tenant_id = db.execute("SELECT tenant_id FROM relay.endpoints WHERE id = %s", (failing_endpoint["id"],)).fetchone()[0]
    db.execute(
        "INSERT INTO relay.delivery_rollups (tenant_id, endpoint_id, hour, attempts, failed_attempts, latency_buckets)"
        " VALUES (%s, %s, %s, 6, 6, '{0,0,6,0,0,0,0,0,0,0,0,0,0}') ON CONFLICT DO NOTHING",
        (tenant_id, failing_endpoint["id"], datetime.now(UTC).replace(minute=0, second=0, microsecond=0)),
    )
    headers = {"Authorization": f"Bearer {failing_endpoint['key']}"}
    answer = api.post("/v1/ai/debug", json={"question": "Why are my invoices not arriving?"}, headers=headers).json()
    assert answer["engine"] == "rules"
    assert failing_endpoint["id"] in answer["diagnosis"] and answer["endpoints"][0]["pattern"] == "server_error"
    assert any("recover" in step for step in answer["steps"])
    _, other_key = create_tenant(db, "healthy")
    calm = api.post("/v1/ai/debug", json={"question": "anything wrong?"}, headers={"Authorization": f"Bearer {other_key}"})
    assert "No endpoint of yours has failed" in calm.json()["diagnosis"]
