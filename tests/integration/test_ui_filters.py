"""What the dashboard's events page asks of the API: events by time range, each with its deliveries counted by state."""

from datetime import UTC, datetime, timedelta

import psycopg
from litestar.testing import TestClient

from tests.integration.test_api import make_endpoint


def send(api: TestClient, auth: dict[str, str], event_type: str = "order.paid", **fields) -> str:
    response = api.post("/v1/events", json={"type": event_type, "payload": {"n": 1}, **fields}, headers=auth)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def listed(api: TestClient, auth: dict[str, str], **query) -> list[dict]:
    response = api.get("/v1/events", params=query, headers=auth)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def test_events_list_filters_by_creation_time(api: TestClient, auth, db: psycopg.Connection) -> None:
    old, new = send(api, auth), send(api, auth)
    db.execute("UPDATE relay.events SET created_at = now() - interval '2 days' WHERE id = %s", (old,))
    long_ago = "2000-01-01T00:00:00Z"
    assert [e["id"] for e in listed(api, auth)] == [new, old]
    assert [e["id"] for e in listed(api, auth, since=long_ago)] == [new, old]
    day_ago = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert [e["id"] for e in listed(api, auth, since=day_ago)] == [new]
    assert [e["id"] for e in listed(api, auth, until=day_ago)] == [old]
    assert [e["id"] for e in listed(api, auth, since=day_ago, event_type="order.paid")] == [new]
    assert listed(api, auth, since=day_ago, event_type="other.type") == []
    # Paging keeps the filter: one per page, then nothing more.
    first = api.get("/v1/events", params={"since": long_ago, "limit": 1}, headers=auth).json()
    second = api.get("/v1/events", params={"since": long_ago, "limit": 1, "cursor": first["next_cursor"]},
                     headers=auth).json()
    assert [e["id"] for e in first["data"] + second["data"]] == [new, old] and second["next_cursor"] is None


def test_a_time_the_api_cannot_read_is_a_400_naming_it(api: TestClient, auth) -> None:
    response = api.get("/v1/events", params={"since": "long_ago"}, headers=auth)
    assert response.status_code == 400
    assert "since" in response.text


def test_each_listed_event_counts_its_deliveries_by_state(api: TestClient, auth, db: psycopg.Connection) -> None:
    first = make_endpoint(api, auth)
    make_endpoint(api, auth, event_types=["invoice.*"])
    to_both = send(api, auth, "invoice.paid")
    to_one = send(api, auth, "order.paid")
    to_none = send(api, auth, "invoice.paid", endpoint_id=first["id"])
    db.execute("DELETE FROM relay.deliveries WHERE event_id = %s", (to_none,))
    db.execute(
        "UPDATE relay.deliveries SET state = 'dead', next_attempt_at = NULL, completed_at = now(),"
        " dead_reason = 'permanent_failure' WHERE event_id = %s AND endpoint_id = %s",
        (to_both, first["id"]),
    )
    counts = {e["id"]: e["delivery_states"] for e in listed(api, auth)}
    assert counts == {to_both: {"pending": 1, "dead": 1}, to_one: {"pending": 1}, to_none: {}}
