"""The audit trail on a real database: each audited action through the API writes exactly one row in its own
transaction (a failed change writes none), no row holds a secret, and GET /v1/audit-log filters, pages and
keeps to the caller's tenant and scope. Also: retention on its own clock, and the operators' psql query."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import psycopg
import pytest
from litestar.testing import TestClient

from tests.support import REPO, RelayProcess, free_port, relay_env, wait_for_http

CLIENT = "testclient"  # the address the in-process test client connects from
PASSWORD = "correct horse battery staple"
AUTH_ACTIONS = ("login.", "logout", "signup", "password.", "session.", "token_family.")  # written by the auth routes


# --- helpers -------------------------------------------------------------------------------------------------

def problem(response: Any, status: int | tuple[int, ...]) -> dict[str, Any]:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return dict(response.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclasses.dataclass
class User:
    id: str
    tenant_id: str
    access_token: str
    refresh_token: str
    headers: dict[str, str]


def sign_up(api: TestClient) -> User:
    """A user and its tenant, through the API; the test keeps every credential it saw."""
    email = f"audit-{uuid.uuid4().hex[:8]}@example.com"
    registered = api.post("/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert registered.status_code == 201, registered.text
    tokens = api.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
    return User(tokens["user_id"], tokens["tenant_id"], tokens["access_token"], tokens["refresh_token"],
                bearer(tokens["access_token"]))


def audit_rows(db: psycopg.Connection, tenant_id: str, action: str | None = None) -> list[dict[str, Any]]:
    """The tenant's audit rows (one action, or all but the auth routes'), oldest first."""
    cursor = db.cursor(row_factory=psycopg.rows.dict_row)
    rows = cursor.execute(
        "SELECT actor_type, actor, action, target_type, target_id, client_address, details FROM relay.audit_log"
        " WHERE tenant_id = %s AND (%s::text IS NULL OR action = %s) ORDER BY id", (tenant_id, action, action),
    ).fetchall()
    return [row for row in rows if action or not row["action"].startswith(AUTH_ACTIONS)]


def only_row(db: psycopg.Connection, tenant_id: str, action: str) -> dict[str, Any]:
    rows = audit_rows(db, tenant_id, action)
    assert len(rows) == 1, (action, rows)
    return rows[0]


def assert_no_secret_in_audit_log(db: psycopg.Connection, secrets: list[str]) -> None:
    """Look for every secret the test saw in every audit row, whole (details included)."""
    assert secrets and all(len(secret) >= 8 for secret in secrets), secrets
    texts = [row[0] for row in db.execute("SELECT audit_log::text FROM relay.audit_log")]
    assert texts
    leaked = [secret for secret in secrets if any(secret in text for text in texts)]
    assert leaked == []


def make_endpoint(api: TestClient | httpx.Client, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = api.post("/v1/endpoints", json={"url": "https://example.com/hook", **fields}, headers=auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


def send_event(api: TestClient | httpx.Client, headers: dict[str, str]) -> str:
    response = api.post("/v1/events", json={"type": "order.paid", "payload": {"n": 1}}, headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def kill_deliveries_of(db: psycopg.Connection, event_id: str) -> list[str]:
    """Set the event's deliveries dead (as retries running out would): what replays and the dead letter need."""
    rows = db.execute(
        "UPDATE relay.deliveries SET state = 'dead', next_attempt_at = NULL, completed_at = now(),"
        " dead_reason = 'retries_exhausted' WHERE event_id = %s RETURNING id", (event_id,),
    ).fetchall()
    assert rows
    return [row[0] for row in rows]


@contextmanager
def failing_trigger(db: psycopg.Connection, table: str, tenant_id: str, when: str = "true") -> Iterator[None]:
    """Make every insert or update of the tenant's rows in `table` fail (where `when` holds) until the block ends."""
    name = f"audit_test_fail_{uuid.uuid4().hex[:8]}"
    db.execute(f"""
        CREATE FUNCTION relay.{name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.tenant_id = '{tenant_id}' AND {when} THEN RAISE EXCEPTION 'injected failure'; END IF;
            RETURN NEW;
        END $$""")
    db.execute(f"CREATE TRIGGER {name} BEFORE INSERT OR UPDATE ON relay.{table}"
               f" FOR EACH ROW EXECUTE FUNCTION relay.{name}()")
    try:
        yield
    finally:
        db.execute(f"DROP TRIGGER {name} ON relay.{table}")
        db.execute(f"DROP FUNCTION relay.{name}()")


# --- each action writes one row ------------------------------------------------------------------------------

def test_api_keys_created_and_revoked_are_audited_by_prefix_never_the_key(api: TestClient, db, tenant, auth) -> None:
    tenant_id, tenant_key = tenant
    created = api.post("/v1/api-keys", json={"name": "reporting", "scopes": ["read"], "rate_limit": 10},
                       headers=auth)
    assert created.status_code == 201, created.text
    key = created.json()
    row = only_row(db, tenant_id, "api_key.created")
    assert row == {
        "actor_type": "api_key", "actor": tenant_key[:12], "action": "api_key.created", "target_type": "api_key",
        "target_id": key["id"], "client_address": CLIENT,
        "details": {"name": "reporting", "prefix": key["prefix"], "scopes": ["read"], "rate_limit": 10},
    }

    assert api.delete(f"/v1/api-keys/{key['id']}", headers=auth).status_code == 204
    revoked = only_row(db, tenant_id, "api_key.revoked")
    assert revoked == {
        "actor_type": "api_key", "actor": tenant_key[:12], "action": "api_key.revoked", "target_type": "api_key",
        "target_id": key["id"], "client_address": CLIENT, "details": {"name": "reporting", "prefix": key["prefix"]},
    }
    # Revoking it again, or a key that does not exist, changes nothing and records nothing.
    problem(api.delete(f"/v1/api-keys/{key['id']}", headers=auth), 404)
    problem(api.delete("/v1/api-keys/key_nonexistent", headers=auth), 404)
    assert len(audit_rows(db, tenant_id, "api_key.revoked")) == 1
    # A refused creation records nothing either.
    problem(api.post("/v1/api-keys", json={"name": "x", "scopes": ["root"]}, headers=auth), 400)
    assert len(audit_rows(db, tenant_id, "api_key.created")) == 1
    assert_no_secret_in_audit_log(db, [tenant_key, key["key"]])


def test_every_endpoint_action_is_audited_once_with_the_user_and_no_secret(api: TestClient, db) -> None:
    user = sign_up(api)
    h = user.headers
    endpoint = make_endpoint(api, h, description="billing", event_types=["order.*"],
                             headers={"Authorization": "Bearer header-credential-1234"}, rate_limit=5)
    ep = endpoint["id"]
    secrets = [PASSWORD, user.access_token, user.refresh_token, endpoint["secret"], "header-credential-1234"]

    def expect(action: str, **details: Any) -> dict[str, Any]:
        row = only_row(db, user.tenant_id, action)
        assert (row["actor_type"], row["actor"], row["target_type"], row["target_id"], row["client_address"]) == (
            "user", user.id, "endpoint", ep, CLIENT), row
        assert row["details"] == details, (action, row["details"])
        return row

    expect("endpoint.created", url="https://example.com/hook", description="billing", event_types=["order.*"],
           channels=[], headers=["Authorization"], enabled=True, timeout_seconds=None, retry_schedule=None,
           rate_limit=5, max_in_flight=None, fifo=False, legacy_signature=False, verify=False)

    changed = api.patch(f"/v1/endpoints/{ep}", json={"url": "https://example.com/v2", "description": "ledger",
                                                     "headers": {"X-Token": "header-credential-5678"}}, headers=h)
    assert changed.status_code == 200, changed.text
    secrets.append("header-credential-5678")
    expect("endpoint.updated", changed=["description", "headers", "url"], url="https://example.com/v2",
           description="ledger", headers=["X-Token"])

    # Disabling and enabling are updates, and are also recorded as what they are.
    assert api.patch(f"/v1/endpoints/{ep}", json={"enabled": False}, headers=h).status_code == 200
    expect("endpoint.disabled")
    assert api.patch(f"/v1/endpoints/{ep}", json={"enabled": False}, headers=h).status_code == 200
    assert len(audit_rows(db, user.tenant_id, "endpoint.disabled")) == 1  # already disabled: no second one
    assert api.patch(f"/v1/endpoints/{ep}", json={"enabled": True}, headers=h).status_code == 200
    expect("endpoint.enabled")
    assert len(audit_rows(db, user.tenant_id, "endpoint.updated")) == 4

    assert api.post(f"/v1/endpoints/{ep}/pause", headers=h).status_code == 200
    expect("endpoint.paused")
    assert api.post(f"/v1/endpoints/{ep}/resume", headers=h).status_code == 200
    expect("endpoint.resumed")

    revealed = api.get(f"/v1/endpoints/{ep}/secret", headers=h)
    assert revealed.json()["key"] == endpoint["secret"]
    expect("endpoint.secret_revealed")

    rotated = api.post(f"/v1/endpoints/{ep}/rotate-secret", json={"grace_period_seconds": 60}, headers=h)
    assert rotated.status_code == 200, rotated.text
    secrets.append(rotated.json()["key"])
    chosen = "whsec_" + "A" * 40
    assert api.post(f"/v1/endpoints/{ep}/rotate-secret", json={"secret": chosen}, headers=h).status_code == 200
    secrets.append(chosen)
    rotations = audit_rows(db, user.tenant_id, "endpoint.secret_rotated")
    assert len(rotations) == 2
    assert set(rotations[0]["details"]) == {"grace_period_seconds", "previous_valid_until"}
    assert rotations[0]["details"]["grace_period_seconds"] == 60
    assert datetime.fromisoformat(rotations[0]["details"]["previous_valid_until"]) == datetime.fromisoformat(
        rotated.json()["previous_valid_until"])

    tested = api.post(f"/v1/endpoints/{ep}/test", headers=h)
    assert tested.status_code == 202, tested.text
    expect("endpoint.tested", event_id=tested.json()["event_id"])

    recovered = api.post(f"/v1/endpoints/{ep}/recover", json={"since": "2024-01-01T00:00:00Z"}, headers=h)
    assert recovered.status_code == 202, recovered.text
    expect("endpoint.recovered", operation_id=recovered.json()["id"],
           filter={"endpoint_id": ep, "since": "2024-01-01T00:00:00+00:00"})

    assert api.delete(f"/v1/endpoints/{ep}", headers=h).status_code == 204
    expect("endpoint.deleted", url="https://example.com/v2")

    actions = [row["action"] for row in audit_rows(db, user.tenant_id)]
    assert len(actions) == 15, actions
    assert_no_secret_in_audit_log(db, secrets)


def test_replays_discards_and_event_types_are_audited(api: TestClient, db, tenant, auth) -> None:
    tenant_id, tenant_key = tenant
    prefix = tenant_key[:12]
    make_endpoint(api, auth)
    replayed_event, replayed_delivery, discarded, bulk = (send_event(api, auth) for _ in range(4))
    for event_id in (replayed_event, replayed_delivery, discarded, bulk):
        kill_deliveries_of(db, event_id)

    def expect(action: str, target_type: str, target_id: str) -> dict[str, Any]:
        row = only_row(db, tenant_id, action)
        assert (row["actor_type"], row["actor"], row["target_type"], row["target_id"], row["client_address"]) == (
            "api_key", prefix, target_type, target_id, CLIENT), row
        return dict(row["details"])

    made = api.post(f"/v1/events/{replayed_event}/replay", headers=auth)
    assert made.status_code == 202, made.text
    [replay] = made.json()["deliveries"]
    assert expect("event.replayed", "event", replayed_event) == {"replays": {replay["replay_of"]: replay["id"]}}

    [delivery_id] = kill_deliveries_of(db, replayed_delivery)
    made = api.post(f"/v1/deliveries/{delivery_id}/replay", headers=auth)
    assert made.status_code == 202, made.text
    assert expect("delivery.replayed", "delivery", delivery_id) == {"replay_id": made.json()["id"]}

    [dead] = kill_deliveries_of(db, discarded)
    assert api.delete(f"/v1/dead-letter/{dead}", headers=auth).status_code == 204
    assert expect("dead_letter.discarded", "delivery", dead) == {}

    operation = api.post("/v1/dead-letter/replay", json={"event_type": "order.paid"}, headers=auth)
    assert operation.status_code == 202, operation.text
    details = expect("dead_letter.replayed", "operation", operation.json()["id"])
    assert details == {"filter": {"event_type": "order.paid"}}

    put = api.post("/v1/event-types", json={"name": "order.paid", "description": "paid", "retry_schedule": [5],
                                            "schema": {"type": "object"}}, headers=auth)
    assert put.status_code == 201, put.text
    assert expect("event_type.changed", "event_type", "order.paid") == {
        "description": "paid", "retry_schedule": [5.0], "schema": True}
    assert api.delete("/v1/event-types/order.paid", headers=auth).status_code == 204
    assert expect("event_type.deleted", "event_type", "order.paid") == {}
    assert_no_secret_in_audit_log(db, [tenant_key])


# --- a failed change leaves no row ---------------------------------------------------------------------------

def test_refused_and_unknown_changes_leave_no_row(api: TestClient, db, tenant, auth) -> None:
    tenant_id, _ = tenant
    ep = make_endpoint(api, auth)["id"]
    pending = send_event(api, auth)
    before = audit_rows(db, tenant_id)
    refused = [
        (api.patch(f"/v1/endpoints/{ep}", json={"url": "ftp://example.com"}, headers=auth), 400),
        (api.patch(f"/v1/endpoints/{ep}", json={"timeout_seconds": 999}, headers=auth), 400),
        (api.patch(f"/v1/endpoints/{ep}", json={"headers": {"Webhook-Id": "x"}}, headers=auth), 422),
        (api.patch(f"/v1/endpoints/{ep}", json={"url": "http://169.254.169.254/latest"}, headers=auth), 422),
        (api.patch("/v1/endpoints/ep_nonexistent", json={"description": "x"}, headers=auth), 404),
        (api.delete("/v1/endpoints/ep_nonexistent", headers=auth), 404),
        (api.post("/v1/endpoints/ep_nonexistent/pause", headers=auth), 404),
        (api.post("/v1/endpoints/ep_nonexistent/resume", headers=auth), 404),
        (api.get("/v1/endpoints/ep_nonexistent/secret", headers=auth), 404),
        (api.post("/v1/endpoints/ep_nonexistent/rotate-secret", headers=auth), 404),
        (api.post(f"/v1/endpoints/{ep}/rotate-secret", json={"secret": "not-a-secret"}, headers=auth), 400),
        (api.post("/v1/endpoints/ep_nonexistent/recover", json={"since": "2024-01-01T00:00:00Z"}, headers=auth), 404),
        (api.post("/v1/endpoints/ep_nonexistent/test", headers=auth), 404),
        (api.post("/v1/endpoints", json={"url": "https://example.com/x", "secret": "plain"}, headers=auth), 400),
        (api.post(f"/v1/events/{pending}/replay", headers=auth), 409),  # nothing finished yet
        (api.post("/v1/events/evt_nonexistent/replay", headers=auth), 404),
        (api.post("/v1/deliveries/dlv_nonexistent/replay", headers=auth), 404),
        (api.delete("/v1/dead-letter/dlv_nonexistent", headers=auth), 404),
        (api.post("/v1/dead-letter/replay", json={"since": "yesterday"}, headers=auth), 400),
        (api.post("/v1/event-types", json={"name": "a.b", "schema": {"type": 12}}, headers=auth), 422),
        (api.delete("/v1/event-types/never.registered", headers=auth), 404),
        (api.delete("/v1/api-keys/key_nonexistent", headers=auth), 404),
    ]
    for response, status in refused:
        problem(response, status)
    [delivery] = db.execute("SELECT id FROM relay.deliveries WHERE event_id = %s", (pending,)).fetchone()
    problem(api.post(f"/v1/deliveries/{delivery}/replay", headers=auth), 409)  # still pending
    problem(api.delete(f"/v1/dead-letter/{delivery}", headers=auth), 404)  # not dead
    assert audit_rows(db, tenant_id) == before


@pytest.fixture(scope="module")
def api_process(conninfo: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `relay api` process: the failures injected below answer 500, which stay out of the shared app's
    metrics."""
    port = free_port()
    process = RelayProcess(["api", "--host", "127.0.0.1", "--port", str(port)], relay_env(conninfo),
                           tmp_path_factory.mktemp("audit-api") / "api.log")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def test_a_change_that_fails_mid_transaction_leaves_no_row_and_a_failed_audit_row_undoes_the_change(
    api_process: str, db, tenant, auth
) -> None:
    tenant_id, _ = tenant
    with httpx.Client(base_url=api_process, headers=auth, timeout=30) as api:
        ep = make_endpoint(api, {})["id"]
        send_event(api, {})  # a pending delivery, which disabling the endpoint ends
        before = audit_rows(db, tenant_id)
        assert [row["action"] for row in before] == ["endpoint.created"]
        assert before[0]["client_address"] == "127.0.0.1"

        # Disabling ends the pending delivery after the audit rows are written: make that last step fail.
        with failing_trigger(db, "deliveries", tenant_id, "NEW.state = 'dead'"):
            problem(api.patch(f"/v1/endpoints/{ep}", json={"enabled": False, "description": "x"}), 500)
        assert audit_rows(db, tenant_id) == before
        assert db.execute("SELECT enabled, description FROM relay.endpoints WHERE id = %s", (ep,)).fetchone() == (
            True, "")

        # The other way round: when the audit row cannot be written, the change does not happen either.
        with failing_trigger(db, "audit_log", tenant_id):
            problem(api.patch(f"/v1/endpoints/{ep}", json={"description": "y"}), 500)
            problem(api.post(f"/v1/endpoints/{ep}/pause"), 500)
            problem(api.get(f"/v1/endpoints/{ep}/secret"), 500)
            problem(api.post("/v1/api-keys", json={"name": "never"}), 500)
            problem(api.post("/v1/endpoints", json={"url": "https://example.com/never"}), 500)
        assert db.execute("SELECT description, paused FROM relay.endpoints WHERE id = %s", (ep,)).fetchone() == (
            "", False)
        assert db.execute("SELECT count(*) FROM relay.api_keys WHERE tenant_id = %s AND name = 'never'",
                          (tenant_id,)).fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM relay.endpoints WHERE tenant_id = %s",
                          (tenant_id,)).fetchone()[0] == 1
        assert audit_rows(db, tenant_id) == before

        # With nothing failing, the same change commits with its rows.
        assert api.patch(f"/v1/endpoints/{ep}", json={"enabled": False}).status_code == 200
        assert sorted(row["action"] for row in audit_rows(db, tenant_id)[len(before):]) == [
            "endpoint.disabled", "endpoint.updated"]  # one transaction, often one millisecond: either order


# --- GET /v1/audit-log ---------------------------------------------------------------------------------------

def listing(api: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = api.get("/v1/audit-log", params={"limit": 250, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def test_the_audit_log_api_filters_pages_newest_first_and_keeps_to_the_tenant(api: TestClient, db) -> None:
    user = sign_up(api)
    h = user.headers
    first = make_endpoint(api, h)["id"]
    second = make_endpoint(api, h)["id"]
    api.post(f"/v1/endpoints/{first}/pause", headers=h)
    key = api.post("/v1/api-keys", json={"name": "robot"}, headers=h).json()
    robot = bearer(key["key"])
    api.post(f"/v1/endpoints/{second}/pause", headers=robot)
    api.delete(f"/v1/endpoints/{second}", headers=robot)

    everything = [entry for entry in listing(api, h) if not entry["action"].startswith(AUTH_ACTIONS)]
    assert [e["action"] for e in everything] == [
        "endpoint.deleted", "endpoint.paused", "api_key.created", "endpoint.paused", "endpoint.created",
        "endpoint.created"]
    newest = everything[0]
    assert newest["actor_type"] == "api_key" and newest["actor"] == key["prefix"]
    assert newest["target_type"] == "endpoint" and newest["target_id"] == second
    assert newest["client_address"] == CLIENT and newest["details"] == {"url": "https://example.com/hook"}
    assert set(newest) == {"id", "at", "actor_type", "actor", "action", "target_type", "target_id",
                           "client_address", "details"}
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids, reverse=True)

    def actions(**params: Any) -> list[str]:
        return [entry["action"] for entry in listing(api, h, **params)]

    assert actions(action="endpoint.paused") == ["endpoint.paused"] * 2
    assert actions(action="endpoint.") == actions(action="endpoint.*") == [
        "endpoint.deleted", "endpoint.paused", "endpoint.paused", "endpoint.created", "endpoint.created"]
    assert actions(action="endpoint") == []  # exact: no action is called just `endpoint`
    assert actions(actor=key["prefix"]) == ["endpoint.deleted", "endpoint.paused"]
    assert "api_key.created" in actions(actor=user.id) and "endpoint.deleted" not in actions(actor=user.id)
    assert actions(target_type="api_key") == ["api_key.created"]
    assert actions(target_id=first) == ["endpoint.paused", "endpoint.created"]
    assert actions(target_type="endpoint", target_id=second, action="endpoint.paused") == ["endpoint.paused"]

    at = [datetime.fromisoformat(e["at"]) for e in everything]
    assert actions(since=(at[0] + timedelta(seconds=1)).isoformat()) == []
    assert actions(action="endpoint.", until=(at[-1] - timedelta(seconds=1)).isoformat()) == []
    window = actions(action="endpoint.", since=(at[-1] - timedelta(seconds=1)).isoformat(),
                     until=(at[0] + timedelta(seconds=1)).isoformat())
    assert len(window) == 5
    assert actions(since="2000-01-01T00:00:00Z", action="endpoint.deleted") == ["endpoint.deleted"]

    # Pages of two walk every entry once, newest first.
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, "action": "endpoint.", **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/audit-log", params=params, headers=h).json()
        assert len(page["data"]) <= 2
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in everything if e["action"].startswith("endpoint.")]

    # Another tenant sees none of it, whatever it asks for.
    other = sign_up(api)
    assert [e for e in listing(api, other.headers) if not e["action"].startswith(AUTH_ACTIONS)] == []
    assert listing(api, other.headers, target_id=first) == []
    assert listing(api, other.headers, actor=user.id) == []
    assert_no_secret_in_audit_log(db, [PASSWORD, user.access_token, user.refresh_token, key["key"],
                                       other.access_token, other.refresh_token])


def test_the_audit_log_needs_the_admin_scope(api: TestClient, auth) -> None:
    keys = {scope: api.post("/v1/api-keys", json={"name": scope, "scopes": [scope]}, headers=auth).json()["key"]
            for scope in ("read", "events:write", "admin")}
    for scope in ("read", "events:write"):
        refused = problem(api.get("/v1/audit-log", headers=bearer(keys[scope])), 403)
        assert refused["required_scope"] == "admin"
    assert api.get("/v1/audit-log", headers=bearer(keys["admin"])).status_code == 200
    problem(api.get("/v1/audit-log"), 401)


@pytest.mark.parametrize(("params", "status"), [
    ({"action": "Endpoint!"}, 400),
    ({"action": "endpoint..created"}, 400),
    ({"action": "x" * 101}, 400),
    ({"target_type": "tenant"}, 400),
    ({"since": "yesterday"}, 400),
    ({"until": "2024-13-45T99:99:00Z"}, 400),
    ({"limit": 0}, 400),
    ({"limit": 251}, 400),
    ({"cursor": "c" * 65}, 400),
    ({"target_id": "t" * 65}, 400),
    ({"since": "2024-05-01T10:00:00"}, 422),  # no offset: which time zone?
    ({"since": "2024-05-02T00:00:00Z", "until": "2024-05-01T00:00:00Z"}, 422),
])
def test_bad_audit_log_filters_are_problem_documents(api: TestClient, auth, params, status) -> None:
    body = problem(api.get("/v1/audit-log", params=params, headers=auth), status)
    assert body["detail"]


def test_the_audit_log_is_in_the_openapi_document(api: TestClient) -> None:
    operation = api.get("/schema/openapi.json").json()["paths"]["/v1/audit-log"]["get"]
    assert operation["operationId"] == "listAuditLog"
    assert {p["name"] for p in operation["parameters"]} >= {
        "action", "actor", "target_type", "target_id", "since", "until", "cursor", "limit"}
    assert {"200", "400", "401", "403", "422"} <= set(operation["responses"])


# --- the dashboard page (through the API) --------------------------------------------------------------------

def signed_in_dashboard(api: TestClient) -> str:
    """Sign up through the dashboard's form; return the CSRF token (the session is in the client's cookies)."""
    api.cookies.clear()
    form = api.get("/ui/signup").text
    token = re.search(r'name="_csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    signed_up = api.post("/ui/signup", data={"_csrf_token": token, "email": f"a-{uuid.uuid4().hex[:8]}@example.com",
                                             "password": PASSWORD, "password_again": PASSWORD, "tenant_name": "A"},
                         follow_redirects=False)
    assert signed_up.status_code == 303
    return token


def test_the_dashboard_page_shows_refusals_and_never_answers_5xx(api: TestClient) -> None:
    signed_in_dashboard(api)
    try:
        assert api.get("/ui/audit-log").status_code == 200
        bad = api.get("/ui/audit-log", params={"action": "Nope!"})
        assert bad.status_code == 400 and "Action" in bad.text
        failures = []
        for name in ("action", "actor", "target_type", "target_id", "since", "until", "limit", "cursor"):
            for value in ("", "<script>alert(1)</script>", "\x00", "9" * 400, "2024-13-45T99:99", "-1", "%00",
                          "\u202e\u200b", "endpoint.*"):
                answer = api.get("/ui/audit-log", params={name: value}, follow_redirects=False)
                if answer.status_code >= 500 or "<script>alert" in answer.text:
                    failures.append((name, value, answer.status_code))
        assert failures == []
    finally:
        api.cookies.clear()


# --- retention, and the operators' query ---------------------------------------------------------------------

def insert_audit_row(db: psycopg.Connection, tenant_id: str | None, days_ago: float, action: str) -> str:
    from relay.ids import new_id

    row_id = new_id("aud")
    db.execute("INSERT INTO relay.audit_log (id, at, tenant_id, actor_type, action) VALUES"
               " (%s, now() - make_interval(secs => %s), %s, 'system', %s)",
               (row_id, days_ago * 86400, tenant_id, action))
    return row_id


def test_retention_removes_audit_rows_past_relay_audit_retention_only(conninfo, db, tenant, monkeypatch) -> None:
    from relay.db.pool import open_pool
    from relay.jobs import Resources, retention
    from relay.settings import Settings, load_settings

    assert Settings().audit_retention_seconds == 365 * 86400  # a year by default, apart from RELAY_RETENTION
    monkeypatch.setenv("RELAY_AUDIT_RETENTION", "90d")
    assert load_settings().audit_retention_seconds == 90 * 86400

    tenant_id, _ = tenant
    old = {insert_audit_row(db, tenant_id, 400, "endpoint.created"), insert_audit_row(db, None, 366, "login.failed"),
           insert_audit_row(db, tenant_id, 365.5, "endpoint.deleted")}
    kept = {insert_audit_row(db, tenant_id, 364, "endpoint.paused"), insert_audit_row(db, tenant_id, 40, "x.y"),
            insert_audit_row(db, None, 0, "login.failed")}

    async def run() -> None:
        pool = await open_pool(conninfo, max_size=2)
        try:
            # The hourly job as the worker runs it: events go after 30 days, audit rows after a year.
            context = SimpleNamespace(additional_context={"relay": Resources(pool=pool, settings=Settings(),
                                                                              sender=None)})
            await retention(context, timestamp=0)
        finally:
            await pool.close()

    asyncio.run(run())
    left = {row[0] for row in db.execute("SELECT id FROM relay.audit_log WHERE id = ANY(%s)", (list(old | kept),))}
    assert left == kept


def test_retention_deletes_audit_rows_in_batches(conninfo, db, tenant) -> None:
    from relay.db.pool import open_pool
    from relay.db.retention import purge_audit_log

    tenant_id, _ = tenant
    old = [insert_audit_row(db, tenant_id, 10, "endpoint.paused") for _ in range(3)]
    recent = insert_audit_row(db, tenant_id, 1, "endpoint.resumed")

    async def run() -> int:
        pool = await open_pool(conninfo, max_size=2)
        try:
            return await purge_audit_log(pool, older_than_seconds=5 * 86400, batch=1)  # the loop must go on
        finally:
            await pool.close()

    assert asyncio.run(run()) >= 3
    left = {row[0] for row in db.execute("SELECT id FROM relay.audit_log WHERE id = ANY(%s)", (old + [recent],))}
    assert left == {recent}


def test_the_operators_psql_query_lists_the_last_week_across_tenants(api: TestClient, db, tenant, auth) -> None:
    tenant_id, _ = tenant
    ep = make_endpoint(api, auth)["id"]
    stale = insert_audit_row(db, tenant_id, 8, "endpoint.paused")
    path = REPO / "sql" / "queries" / "audit" / "audit_log.sql"
    text = path.read_text()
    assert "relay psql -f sql/queries/audit/audit_log.sql" in text and ":'" not in text  # runs without -v
    cursor = db.cursor(row_factory=psycopg.rows.dict_row)
    rows = cursor.execute(text.encode()).fetchall()
    mine = [row for row in rows if row["target_id"] == ep]
    assert [row["action"] for row in mine] == ["endpoint.created"]
    tenant_name = db.execute("SELECT name FROM relay.tenants WHERE id = %s", (tenant_id,)).fetchone()[0]
    assert mine[0]["tenant"] == tenant_name and mine[0]["client_address"] == CLIENT
    assert all(row["at"] > datetime.now(UTC) - timedelta(days=7, minutes=1) for row in rows)
    assert not [row for row in rows if row["tenant"] == tenant_name and row["action"] == "endpoint.paused"], stale


def test_audit_refuses_to_write_outside_the_changes_transaction(conninfo, db, tenant) -> None:
    from relay.api.audit_log import audit
    from relay.db.tenant_db import TenantDb
    from relay.db.tenants import Principal
    from relay.settings import Settings

    tenant_id, _ = tenant

    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            tenant_db = TenantDb(conn, Principal(tenant_id), Settings())
            with pytest.raises(RuntimeError, match="outside the change's transaction"):
                await audit(tenant_db, None, "endpoint.paused", "endpoint", "ep_x")  # committed alone: refused

    asyncio.run(run())
    assert audit_rows(db, tenant_id) == []
