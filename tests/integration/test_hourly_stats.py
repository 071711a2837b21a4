"""`GET /v1/stats/hourly`: per-hour figures from the rollups, for the dashboard's charts (and API clients)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from relay.db.tenants import create_tenant
from tests.integration.test_ingest import add_endpoint


def add_rollup(db, tenant_id: str, endpoint_id: str, hours_ago: int, succeeded: int, failed: int, dead: int) -> None:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours_ago)
    db.execute(
        "INSERT INTO relay.delivery_rollups (tenant_id, endpoint_id, hour, attempts, succeeded, failed_attempts, dead,"
        " duration_ms_sum, latency_buckets) VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s)",
        (tenant_id, endpoint_id, hour, succeeded + failed, succeeded, failed, dead,
         [0, succeeded + failed, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    )


def test_hours_oldest_first_with_empty_hours_and_only_the_callers_tenant(api, db, tenant, auth) -> None:
    tenant_id, _ = tenant
    first, second = add_endpoint(db, tenant_id), add_endpoint(db, tenant_id)
    add_rollup(db, tenant_id, first, 0, succeeded=5, failed=2, dead=1)
    add_rollup(db, tenant_id, second, 0, succeeded=3, failed=0, dead=0)
    add_rollup(db, tenant_id, first, 5, succeeded=7, failed=0, dead=0)
    add_rollup(db, tenant_id, first, 30, succeeded=100, failed=0, dead=0)  # older than a day: not in the 24 hours
    stranger, _ = create_tenant(db, "stranger")
    add_rollup(db, stranger, add_endpoint(db, stranger), 0, succeeded=999, failed=9, dead=9)

    response = api.get("/v1/stats/hourly", headers=auth)
    assert response.status_code == 200, response.text
    hours = response.json()["data"]
    assert len(hours) == 24
    assert [h["hour"] for h in hours] == sorted(h["hour"] for h in hours)
    now, five_ago = hours[-1], hours[-6]
    assert (now["succeeded"], now["failed_attempts"], now["dead"], now["attempts"]) == (8, 2, 1, 10)
    assert five_ago["succeeded"] == 7
    assert sum(h["succeeded"] for h in hours) == 15  # the stranger's and the old hour's are not counted
    assert now["p95_ms"] is not None and hours[0]["p95_ms"] is None

    one = api.get("/v1/stats/hourly", params={"endpoint_id": second, "hours": 3}, headers=auth).json()["data"]
    assert len(one) == 3 and one[-1]["succeeded"] == 3


def test_bad_parameters_are_refused(api, db, tenant, auth) -> None:
    assert api.get("/v1/stats/hourly", params={"hours": 0}, headers=auth).status_code == 400
    assert api.get("/v1/stats/hourly", params={"hours": 745}, headers=auth).status_code == 400
    missing = api.get("/v1/stats/hourly", params={"endpoint_id": "ep_nowhere"}, headers=auth)
    assert missing.status_code == 404


def test_the_stats_report_the_tenants_queue(api, db, tenant, auth) -> None:
    queue = api.get("/v1/stats", headers=auth).json()["queue"]
    assert queue == {"depth": 0, "lag_seconds": 0.0}


def test_events_today_counts_every_stored_event_once_without_counting_the_events_table(api, db, tenant, auth) -> None:
    tenant_id, _ = tenant
    for n in range(3):
        assert api.post("/v1/events", json={"type": "a.b", "payload": {"n": n}}, headers=auth).status_code == 202
    repeat = {"type": "a.b", "payload": {"n": 9}, "idempotency_key": "once"}
    assert api.post("/v1/events", json=repeat, headers=auth).status_code == 202
    assert api.post("/v1/events", json=repeat, headers=auth).status_code == 200  # the original: not counted again
    batch = {"events": [{"type": "a.b", "payload": {}}, {"type": "a.b", "payload": {}}]}
    assert api.post("/v1/events/batch", json=batch, headers=auth).status_code == 202
    assert api.get("/v1/stats", headers=auth).json()["events_today"] == 6
    # The figure comes from the hourly counts the ingest statements keep, not from counting events.
    db.execute("UPDATE relay.event_counts SET events = events + 100"
               " WHERE ctid = (SELECT ctid FROM relay.event_counts WHERE tenant_id = %s LIMIT 1)", (tenant_id,))
    assert api.get("/v1/stats", headers=auth).json()["events_today"] == 106


def test_the_queue_counts_what_is_due_for_the_tenant_and_the_endpoint(api, db, tenant, auth) -> None:
    endpoint = api.post("/v1/endpoints", json={"url": "http://127.0.0.1:9/hook"}, headers=auth).json()["id"]
    other = api.post("/v1/endpoints", json={"url": "http://127.0.0.1:9/other"}, headers=auth).json()["id"]
    for n in range(3):
        api.post("/v1/events", json={"type": "a.b", "payload": {"n": n}, "endpoint_id": endpoint}, headers=auth)
    api.post("/v1/events", json={"type": "a.b", "payload": {}, "endpoint_id": other}, headers=auth)
    db.execute("UPDATE relay.deliveries SET next_attempt_at = now() - interval '60 seconds'"
               " WHERE ctid = (SELECT ctid FROM relay.deliveries WHERE endpoint_id = %s LIMIT 1)", (endpoint,))
    db.execute("UPDATE relay.deliveries SET next_attempt_at = now() + interval '1 hour' WHERE endpoint_id = %s",
               (other,))  # scheduled for later: not due
    queue = api.get("/v1/stats", headers=auth).json()["queue"]
    assert queue["depth"] == 3 and 59 <= queue["lag_seconds"] < 600
    assert api.post(f"/v1/endpoints/{endpoint}/pause", headers=auth).status_code == 200
    held = api.get(f"/v1/endpoints/{endpoint}/stats", headers=auth).json()["queue"]
    assert held == {"depth": 0, "lag_seconds": 0.0}  # held deliveries are not due
