"""Bad bodies get a 4xx naming the exact field ($.path), and nothing is stored: NUL characters, missing fields."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

NUL = "\u0000"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/event-types", {"name": "a.b", "schema": {"type": "object", f"x{NUL}": 1}}, "$.schema.x\\u0000"),
        ("/v1/event-types", {"name": "a.b", "schema": {"title": f"t{NUL}"}}, "$.schema.title"),
        ("/v1/event-types", {"name": "a.b", "description": f"d{NUL}"}, "$.description"),
        ("/v1/endpoints", {"url": "http://127.0.0.1:9/x", "description": f"a{NUL}b"}, "$.description"),
        ("/v1/endpoints", {"url": "http://127.0.0.1:9/x", "headers": {"x-a": f"v{NUL}"}}, "$.headers.x-a"),
        ("/v1/events", {"type": "a.b", "payload": {"deep": [1, {"k": f"v{NUL}"}]}}, "$.payload.deep[1].k"),
        ("/v1/events/batch", {"events": [{"type": "a.b", "payload": {}}, {"type": "a.b", "payload": {NUL: 1}}]},
         "$.events[1].payload.\\u0000"),
    ],
)
def test_a_nul_character_anywhere_is_refused_with_its_path(api: TestClient, auth, db, tenant, path, body, field):
    before = counts(db, tenant[0])
    response = api.post(path, json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert counts(db, tenant[0]) == before  # nothing half-stored


def counts(db, tenant_id: str) -> tuple[int, int, int]:
    return db.execute(
        "SELECT (SELECT count(*) FROM relay.event_types WHERE tenant_id = %(t)s),"
        " (SELECT count(*) FROM relay.endpoints WHERE tenant_id = %(t)s),"
        " (SELECT count(*) FROM relay.events WHERE tenant_id = %(t)s)",
        {"t": tenant_id},
    ).fetchone()


def test_an_escaped_backslash_u_is_not_a_nul(api: TestClient, auth) -> None:
    response = api.post("/v1/event-types", json={"name": "a.c", "description": "\\u0000 is fine as text"}, headers=auth)
    assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/events", {"payload": {}}, "$.type"),
        ("/v1/events", {"type": 5, "payload": {}}, "$.type"),
        ("/v1/events", {"type": "a.b", "payload": {}, "extra": 1}, "$.extra"),
        ("/v1/events/batch", {"events": [{"type": "a.b", "payload": {}}] * 3 + [{"payload": {}}]}, "$.events[3].type"),
        ("/v1/events/batch", {"events": [{"type": "a.b", "payload": {}, "nope": 1}]}, "$.events[0].nope"),
        ("/v1/endpoints", {"url": "http://127.0.0.1:9/x", "timeout_seconds": "fast"}, "$.timeout_seconds"),
    ],
)
def test_validation_errors_name_the_field_by_its_json_path(api: TestClient, auth, path, body, field) -> None:
    response = api.post(path, json=body, headers=auth)
    assert response.status_code == 400, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
