"""Bad input across every route (SPEC §6): schemathesis generates requests from the served OpenAPI
document; no answer may be a 5xx or break the document's own schema. Plus hand-written nasties."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import quote

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from tests.acceptance.conftest import Stack

STACK_ENV = {"RELAY_INGEST_RATE_LIMIT": "0"}  # the fuzzer must not just meet 429s
TRIED: Counter[str] = Counter()


def test_no_server_errors_and_answers_match_the_schema(stack: Stack, auth: dict[str, str]) -> None:
    api_schema = schemathesis.openapi.from_url(f"{stack.base_url}/schema/openapi.json")
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 30

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def check(case) -> None:
            response = case.call(headers=auth)
            TRIED[f"{response.status_code // 100}xx"] += 1
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
            )
            # Left out: ignored_auth judges the junk X-API-Key schemathesis adds beside our valid bearer
            # token (credentials are tested in tests/integration/test_accounts.py); positive_data_acceptance
            # expects every schema-valid body to be taken, but Relay also refuses, with a documented 422,
            # what no schema can say (a URL without a host, a private IP, a reserved header).
            case.validate_response(response, excluded_checks=[ignored_auth, positive_data_acceptance])

        check()
    print("FUZZ " + json.dumps({"operations": len(operations), **TRIED}, sort_keys=True))
    assert sum(TRIED.values()) > 300 and TRIED["5xx"] == 0


NASTY_STRINGS = [
    "'; DROP TABLE relay.events; --", "\u0000", "a\u0000b", "🔥" * 100, "x" * 100_000, "\u202e\u200b", "%00", "../../etc/passwd",
    "${jndi:ldap://x}", "<script>alert(1)</script>",
]
NASTY_NUMBERS = [-1, 0, 2**63, -(2**63), 1e308, float("nan")]
# Endpoint URLs the schema's pattern lets through but the sender's HTTP client cannot use: each must be a 422.
NASTY_URLS = [
    "http://ex\x01ample.com/", "https://example.com/\x7f", "http://ex\u00adample.com/", "https://example.com/\u202e",
    "http://xn--a.com/", "http://a..b/", "http://" + "a" * 64 + ".com/", "https://🔥.com/", "http://0x7f.1/",
    "http://@example.com/", "https://example.com/%zz",
]


def test_hand_written_bad_input_never_500s_and_stores_nothing(client: httpx.Client, db, tenant) -> None:
    before = db.execute("SELECT count(*) FROM relay.events WHERE tenant_id = %s", (tenant[0],)).fetchone()[0]
    bodies: list[bytes] = [b"", b"{", b"[]", b"null", b'"str"', b"\xff\xfe", b'{"type":"a.b","payload":{}}' * 3,
                           b'{"type": "a.b", "payload": {"x": 1}, "payload": 5}', b"{" * 10_000 + b"}" * 10_000,
                           b'{"type":"a.b","payload":' + b"[" * 5000 + b"]" * 5000 + b"}", b"x" * (17 * 1024 * 1024)]
    for value in NASTY_STRINGS:
        bodies.append(json.dumps({"type": value, "payload": {}}).encode())
        bodies.append(json.dumps({"type": "a.b", "payload": {}, "idempotency_key": value}).encode())
        bodies.append(json.dumps({"type": "a.b", "payload": {}, "endpoint_id": value}).encode())
    for number in NASTY_NUMBERS:
        bodies.append(json.dumps({"type": number, "payload": number}).encode())
    routes = [("POST", "/v1/events"), ("POST", "/v1/events/batch"), ("POST", "/v1/endpoints"), ("POST", "/v1/api-keys"),
              ("POST", "/v1/event-types"), ("POST", "/v1/dead-letter/replay"), ("POST", "/v1/auth/register"),
              ("POST", "/v1/auth/login"), ("POST", "/v1/auth/refresh")]
    statuses: Counter[int] = Counter()
    events_accepted = 0
    for method, path in routes:
        for body in bodies:
            response = client.request(method, path, content=body, headers={"content-type": "application/json"})
            statuses[response.status_code] += 1
            if path.startswith("/v1/events") and response.status_code in (200, 202):
                events_accepted += len(response.json().get("events", [None]))
            assert response.status_code < 500, (path, body[:80], response.text[:200])
            if response.status_code >= 400:
                assert response.headers["content-type"].startswith("application/problem+json"), (path, body[:80])
    for value in [v for v in NASTY_STRINGS if len(v) < 2000] + ["-1", "99999999999999999999", "1e400", "NaN"]:
        for path in ("/v1/endpoints/{}", "/v1/events/{}", "/v1/deliveries/{}", "/v1/operations/{}", "/v1/event-types/{}"):
            response = client.get(path.format(quote(value, safe="")))
            statuses[response.status_code] += 1
            assert response.status_code in (400, 404, 422), (path, value, response.text[:200])
        for param in ("limit", "cursor", "since", "status", "endpoint_id"):
            response = client.get("/v1/deliveries", params={param: value})
            statuses[response.status_code] += 1
            assert response.status_code < 500, (param, value, response.text[:200])
    count_endpoints = "SELECT count(*) FROM relay.endpoints WHERE tenant_id = %s"
    endpoints_before = db.execute(count_endpoints, (tenant[0],)).fetchone()[0]
    for url in NASTY_URLS:
        response = client.post("/v1/endpoints", json={"url": url})
        statuses[response.status_code] += 1
        assert response.status_code == 422, (url, response.text[:200])
        assert response.json()["errors"][0]["field"] == "$.url", (url, response.text[:200])
    assert db.execute(count_endpoints, (tenant[0],)).fetchone()[0] == endpoints_before
    after = db.execute("SELECT count(*) FROM relay.events WHERE tenant_id = %s", (tenant[0],)).fetchone()[0]
    print("HAND " + json.dumps({"requests": sum(statuses.values()), **{str(k): v for k, v in sorted(statuses.items())}}))
    # Odd but valid requests (an idempotency key that looks like SQL) are stored; refused ones store nothing.
    assert statuses[500] == 0 and after - before == events_accepted
