"""The HTTP API in-process on a real database: shapes, errors as problem documents, auth."""

import json

import pytest
from litestar.testing import TestClient


def problem(response) -> dict:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body = response.json()
    assert body["status"] == response.status_code
    assert body["title"] and body["detail"] and body["type"]
    return body


def make_endpoint(api: TestClient, auth, **fields) -> dict:
    response = api.post("/v1/endpoints", json={"url": "https://example.com/hook", **fields}, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


def test_health_needs_no_auth(api: TestClient) -> None:
    assert api.get("/health").json()["status"] == "ok"


def test_endpoint_crud(api: TestClient, auth) -> None:
    created = make_endpoint(api, auth, event_types=["invoice.*"], headers={"X-Tenant": "42"})
    assert created["id"].startswith("ep_") and created["secret"].startswith("whsec_")
    assert api.get(f"/v1/endpoints/{created['id']}", headers=auth).json()["event_types"] == ["invoice.*"]
    assert "secret" not in api.get(f"/v1/endpoints/{created['id']}", headers=auth).json()
    assert api.get(f"/v1/endpoints/{created['id']}/secret", headers=auth).json()["key"] == created["secret"]
    changed = api.patch(f"/v1/endpoints/{created['id']}", json={"enabled": False, "timeout_seconds": 5}, headers=auth).json()
    assert changed["enabled"] is False and changed["disabled_reason"] == "manual" and changed["timeout_seconds"] == 5
    listed = api.get("/v1/endpoints", headers=auth).json()
    assert [e["id"] for e in listed["data"]] == [created["id"]]
    assert api.delete(f"/v1/endpoints/{created['id']}", headers=auth).status_code == 204
    problem(api.get(f"/v1/endpoints/{created['id']}", headers=auth))


def test_pagination_walks_every_item_once(api: TestClient, auth) -> None:
    ids = {make_endpoint(api, auth)["id"] for _ in range(5)}
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/endpoints", params=params, headers=auth).json()
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5


def test_event_accepted_then_readable_with_deliveries(api: TestClient, auth) -> None:
    endpoint = make_endpoint(api, auth)
    response = api.post("/v1/events", content=b'{"type":"invoice.paid","payload":{ "n" : 1.50 }}', headers=auth)
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["id"].startswith("evt_") and accepted["deliveries"] == 1
    detail = api.get(f"/v1/events/{accepted['id']}", headers=auth).json()
    assert detail["payload"] == {"n": 1.5}
    assert [d["endpoint_id"] for d in detail["deliveries"]] == [endpoint["id"]]
    assert detail["deliveries"][0]["status"] == "pending"
    delivery_id = detail["deliveries"][0]["id"]
    assert api.get(f"/v1/deliveries/{delivery_id}", headers=auth).json()["attempt_log"] == []
    listed = api.get("/v1/deliveries", params={"event_id": accepted["id"], "status": "pending"}, headers=auth).json()
    assert [d["id"] for d in listed["data"]] == [delivery_id]


def test_idempotency_over_http(api: TestClient, auth) -> None:
    make_endpoint(api, auth)
    body = {"type": "a.b", "payload": {"x": 1}}
    first = api.post("/v1/events", json=body, headers={**auth, "Idempotency-Key": "abc"})
    again = api.post("/v1/events", json=body, headers={**auth, "Idempotency-Key": "abc"})
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json() == again.json()
    conflict = api.post("/v1/events", json={"type": "a.b", "payload": {"x": 2}}, headers={**auth, "Idempotency-Key": "abc"})
    assert conflict.status_code == 409
    problem(conflict)


def test_batch_answers_in_order(api: TestClient, auth) -> None:
    make_endpoint(api, auth, event_types=["a.*"])
    events = [{"type": "a.x" if i % 2 else "b.x", "payload": {"i": i}} for i in range(10)]
    response = api.post("/v1/events/batch", json={"events": events}, headers=auth)
    assert response.status_code == 202
    answers = response.json()["events"]
    assert [a["deliveries"] for a in answers] == [0, 1] * 5
    for answer, sent in zip(answers, events, strict=True):
        assert api.get(f"/v1/events/{answer['id']}", headers=auth).json()["payload"] == sent["payload"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"", 400),
        (b"[]", 400),
        (b'{"type": 5, "payload": {}}', 400),
        (b'{"type": "a.b"}', 400),
        (b'{"type": "a.b", "payload": [1,2]}', 400),
        (b'{"type": "a.b", "payload": {}, "surprise": 1}', 400),
        (b'{"type": "a b", "payload": {}}', 400),
        (b'{"type": "a.b", "payload": {}, "channels": ["x,y"]}', 400),
        (b'{"type": "\'; DROP TABLE relay.events; --", "payload": {}}', 400),
        (b'{"type": "a.b", "payload": {}, "endpoint_id": "ep_00000000000000000000000000000000"}', 422),
    ],
)
def test_bad_event_bodies_get_problem_documents(api: TestClient, auth, body: bytes, status: int) -> None:
    response = api.post("/v1/events", content=body, headers={**auth, "content-type": "application/json"})
    assert response.status_code == status, response.text
    problem(response)


def test_field_path_is_reported(api: TestClient, auth) -> None:
    response = api.post("/v1/events/batch", json={"events": [{"type": "a.b", "payload": {}}, {"type": 7, "payload": {}}]}, headers=auth)
    body = problem(response)
    assert any("events" in e["field"] for e in body["errors"]), body


def test_payload_over_limit_is_413_and_stores_nothing(api: TestClient, auth, db, tenant) -> None:
    big = {"type": "a.b", "payload": {"blob": "x" * (256 * 1024 + 10)}}
    response = api.post("/v1/events", json=big, headers=auth)
    assert response.status_code == 413
    problem(response)
    assert db.execute("SELECT count(*) FROM relay.events WHERE tenant_id = %s", (tenant[0],)).fetchone()[0] == 0


def test_batch_limits(api: TestClient, auth) -> None:
    too_many = {"events": [{"type": "a.b", "payload": {}}] * 1001}
    assert api.post("/v1/events/batch", json=too_many, headers=auth).status_code == 422
    dup_keys = {"events": [{"type": "a.b", "payload": {}, "idempotency_key": "k"}] * 2}
    assert api.post("/v1/events/batch", json=dup_keys, headers=auth).status_code == 422
    assert api.post("/v1/events/batch", json={"events": []}, headers=auth).status_code == 400


@pytest.mark.parametrize(
    "fields",
    [
        {"url": "ftp://example.com"},
        {"url": "https://"},
        {"url": "https://user:pw@example.com/"},
        {"url": "https://example.com", "timeout_seconds": 61},
        {"url": "https://example.com", "headers": {"webhook-signature": "forged"}},
        {"url": "https://example.com", "headers": {"X-Bad": "a\r\nb"}},
        {"url": "https://example.com", "event_types": ["bad type"]},
        {"url": "https://example.com", "secret": "nope"},
        {"url": "https://example.com", "unknown": True},
        {"url": 12},
    ],
)
def test_bad_endpoints_rejected(api: TestClient, auth, fields) -> None:
    response = api.post("/v1/endpoints", json=fields, headers=auth)
    assert 400 <= response.status_code < 500, response.text
    problem(response)


def test_unknown_ids_are_404(api: TestClient, auth) -> None:
    for path in ("/v1/endpoints/ep_nope", "/v1/events/evt_nope", "/v1/deliveries/dlv_nope", "/v1/endpoints/x/secret"):
        response = api.get(path, headers=auth)
        assert response.status_code == 404, path
        problem(response)
    assert api.patch("/v1/endpoints/ep_nope", json={"enabled": True}, headers=auth).status_code == 404
    assert api.delete("/v1/endpoints/ep_nope", headers=auth).status_code == 404


def test_other_tenants_ids_look_nonexistent(api: TestClient, auth, db) -> None:
    from relay.db.tenants import create_tenant

    _, other_key = create_tenant(db, "other")
    endpoint = make_endpoint(api, auth)
    response = api.get(f"/v1/endpoints/{endpoint['id']}", headers={"Authorization": f"Bearer {other_key}"})
    assert response.status_code == 404
    assert endpoint["id"] in response.json()["detail"]  # same words as for an id that never existed


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}, {"X-API-Key": "rly_wrong"}, {"Authorization": "Bearer "}],
)
def test_bad_credentials_are_401(api: TestClient, headers) -> None:
    response = api.get("/v1/endpoints", headers=headers)
    assert response.status_code == 401
    problem(response)


def test_x_api_key_works(api: TestClient, tenant) -> None:
    assert api.get("/v1/endpoints", headers={"X-API-Key": tenant[1]}).status_code == 200


def test_bad_query_params_are_400(api: TestClient, auth) -> None:
    for params in ({"limit": 0}, {"limit": 10_000}, {"status": "bogus"}, {"since": "yesterday"}):
        response = api.get("/v1/deliveries", params=params, headers=auth)
        assert response.status_code == 400, params
        problem(response)


def test_unknown_route_and_method(api: TestClient, auth) -> None:
    problem(api.get("/v1/nothing-here", headers=auth))
    assert api.put("/v1/events", json={}, headers=auth).status_code == 405


def test_openapi_documents_every_route(api: TestClient) -> None:
    doc = api.get("/schema/openapi.json").json()
    paths = doc["paths"]
    for path in ("/v1/endpoints", "/v1/endpoints/{endpoint_id}", "/v1/events", "/v1/events/batch", "/v1/events/{event_id}", "/v1/deliveries", "/v1/deliveries/{delivery_id}", "/health"):
        assert path in paths, path
    create_event = paths["/v1/events"]["post"]
    assert "requestBody" in create_event
    assert {"202", "409", "413", "422"} <= set(create_event["responses"])
    assert json.dumps(create_event["responses"]["409"]).find("problem+json") > 0


def test_the_batch_path_is_not_a_405_for_event_lookups(api: TestClient, auth) -> None:
    response = api.get("/v1/events/batch", headers=auth)
    assert response.status_code == 404
    problem(response)
    assert api.delete("/v1/dead-letter/replay", headers=auth).status_code == 404
