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



def _plans_inside(db: psycopg.Connection, query: str, params: dict) -> str:
    """The plans of the statements `query` runs, functions' statements included (auto_explain, as notices)."""
    notices: list[str] = []

    def handler(diag: psycopg.errors.Diagnostic) -> None:
        notices.append(diag.message_primary or "")

    db.add_notice_handler(handler)
    try:
        db.execute("LOAD 'auto_explain'")
        for setting, value in (("log_min_duration", "0"), ("log_nested_statements", "on"), ("log_level", "notice")):
            db.execute(f"SET LOCAL auto_explain.{setting} = {value}")
        db.execute(query, params).fetchall()
    finally:
        db.execute("SET LOCAL auto_explain.log_min_duration = -1")
        db.remove_notice_handler(handler)
    return "\n".join(notices)


def test_the_open_delivery_count_reads_only_the_index_whatever_the_statistics_say(
    db: psycopg.Connection, tenant
) -> None:
    # /v1/stats counts open deliveries on every call while they are few. The index of open
    # deliveries carries every column the count needs, so an index-only scan answers it (none would
    # be possible if one were missing: the plan would be a plain index scan of it). And the count
    # keeps to that index even where the costs the planner knows point to the table: in a drain's
    # last tenth, statistics gathered mid-drain made it read every row just finished (50-100 ms a
    # call instead of 3-17). Here random_page_cost is raised until the plain query reads the table,
    # and the table's other indexes are dropped (in a transaction that is rolled back), so the
    # index under test is the only one an index-only scan could use.
    tenant_id, _ = tenant
    with db.transaction(force_rollback=True):
        db.execute("SET LOCAL lock_timeout = '10s'")  # fail, never hang, if something holds the table
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
        db.execute("SET LOCAL random_page_cost = 1000000")
        body = db.execute(
            "SELECT prosrc FROM pg_proc WHERE oid = 'relay.open_delivery_counts(text, text)'::regprocedure"
        ).fetchone()[0]
        plain = body.replace("p_tenant_id", "%(tenant_id)s").replace("p_endpoint_id", "%(endpoint_id)s::text")
        for endpoint_id in (None, "ep_x"):
            params = {"tenant_id": tenant_id, "endpoint_id": endpoint_id}
            # The same statement outside the function: these costs make it read the table.
            plan = "\n".join(row[0] for row in db.execute("EXPLAIN " + plain, params).fetchall())
            assert "Seq Scan on deliveries" in plan, plan
            plan = _plans_inside(db, queries["open_delivery_counts"], params)
            assert "Index Only Scan using deliveries_open_by_endpoint" in plan, plan
            assert "Seq Scan on deliveries" not in plan, plan
