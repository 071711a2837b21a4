"""The claim statement on a real database: fair shares, in-flight caps, and a cost that ignores the backlog."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import dict_row

from relay.db.sql import queries
from relay.db.tenants import create_tenant
from relay.delivery.concurrency import START_LEVEL, Signal, adjustment
from tests.integration.test_ingest import add_endpoint

PARAMS = {"lease_margin": 30, "default_max_in_flight": 32, "credit_tenant_ids": [], "credit_endpoint_ids": [],
          "credits": []}


@pytest.fixture(autouse=True)
def _drop_backlogs(db: psycopg.Connection) -> Iterator[None]:
    """The claim is global: leave no backlog behind for the tests that run dispatchers after these."""
    yield
    db.execute(r"DELETE FROM relay.deliveries WHERE id LIKE 'dlv\_ep\_%'")
    db.execute(r"DELETE FROM relay.events WHERE id LIKE 'evt\_ep\_%'")


def backlog(db: psycopg.Connection, tenant_id: str, endpoint_id: str, count: int, *, age: str = "1 hour") -> None:
    """Give an endpoint `count` due deliveries, all older than anything ingested just now."""
    db.execute(
        """INSERT INTO relay.events (id, tenant_id, type, body)
           SELECT 'evt_' || %(e)s || '_' || n, %(t)s, 'a.b', '{}'::bytea FROM generate_series(1, %(n)s) AS n
           ON CONFLICT DO NOTHING""",
        {"t": tenant_id, "e": endpoint_id, "n": count},
    )
    db.execute(
        """INSERT INTO relay.deliveries (id, tenant_id, event_id, endpoint_id, event_type, state, next_attempt_at)
           SELECT 'dlv_' || %(e)s || '_' || n, %(t)s, 'evt_' || %(e)s || '_' || n, %(e)s, 'a.b', 'pending',
                  now() - %(age)s::interval
           FROM generate_series(1, %(n)s) AS n
           ON CONFLICT DO NOTHING""",
        {"t": tenant_id, "e": endpoint_id, "n": count, "age": age},
    )
    db.execute("ANALYZE relay.deliveries")


def claim(db: psycopg.Connection, limit: int) -> list[dict]:
    rows = db.cursor(row_factory=dict_row).execute(queries["claim_due_deliveries"], {**PARAMS, "limit": limit})
    return [row for row in rows.fetchall() if row["action"] == "send"]


def test_a_fresh_event_to_an_idle_endpoint_goes_in_the_first_round_despite_a_backlog(db, tenant) -> None:
    tenant_id, _ = tenant
    busy = add_endpoint(db, tenant_id)
    backlog(db, tenant_id, busy, 2000)
    quiet_tenant, _ = create_tenant(db, "quiet")
    quiet = add_endpoint(db, quiet_tenant)
    backlog(db, quiet_tenant, quiet, 1, age="0 seconds")
    with db.transaction(force_rollback=True):
        sent = claim(db, 256)
        mine = [row for row in sent if row["tenant_id"] in (tenant_id, quiet_tenant)]
        assert any(row["endpoint_id"] == quiet for row in mine)
        # The busy endpoint got no more than its start level (4): the rest stays due, untouched.
        assert sum(row["endpoint_id"] == busy for row in mine) == 4
        assert db.execute("SELECT count(*) FROM relay.deliveries WHERE endpoint_id = %s AND state = 'pending'"
                          " AND attempts = 0 AND lease_expires_at IS NULL", (busy,)).fetchone()[0] == 1996


def test_the_in_flight_cap_holds_across_claims(db, tenant) -> None:
    tenant_id, _ = tenant
    endpoint = add_endpoint(db, tenant_id)
    db.execute("UPDATE relay.endpoints SET concurrency_level = 1000, max_in_flight = 7 WHERE id = %s", (endpoint,))
    backlog(db, tenant_id, endpoint, 50)
    with db.transaction(force_rollback=True):
        first = [row for row in claim(db, 256) if row["endpoint_id"] == endpoint]
        second = [row for row in claim(db, 256) if row["endpoint_id"] == endpoint]
        assert (len(first), len(second)) == (7, 0)
        assert db.execute("SELECT in_flight FROM relay.endpoints WHERE id = %s", (endpoint,)).fetchone()[0] == 7


def test_tenants_share_a_round_equally_whatever_their_number_of_endpoints(db) -> None:
    big, _ = create_tenant(db, "big")
    small, _ = create_tenant(db, "small")
    for _ in range(40):
        backlog(db, big, add_endpoint(db, big), 10)
    lone = add_endpoint(db, small)
    db.execute("UPDATE relay.endpoints SET concurrency_level = 32 WHERE id = %s", (lone,))
    backlog(db, small, lone, 100, age="0 seconds")  # younger than all of big's: oldest-first would starve it
    tenants = db.execute("SELECT count(DISTINCT tenant_id) FROM relay.ready_lanes() WHERE first_due <= now()")
    fair_share = 64 // tenants.fetchone()[0]  # other tests' tenants may have due work too
    with db.transaction(force_rollback=True):
        sent = [row for row in claim(db, 64) if row["tenant_id"] in (big, small)]
        by_tenant = {t: sum(row["tenant_id"] == t for row in sent) for t in (big, small)}
        # 40 endpoints of one tenant do not crowd out the other tenant's single endpoint.
        assert by_tenant[small] >= fair_share, (by_tenant, fair_share)
        assert by_tenant[big] >= fair_share


def _nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _explain(db: psycopg.Connection, query: str, params: dict) -> list[dict]:
    plan = db.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + queries[query], params).fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)
    return list(_nodes(plan[0]["Plan"]))


def _plan_cost(db: psycopg.Connection) -> int:
    with db.transaction(force_rollback=True):
        top = _explain(db, "claim_due_deliveries", {**PARAMS, "limit": 256})[0]
    return top["Shared Hit Blocks"] + top["Shared Read Blocks"]


def test_the_claim_costs_the_same_with_a_ten_times_larger_backlog(db, tenant) -> None:
    tenant_id, _ = tenant
    endpoint = add_endpoint(db, tenant_id)
    backlog(db, tenant_id, endpoint, 10_000)
    small = _plan_cost(db)
    db.execute("DELETE FROM relay.deliveries WHERE endpoint_id = %s", (endpoint,))
    db.execute("VACUUM relay.deliveries")  # what autovacuum does: dead index entries would blur the comparison
    backlog(db, tenant_id, endpoint, 100_000)
    large = _plan_cost(db)
    assert large < small * 1.5 + 50, (small, large)


def level_after(db: psycopg.Connection, level: float, congested: bool, increment: float, ceiling: int) -> float:
    return db.execute("SELECT relay.next_concurrency_level(%s, %s, %s, %s)",
                      (level, congested, increment, ceiling)).fetchone()[0]


def test_the_level_halves_on_congestion_grows_by_the_increment_and_stays_within_bounds(db) -> None:
    assert level_after(db, 16.0, True, 0.0, 32) == 8.0
    assert level_after(db, 1.5, True, 0.0, 32) == 1.0
    assert level_after(db, 4.0, False, 0.25, 32) == 4.25
    assert level_after(db, 31.9, False, 1.0, 32) == 32.0
    assert level_after(db, 50.0, False, 0.0, 10) == 10.0  # a lowered limit caps the level at once


def test_a_healthy_receiver_reaches_its_limit_in_a_few_rounds_and_backs_off_on_congestion(db) -> None:
    level, threshold, rounds = START_LEVEL, None, 0
    while level < 32:
        batch = [(Signal.FAST, level, threshold)] * int(level)  # one full round of answers at the current level
        step = adjustment(batch)
        level = level_after(db, level, step.congested, step.increment, 32)
        rounds += 1
    assert rounds == 3  # 4 -> 8 -> 16 -> 32: slow start doubles per round
    step = adjustment([(Signal.CONGESTED, level, threshold)])
    level, threshold = level_after(db, level, step.congested, step.increment, 32), level / 2
    assert level == 16.0
    step = adjustment([(Signal.FAST, level, threshold)] * 16)  # above the threshold now: about one per round
    assert level_after(db, level, step.congested, step.increment, 32) == pytest.approx(17.0)


def _claimed_since_the_last_vacuum(db: psycopg.Connection, endpoint: str, count: int) -> None:
    """What a busy queue looks like between two vacuums: the oldest deliveries claimed (and some
    finished), their old versions' entries still at the head of the queue's indexes. Done inside
    the caller's transaction, so no vacuum can remove them while it looks."""
    db.execute(
        """UPDATE relay.deliveries SET state = 'delivering', attempts = 1,
                                       lease_expires_at = now() + interval '1 hour'
           WHERE id IN (SELECT id FROM relay.deliveries WHERE endpoint_id = %s AND state = 'pending'
                        ORDER BY seq LIMIT %s)""",
        (endpoint, count),
    )


def test_the_claim_walks_the_entries_of_claimed_deliveries_once_not_twice(db, tenant) -> None:
    # The claim finds each endpoint's first ready delivery (a skip scan that must step over the
    # index entries of deliveries claimed since the last vacuum), then takes that endpoint's rows
    # from exactly there — not by stepping over the same entries again.
    tenant_id, _ = tenant
    endpoint = add_endpoint(db, tenant_id)
    backlog(db, tenant_id, endpoint, 6_000)
    with db.transaction(force_rollback=True):
        _claimed_since_the_last_vacuum(db, endpoint, 5_000)
        nodes = _explain(db, "claim_due_deliveries", {**PARAMS, "limit": 256})
        takes = [n for n in nodes if n.get("Index Name") == "deliveries_ready" and n["Node Type"] == "Index Scan"]
        assert takes, [n["Node Type"] for n in nodes]
        sent = next(n for n in nodes if n["Node Type"] == "ModifyTable")["Actual Rows"]
        assert sent > 0
        # Stepping over 5,000 claimed rows' entries costs ~230 block reads; the rows taken, a few.
        assert all(n["Shared Hit Blocks"] + n["Shared Read Blocks"] < 50 for n in takes), \
            [(n["Shared Hit Blocks"], n["Actual Rows"]) for n in takes]


def test_recording_finds_its_deliveries_by_key_however_many_were_claimed_since_the_last_vacuum(db, tenant) -> None:
    tenant_id, _ = tenant
    endpoint = add_endpoint(db, tenant_id)
    backlog(db, tenant_id, endpoint, 6_000)  # analysed with no delivery in flight, as on a quiet queue
    with db.transaction(force_rollback=True):
        _claimed_since_the_last_vacuum(db, endpoint, 5_000)
        db.execute("UPDATE relay.deliveries SET state = 'succeeded', lease_expires_at = NULL, next_attempt_at = NULL,"
                   " completed_at = now() WHERE endpoint_id = %s AND state = 'delivering'", (endpoint,))
        _claimed_since_the_last_vacuum(db, endpoint, 10)  # the 10 after the finished ones
        ids = [row[0] for row in db.execute(
            "SELECT id FROM relay.deliveries WHERE endpoint_id = %s AND state = 'delivering' ORDER BY seq",
            (endpoint,),
        )]
        assert len(ids) == 10
        n = len(ids)
        now = db.execute("SELECT now()").fetchone()[0]
        params = {
            "delivery_ids": ids, "tenant_ids": [tenant_id] * n, "event_ids": [i.replace("dlv_", "evt_") for i in ids],
            "endpoint_ids": [endpoint] * n, "attempt_numbers": [1] * n, "states": ["succeeded"] * n,
            "delays": [None] * n, "attempt_ids": [f"att_{i}" for i in ids], "started_at": [now] * n,
            "durations": [5] * n, "statuses": [200] * n, "response_headers": ["{}"] * n,
            "response_bodies": [""] * n, "error_classes": [None] * n, "error_messages": [None] * n,
            "dead_reasons": [None] * n,
            **{k: [] for k in ("ep_tenant_ids", "ep_endpoint_ids", "judged", "trailing_failures", "had_success",
                               "first_failure_at", "congested", "increments", "fifo_tenant_ids",
                               "fifo_endpoint_ids", "rollup_tenant_ids", "rollup_endpoint_ids", "hours",
                               "attempts", "succeeded", "failed_attempts", "dead", "duration_sums", "buckets")},
            "threshold": 5, "cooldown": 30, "max_cooldown": 3600, "default_max_in_flight": 32,
        }
        nodes = _explain(db, "record_outcomes", params)
        moved = next(n for n in nodes if n["Node Type"] == "ModifyTable" and n["Operation"] == "Update")
        assert moved["Actual Rows"] == n
        assert not [x for x in nodes if x.get("Index Name") == "deliveries_leases"]
        # Ten rows found by key: a few blocks each, not a walk over 5,000 finished deliveries' entries.
        assert moved["Shared Hit Blocks"] + moved["Shared Read Blocks"] < 300, moved["Shared Hit Blocks"]
