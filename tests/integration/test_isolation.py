"""Tenant isolation (F23): tenant B's credentials against every route with tenant A's ids → 404, never data.

Routes are enumerated from the app's own route table, so a new route is covered (and
must get an id mapping here) without anyone remembering to add it.
"""

from __future__ import annotations

import re

import pytest
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from relay.db.tenants import create_tenant
from tests.support import wait_until

# Valid bodies, so that the request gets as far as looking the id up.
BODIES = {
    ("PATCH", "/v1/endpoints/{endpoint_id}"): {"description": "taken over"},
    ("POST", "/v1/endpoints/{endpoint_id}/rotate-secret"): {"grace_period_seconds": 0},
    ("POST", "/v1/endpoints/{endpoint_id}/recover"): {"since": "2020-01-01T00:00:00Z"},
}
PUBLIC = {"/health", "/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/logout"}


def routes_with_ids(api: TestClient) -> list[tuple[str, str]]:
    found = []
    for route in api.app.routes:
        # The dashboard's pages read through this same API as the signed-in user (relay/ui/api_client.py);
        # tests/browser try them with another tenant's ids.
        if not isinstance(route, HTTPRoute) or route.path.startswith(("/schema", "/ui")):
            continue
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        for method in sorted(route.route_handler_map):
            if method != "OPTIONS" and "{" in path:
                found.append((method, path))
    return found


@pytest.fixture
def tenant_a(api: TestClient, db) -> dict[str, str]:
    """Tenant A with one of everything: endpoint, event, live and dead delivery, event type, key, operation."""
    _, key = create_tenant(db, "tenant-a")
    headers = {"Authorization": f"Bearer {key}"}
    endpoint = api.post("/v1/endpoints", json={"url": "https://example.com/a"}, headers=headers).json()
    event = api.post("/v1/events", json={"type": "a.secret", "payload": {"secret": "of A"}}, headers=headers).json()
    [delivery] = api.get(f"/v1/events/{event['id']}", headers=headers).json()["deliveries"]
    api.post("/v1/event-types", json={"name": "a.secret"}, headers=headers).raise_for_status()
    api_key = api.post("/v1/api-keys", json={"name": "second"}, headers=headers).json()
    # A dead delivery of A's, for the dead-letter routes.
    db.execute("UPDATE relay.deliveries SET state = 'dead', next_attempt_at = NULL, completed_at = now() WHERE id = %s",
               (delivery["id"],))
    operation = api.post("/v1/dead-letter/replay", json={}, headers=headers).json()
    wait_until(lambda: api.get(f"/v1/operations/{operation['id']}", headers=headers).status_code == 200, what="operation")
    return {
        "headers": headers, "endpoint_id": endpoint["id"], "event_id": event["id"], "delivery_id": delivery["id"],
        "name": "a.secret", "key_id": api_key["id"], "operation_id": operation["id"], "secret": endpoint["secret"],
    }


def test_every_route_with_an_id_answers_404_to_another_tenant(api: TestClient, tenant_a, db) -> None:
    _, key_b = create_tenant(db, "tenant-b")
    b = {"Authorization": f"Bearer {key_b}"}
    routes = routes_with_ids(api)
    assert len(routes) >= 20, routes
    leaked = []
    for method, path in routes:
        params = re.findall(r"\{(\w+)\}", path)
        missing = [p for p in params if p not in tenant_a]
        assert not missing, f"{method} {path}: map {missing} to one of tenant A's ids in this test"
        url = path.format(**{p: tenant_a[p] for p in params})
        response = api.request(method, url, headers=b, json=BODIES.get((method, path)))
        if response.status_code != 404 or tenant_a["secret"] in response.text or "of A" in response.text:
            leaked.append((method, path, response.status_code, response.text[:200]))
    assert leaked == []


def test_the_answer_is_the_same_as_for_an_id_that_never_existed(api: TestClient, tenant_a, db) -> None:
    _, key_b = create_tenant(db, "tenant-b")
    b = {"Authorization": f"Bearer {key_b}"}
    real = api.get(f"/v1/endpoints/{tenant_a['endpoint_id']}", headers=b)
    fake_id = "ep_" + "0" * 32
    fake = api.get(f"/v1/endpoints/{fake_id}", headers=b)
    assert real.status_code == fake.status_code == 404
    assert real.json()["detail"].replace(tenant_a["endpoint_id"], "X") == fake.json()["detail"].replace(fake_id, "X")


def test_lists_show_nothing_of_another_tenant(api: TestClient, tenant_a, db) -> None:
    _, key_b = create_tenant(db, "tenant-b")
    b = {"Authorization": f"Bearer {key_b}"}
    for path in ("/v1/endpoints", "/v1/events", "/v1/deliveries", "/v1/dead-letter", "/v1/event-types"):
        response = api.get(path, headers=b)
        assert response.status_code == 200, path
        assert response.json()["data"] == [], path
    b_keys = api.get("/v1/api-keys", headers=b).json()["data"]
    assert [k["name"] for k in b_keys] == ["default"] and tenant_a["key_id"] not in {k["id"] for k in b_keys}
    b_event = api.post("/v1/events", json={"type": "a.secret", "payload": {}}, headers=b).json()
    assert b_event["deliveries"] == 0  # A's endpoint never receives B's events


def test_another_tenant_cannot_change_anything(api: TestClient, tenant_a, db) -> None:
    _, key_b = create_tenant(db, "tenant-b")
    b = {"Authorization": f"Bearer {key_b}"}
    for method, path in routes_with_ids(api):
        params = re.findall(r"\{(\w+)\}", path)
        api.request(method, path.format(**{p: tenant_a[p] for p in params}), headers=b, json=BODIES.get((method, path)))
    a = tenant_a["headers"]
    endpoint = api.get(f"/v1/endpoints/{tenant_a['endpoint_id']}", headers=a).json()
    assert endpoint["enabled"] and not endpoint["paused"] and endpoint["description"] == ""
    assert api.get(f"/v1/endpoints/{tenant_a['endpoint_id']}/secret", headers=a).json()["key"] == tenant_a["secret"]
    assert api.get(f"/v1/event-types/{tenant_a['name']}", headers=a).status_code == 200
    keys = api.get("/v1/api-keys", headers=a).json()["data"]
    assert all(k["revoked_at"] is None for k in keys)
