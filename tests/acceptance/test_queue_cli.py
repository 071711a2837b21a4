"""`relay queue`: the open deliveries per endpoint and in total, as a table and as JSON (issue 10, item 6).

No worker runs in this module: the deliveries stay exactly where the test puts them.
"""

from __future__ import annotations

import json

import psycopg

from relay.ids import new_id
from tests.acceptance.test_operator_cli import clean_env, relay
from tests.integration.test_ingest import add_endpoint, event, ingest


def test_relay_queue_counts_open_deliveries_per_endpoint_and_in_total(conninfo: str, db: psycopg.Connection) -> None:
    tenant_id = new_id("ten")
    db.execute("INSERT INTO relay.tenants (id, name) VALUES (%s, 'queue-test')", (tenant_id,))
    busy, quiet = add_endpoint(db, tenant_id), add_endpoint(db, tenant_id)
    ingest(conninfo, tenant_id, [event("a.b") for _ in range(9)])
    rows = [row[0] for row in db.execute(
        "SELECT id FROM relay.deliveries WHERE endpoint_id = %s ORDER BY seq", (busy,))]
    due_old, due_new, in_flight, retry_due, retry_later, paused, fifo, circuit, later = rows
    db.execute("UPDATE relay.deliveries SET next_attempt_at = now() - interval '90 seconds' WHERE id = %s",
               (due_old,))
    db.execute("UPDATE relay.deliveries SET state = 'delivering', attempts = 1, next_attempt_at = now(),"
               " lease_expires_at = now() + interval '1 minute' WHERE id = %s", (in_flight,))
    db.execute("UPDATE relay.deliveries SET state = 'retrying', attempts = 1, next_attempt_at = now() - interval '1s'"
               " WHERE id = %s", (retry_due,))
    db.execute("UPDATE relay.deliveries SET state = 'retrying', attempts = 1, next_attempt_at = now() + interval '1h'"
               " WHERE id = %s", (retry_later,))
    for row_id, reason in ((paused, "pause"), (fifo, "fifo"), (circuit, "circuit")):
        db.execute("UPDATE relay.deliveries SET held_by = %s, next_attempt_at = 'infinity' WHERE id = %s",
                   (reason, row_id))
    db.execute("UPDATE relay.deliveries SET next_attempt_at = now() + interval '1h' WHERE id = %s", (later,))
    db.execute("UPDATE relay.deliveries SET state = 'succeeded', next_attempt_at = NULL, completed_at = now()"
               " WHERE endpoint_id = %s", (quiet,))  # finished work is not in the queue

    env = clean_env(DATABASE_URL=conninfo)
    result = relay("queue", "--json", "--tenant", tenant_id, env=env)
    assert result.returncode == 0, result.stderr
    snapshot = json.loads(result.stdout)
    [endpoint] = snapshot["endpoints"]
    assert endpoint["endpoint_id"] == busy and endpoint["tenant_id"] == tenant_id
    assert (endpoint["due"], endpoint["in_flight"], endpoint["retrying"], endpoint["scheduled"]) == (3, 1, 2, 2)
    assert endpoint["held"] == {"pause": 1, "fifo": 1, "circuit": 1, "disabled": 0, "total": 3}
    assert 85 <= endpoint["oldest_due_seconds"] < 600
    assert snapshot["total"]["due"] == 3 and snapshot["total"]["held"]["total"] == 3
    assert snapshot["total"]["oldest_due_seconds"] == endpoint["oldest_due_seconds"]

    table = relay("queue", "--tenant", tenant_id, env=env)
    assert table.returncode == 0, table.stderr
    header, line, total = table.stdout.splitlines()
    assert "DUE" in header and "OLDEST DUE" in header and busy in line and "1/1/1/0" in line
    assert line.split()[3:7] == ["3", "1", "2", "2"] and total.startswith("TOTAL") and "1m" in line
