"""The schema: migrations are idempotent and the SQL enum matches relay/states.py."""

import psycopg

from relay.db.migrate import latest_version, migrate
from relay.db.sql import queries
from relay.states import TRANSITIONS, DeliveryState, sources_of


def test_delivery_state_enum_matches_states_py(db: psycopg.Connection) -> None:
    labels = db.execute("SELECT unnest(enum_range(NULL::relay.delivery_state))::text").fetchall()
    assert [row[0] for row in labels] == [state.value for state in DeliveryState]


def test_every_state_is_reachable_and_left_except_terminal() -> None:
    targets = {to for (_, to) in TRANSITIONS}
    assert set(DeliveryState) - {DeliveryState.PENDING} <= targets
    assert sources_of(DeliveryState.DELIVERING) == (DeliveryState.PENDING, DeliveryState.RETRYING)


def test_claim_and_record_guards_use_states_from_states_py() -> None:
    claim = queries["claim_due_deliveries"]
    for state in sources_of(DeliveryState.DELIVERING):
        assert f"'{state.value}'" in claim
    assert "d.state::text = 'delivering'" in queries["record_outcomes"]


def test_migrate_twice_applies_nothing_the_second_time(conninfo: str, db: psycopg.Connection) -> None:
    assert migrate(conninfo) == []
    version = db.execute(queries["schema_version"]).fetchone()[0]
    assert version == latest_version()


def test_terminal_rows_cannot_keep_a_schedule(db: psycopg.Connection, tenant) -> None:
    tenant_id, _ = tenant
    try:
        db.execute(
            "INSERT INTO relay.deliveries (id, tenant_id, event_id, endpoint_id, event_type, state, next_attempt_at, completed_at)"
            " VALUES ('dlv_x', %s, 'evt_x', 'ep_x', 't', 'succeeded', now(), now())",
            (tenant_id,),
        )
    except psycopg.errors.CheckViolation:
        return
    raise AssertionError("a succeeded delivery with a next_attempt_at was accepted")


def test_the_open_delivery_count_reads_only_the_index(db: psycopg.Connection, tenant) -> None:
    # /v1/stats counts open deliveries on every call: the index of open deliveries carries every
    # column the count needs, so an index-only scan can answer it (none would be possible if one
    # were missing: the plan would be a plain index scan of it). The planner is left no other way
    # only to ask that question: sequential and bitmap scans off, and the table's other indexes
    # dropped in a transaction that is rolled back. Steering by costs alone was not enough: on a
    # test database whose statistics said the tenant had one row, it chose the primary key.
    tenant_id, _ = tenant
    with db.transaction(force_rollback=True):
        db.execute("SET LOCAL lock_timeout = '10s'")  # fail, never hang, if something holds the table
        db.execute("SET LOCAL enable_seqscan = off")
        db.execute("SET LOCAL enable_bitmapscan = off")
        others = db.execute(
            """SELECT i.indexrelid::regclass::text, c.conname FROM pg_index i
               LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
               WHERE i.indrelid = 'relay.deliveries'::regclass
                 AND i.indexrelid <> 'relay.deliveries_open_by_endpoint'::regclass"""
        ).fetchall()
        assert len(others) >= 5, others
        for index, constraint in others:
            if constraint:
                db.execute(f'ALTER TABLE relay.deliveries DROP CONSTRAINT "{constraint}"')
            else:
                db.execute(f"DROP INDEX {index}")
        for endpoint_id in (None, "ep_x"):
            plan = "\n".join(row[0] for row in db.execute(
                "EXPLAIN " + queries["open_delivery_counts"], {"tenant_id": tenant_id, "endpoint_id": endpoint_id}
            ).fetchall())
            assert "Index Only Scan using deliveries_open_by_endpoint" in plan, plan
