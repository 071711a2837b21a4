"""Tenant isolation (F23): tenant B's credentials against every route with tenant A's ids → 404, never data.

Routes are enumerated from the app's own route table, so a new route is covered (and
must get an id mapping here) without anyone remembering to add it.
"""

from __future__ import annotations

import re

import pytest
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from relay.api.auth import is_public
from relay.api.scopes import ANY, ROUTE_SCOPES, SCOPES
from relay.db.tenants import create_tenant
from tests.support import wait_until

# Valid bodies, so that the request gets as far as looking the id up.
BODIES = {
    ("PATCH", "/v1/endpoints/{endpoint_id}"): {"description": "taken over"},
    ("POST", "/v1/endpoints/{endpoint_id}/rotate-secret"): {"grace_period_seconds": 0},
    ("POST", "/v1/endpoints/{endpoint_id}/recover"): {"since": "2020-01-01T00:00:00Z"},
}
PUBLIC = {"/health", "/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/logout"}


def every_api_route(api: TestClient) -> list[tuple[str, str]]:
    """Every authenticated API route as (method, path template), from the app's own route table."""
    found = []
    for route in api.app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith(("/schema", "/ui")):
            continue
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        if is_public(path):
            continue
        found.extend((method, path) for method in sorted(route.route_handler_map) if method not in ("OPTIONS", "HEAD"))
    return found


def routes_with_ids(api: TestClient) -> list[tuple[str, str]]:
    # The dashboard's pages read through this same API as the signed-in user (relay/ui/api_client.py);
    # tests/browser try them with another tenant's ids.
    return [(method, path) for method, path in every_api_route(api) if "{" in path]


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


# --- Scopes (issue 13): every route, every scope, generated from the route table ----------------

SCOPE_SETS = (["events:write"], ["read"], ["events:write", "read"], ["admin"])


def test_every_route_declares_the_scope_it_needs_in_the_one_table(api: TestClient) -> None:
    routes = set(every_api_route(api))
    assert len(routes) >= 40, routes
    undeclared = sorted(routes - set(ROUTE_SCOPES))
    stale = sorted(set(ROUTE_SCOPES) - routes)
    assert undeclared == [], f"declare these routes' scopes in relay/api/scopes.py: {undeclared}"
    assert stale == [], f"relay/api/scopes.py declares routes that do not exist: {stale}"
    assert set(ROUTE_SCOPES.values()) <= {*SCOPES, ANY}


def _url(path: str, ids: dict[str, str]) -> str:
    return path.format(**{p: ids.get(p, "unknown") for p in re.findall(r"\{(\w+)\}", path)})


def test_every_route_answers_each_scope_as_declared(api: TestClient, tenant_a) -> None:
    """A key without a route's scope gets 403 naming it (and changes nothing); with it, the route runs."""
    admin = tenant_a["headers"]
    routes = every_api_route(api)
    wrong = []
    for scopes in SCOPE_SETS:  # least first: the refusals run while tenant A still has everything
        created = api.post("/v1/api-keys", json={"name": "scoped " + " ".join(scopes), "scopes": scopes}, headers=admin)
        assert created.status_code == 201, created.text
        assert created.json()["scopes"] == scopes
        headers = {"Authorization": f"Bearer {created.json()['key']}"}
        for method, path in routes:
            needed = ROUTE_SCOPES[(method, path)]
            response = api.request(method, _url(path, tenant_a), headers=headers, json=BODIES.get((method, path)))
            if needed == ANY or "admin" in scopes or needed in scopes:
                if response.status_code in (401, 403):
                    wrong.append((scopes, method, path, "refused", response.status_code, response.text[:160]))
            else:
                body = response.json() if response.headers.get("content-type", "").startswith("application/") else {}
                if response.status_code != 403 or body.get("required_scope") != needed or needed not in body["detail"]:
                    wrong.append((scopes, method, path, f"needs {needed}", response.status_code, response.text[:160]))
        if "admin" not in scopes:  # nothing the refused requests asked for happened
            endpoint = api.get(f"/v1/endpoints/{tenant_a['endpoint_id']}", headers=admin).json()
            assert endpoint["enabled"] and not endpoint["paused"] and endpoint["description"] == ""
            secret = api.get(f"/v1/endpoints/{tenant_a['endpoint_id']}/secret", headers=admin).json()["key"]
            assert secret == tenant_a["secret"]
            keys = api.get("/v1/api-keys", headers=admin).json()["data"]
            assert all(k["revoked_at"] is None for k in keys)
    assert wrong == []


def test_a_producer_key_sends_events_and_nothing_else(api: TestClient, auth) -> None:
    key = api.post("/v1/api-keys", json={"name": "producer", "scopes": ["events:write"]}, headers=auth).json()
    producer = {"Authorization": f"Bearer {key['key']}"}
    for _ in range(3):  # the first request reads the key from the database, the next from the key cache
        sent = api.post("/v1/events", json={"type": "order.paid", "payload": {"n": 1}}, headers=producer)
        assert sent.status_code == 202, sent.text
        listed = api.get("/v1/events", headers=producer)
        assert listed.status_code == 403
        assert listed.json()["required_scope"] == "read" and "'read'" in listed.json()["detail"]
    batch = api.post("/v1/events/batch", json={"events": [{"type": "order.paid", "payload": {}}]}, headers=producer)
    assert batch.status_code == 202, batch.text
    assert api.post("/v1/endpoints", json={"url": "https://example.com/x"}, headers=producer).status_code == 403
    assert api.get("/v1/auth/me", headers=producer).json()["api_key"] == {"id": key["id"]}


def test_a_read_key_reads_but_changes_nothing_and_sees_no_secret(api: TestClient, auth) -> None:
    endpoint = api.post("/v1/endpoints", json={"url": "https://example.com/r"}, headers=auth).json()
    key = api.post("/v1/api-keys", json={"name": "reader", "scopes": ["read"]}, headers=auth).json()
    reader = {"Authorization": f"Bearer {key['key']}"}
    assert api.get(f"/v1/endpoints/{endpoint['id']}", headers=reader).status_code == 200
    assert api.get("/v1/stats", headers=reader).status_code == 200
    secret = api.get(f"/v1/endpoints/{endpoint['id']}/secret", headers=reader)
    assert secret.status_code == 403 and secret.json()["required_scope"] == "admin"
    assert endpoint["secret"] not in secret.text
    sent = api.post("/v1/events", json={"type": "t", "payload": {}}, headers=reader)
    assert sent.status_code == 403 and sent.json()["required_scope"] == "events:write"
    patched = api.patch(f"/v1/endpoints/{endpoint['id']}", json={"description": "x"}, headers=reader)
    assert patched.status_code == 403
    assert api.get(f"/v1/endpoints/{endpoint['id']}", headers=auth).json()["description"] == ""
    # a read key cannot make itself a stronger one
    assert api.post("/v1/api-keys", json={"name": "escalate", "scopes": ["admin"]}, headers=reader).status_code == 403


@pytest.mark.parametrize(
    ("scopes", "field"),
    [([], "$.scopes"), (["write"], "$.scopes[0]"), (["read", "owner"], "$.scopes[1]"), ("admin", "$.scopes"),
     (["read"] * 4, "$.scopes")],
)
def test_bad_scopes_are_refused_with_their_path_and_nothing_is_stored(api: TestClient, auth, scopes, field) -> None:
    before = len(api.get("/v1/api-keys", headers=auth).json()["data"])
    response = api.post("/v1/api-keys", json={"name": "bad", "scopes": scopes}, headers=auth)
    assert response.status_code in (400, 422), response.text
    assert response.json()["errors"][0]["field"] == field
    assert len(api.get("/v1/api-keys", headers=auth).json()["data"]) == before


def test_keys_default_to_admin_and_list_their_scopes(api: TestClient, auth) -> None:
    made = api.post("/v1/api-keys", json={"name": "plain"}, headers=auth).json()
    assert made["scopes"] == ["admin"]
    both = api.post("/v1/api-keys", json={"name": "both", "scopes": ["read", "events:write", "read"][:2]}, headers=auth)
    assert both.json()["scopes"] == ["events:write", "read"]  # canonical order
    listed = {k["name"]: k["scopes"] for k in api.get("/v1/api-keys", headers=auth).json()["data"]}
    assert listed["default"] == ["admin"]  # `relay tenant create`'s key
    assert listed["plain"] == ["admin"] and listed["both"] == ["events:write", "read"]
