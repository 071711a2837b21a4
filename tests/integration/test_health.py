"""Readiness (F28): database, schema version, queue lag — and an API that starts without its database."""

from __future__ import annotations

import dataclasses
import uuid

from litestar.testing import TestClient

from relay.api.app import create_app
from relay.db.admin import create_database, database_url, drop_database
from relay.db.migrate import latest_version
from relay.settings import load_settings
from tests.support import free_port


def test_ready_when_schema_is_current(api: TestClient) -> None:
    response = api.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready" and body["schema_version"] == latest_version() and body["reasons"] == []


def test_not_ready_on_a_database_that_was_never_migrated(conninfo: str) -> None:
    server = database_url(conninfo, "postgres")
    name = f"relay_empty_{uuid.uuid4().hex[:8]}"
    url = create_database(server, name, fresh=True)
    try:
        with TestClient(create_app(load_settings(), url)) as client:
            response = client.get("/health/ready")
            assert client.get("/health").status_code == 200  # alive, just not ready
    finally:
        drop_database(server, name)
    assert response.status_code == 503
    assert response.json()["schema_version"] is None and "relay migrate" in response.json()["reasons"][0]


def test_not_ready_and_503_when_the_database_is_unreachable() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing?connect_timeout=1"
    settings = dataclasses.replace(load_settings(), db_pool_size=2)
    with TestClient(create_app(settings, url)) as client:
        ready = client.get("/health/ready")
        request = client.get("/v1/endpoints", headers={"Authorization": "Bearer rly_x"})
    assert ready.status_code == 503 and ready.json()["reasons"] == ["database unreachable"]
    assert request.status_code == 503 and request.headers["retry-after"] == "1"
    assert request.headers["content-type"].startswith("application/problem+json")


def test_not_ready_when_the_queue_lags(api: TestClient, conninfo: str, db, tenant) -> None:
    from tests.integration.test_ingest import add_endpoint, event, ingest

    tenant_id, _ = tenant
    add_endpoint(db, tenant_id)
    [accepted] = ingest(conninfo, tenant_id, [event("a.b")])
    db.execute("UPDATE relay.deliveries SET next_attempt_at = now() - interval '1 hour' WHERE event_id = %s", (accepted.id,))
    try:
        response = api.get("/health/ready")
        assert response.status_code == 503 and "queue lag" in response.json()["reasons"][0]
    finally:
        db.execute("UPDATE relay.deliveries SET state = 'dead', next_attempt_at = NULL, completed_at = now()"
                   " WHERE event_id = %s", (accepted.id,))
