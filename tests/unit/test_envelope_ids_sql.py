"""The envelope keeps payload bytes exactly; ids sort by time; the SQL loader reads named blocks."""

import json
import time
from datetime import UTC, datetime

import pytest

from relay.db.sql import load_queries, parse_queries, queries
from relay.envelope import build_envelope, payload_of
from relay.ids import new_id


def test_envelope_keeps_payload_bytes() -> None:
    payload = b'{ "amount" :1.50,  "note":"caf\\u00e9" }'
    body = build_envelope("evt_1", "invoice.paid", datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC), payload)
    assert payload in body
    decoded = json.loads(body)
    assert decoded["id"] == "evt_1" and decoded["type"] == "invoice.paid"
    assert decoded["timestamp"] == "2026-01-02T03:04:05.006000Z"
    assert bytes(payload_of(body)) == payload


def test_ids_are_prefixed_and_time_ordered() -> None:
    first = new_id("evt")
    time.sleep(0.002)  # ids carry milliseconds; two ids need different ones
    second = new_id("evt")
    for made in (first, second):
        prefix, _, body = made.partition("_")
        assert prefix == "evt" and len(body) == 32 and all(c in "0123456789abcdef" for c in body)
    assert first < second


def test_parse_queries() -> None:
    text = "-- name: one\nSELECT 1;\n\n-- name: two\n-- a comment\nSELECT 2;\n"
    assert parse_queries(text) == {"one": "SELECT 1;", "two": "-- a comment\nSELECT 2;"}


def test_duplicate_names_rejected(tmp_path) -> None:
    (tmp_path / "a.sql").write_text("-- name: q\nSELECT 1;")
    (tmp_path / "b.sql").write_text("-- name: q\nSELECT 2;")
    with pytest.raises(ValueError, match="defined twice"):
        load_queries(tmp_path)


def test_core_queries_present() -> None:
    for name in ("insert_events", "claim_due_deliveries", "record_outcomes", "authenticate_api_key"):
        assert name in queries


def test_every_query_the_code_names_exists() -> None:
    import re
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "relay"
    used: set[str] = set()
    for path in package.rglob("*.py"):
        text = path.read_text()
        used |= set(re.findall(r'queries\["(\w+)"\]', text))
        used |= set(re.findall(r'fetch_(?:all|one)\(\s*\w+,\s*"(\w+)"', text))
        # TenantDb's methods take the name first: db.fetch_one("get_event", id=…), db.execute(…)
        used |= set(re.findall(r'\bdb\.(?:fetch_all|fetch_one|execute)\(\s*"(\w+)"', text))
        used |= set(re.findall(r'endpoint_or_404\(\s*db,\s*\w+,\s*"(\w+)"', text))
        used |= set(re.findall(r'"(delete_old_\w+)"', text))
    assert used - set(queries) == set()
    assert set(queries) - used == set(), "queries nobody runs"


def test_ids_made_in_one_millisecond_sort_in_the_order_they_were_made() -> None:
    made = [new_id("aud") for _ in range(5000)]  # thousands per millisecond here
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(len(i) == len("aud_") + 32 for i in made)
