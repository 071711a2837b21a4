"""The dispatcher on a real database: leases come back, late results lose the race, SIGTERM drains."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
from psycopg.rows import dict_row

from relay.db.pool import open_pool
from relay.db.rollups import empty_buckets, rollup_params
from relay.db.sql import queries
from relay.delivery.dispatcher import Dispatcher
from relay.delivery.outcome import AttemptResult
from relay.delivery.recording import CircuitSettings, Outcome, endpoint_params, record_params
from relay.delivery.sender import Claim, Sender
from relay.states import DeliveryState
from relay.urlguard import AddressPolicy, parse_networks
from tests.integration.test_ingest import add_endpoint, event, ingest
from tests.receiver import Receiver

LOOPBACK = AddressPolicy(parse_networks("127.0.0.0/8"))


def claim_all(db: psycopg.Connection, lease_margin: float) -> list[Claim]:
    rows = db.cursor(row_factory=dict_row).execute(
        queries["claim_due_deliveries"],
        {"limit": 1000, "lease_margin": lease_margin, "default_max_in_flight": 32,
         "credit_tenant_ids": [], "credit_endpoint_ids": [], "credits": []},
    ).fetchall()
    return [Claim.from_row(row) for row in rows if row["action"] == "send"]


def rescue(db: psycopg.Connection, max_lost: int = 3) -> list[tuple]:
    return db.execute(queries["rescue_lost_attempts"], {"max_lost": max_lost, "empty_buckets": empty_buckets()}).fetchall()


def state_of(db: psycopg.Connection, event_id: str) -> tuple[str, int]:
    return db.execute("SELECT state::text, attempts FROM relay.deliveries WHERE event_id = %s", (event_id,)).fetchone()


async def run_dispatcher_until(conninfo: str, done) -> None:
    pool = await open_pool(conninfo, max_size=2)
    dispatcher = Dispatcher(
        pool, conninfo, Sender(max_connections=8, response_body_limit=100, policy=LOOPBACK),
        retry_schedule=(1.0,), concurrency=8, claim_batch_size=8, poll_interval=0.1, lease_margin=30,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        for _ in range(300):
            if await asyncio.to_thread(done):
                break
            await asyncio.sleep(0.05)  # polling interval with a bound
        else:
            raise AssertionError("dispatcher did not finish the work in time")
    finally:
        stop.set()
        await task
        await pool.close()


def test_claim_of_a_dead_worker_comes_back_after_its_lease(conninfo, db, tenant) -> None:
    tenant_id, _ = tenant
    with Receiver() as receiver:
        db.execute("UPDATE relay.endpoints SET enabled = false WHERE tenant_id = %s", (tenant_id,))
        endpoint_id = add_endpoint(db, tenant_id)
        db.execute("UPDATE relay.endpoints SET url = %s WHERE id = %s", (receiver.url(), endpoint_id))
        [accepted] = ingest(conninfo, tenant_id, [event("a.b")])
        # A worker claims it and dies: its lease (timeout + margin) is already over.
        mine = [c for c in claim_all(db, lease_margin=-3600) if c.event_id == accepted.id]
        assert len(mine) == 1 and state_of(db, accepted.id) == ("delivering", 1)
        asyncio.run(run_dispatcher_until(conninfo, lambda: state_of(db, accepted.id)[0] == "succeeded"))
        assert len(receiver.received()) == 1
    # The lost attempt does not count: one attempt, one lost one.
    assert state_of(db, accepted.id) == ("succeeded", 1)
    assert db.execute("SELECT lost_attempts, lost_in_a_row FROM relay.deliveries WHERE event_id = %s",
                      (accepted.id,)).fetchone() == (1, 0)
    log = db.execute(
        "SELECT attempt_number, error_class, outcome::text, lost FROM relay.attempts WHERE event_id = %s"
        " ORDER BY attempt_number",
        (accepted.id,),
    ).fetchall()
    assert log == [(1, "lease_expired", "pending", True), (2, None, "succeeded", False)]  # the lost one is on record
    in_flight = db.execute("SELECT in_flight FROM relay.endpoints WHERE id = %s", (endpoint_id,)).fetchone()[0]
    assert in_flight == 0  # the dead worker's slot came back with its lease


def test_a_late_result_from_an_expired_lease_does_not_move_the_delivery(conninfo, db, tenant) -> None:
    tenant_id, _ = tenant
    add_endpoint(db, tenant_id)
    [accepted] = ingest(conninfo, tenant_id, [event("a.b")])
    [first] = [c for c in claim_all(db, lease_margin=-3600) if c.event_id == accepted.id]
    assert first.delivery_id in [row[1] for row in rescue(db)]
    [second] = [c for c in claim_all(db, lease_margin=30) if c.event_id == accepted.id]
    assert (first.attempt_number, second.attempt_number) == (1, 2)
    assert (first.attempts, second.attempts) == (1, 1)  # the lost try gave its count back
    late = Outcome(first, AttemptResult(200, None, None, {}, "ok"), DeliveryState.SUCCEEDED, None, datetime.now(UTC), 5)
    params = {**record_params([late]), **endpoint_params([late]), **rollup_params([]), **CircuitSettings().params(),
              "fifo_tenant_ids": [], "fifo_endpoint_ids": [], "default_max_in_flight": 32}
    recorded = db.execute(queries["record_outcomes"], params).fetchone()[0]
    assert recorded == 0  # lost the race: the delivery belongs to the second claim now
    assert state_of(db, accepted.id) == ("delivering", 1)
    logged = db.execute(
        "SELECT attempt_number, error_class, response_status FROM relay.attempts WHERE delivery_id = %s ORDER BY started_at",
        (first.delivery_id,),
    ).fetchall()
    # The second claim logged attempt 1 as lost; the late result is still logged as what happened on the wire.
    assert sorted(logged, key=str) == sorted([(1, "lease_expired", None), (1, None, 200)], key=str)


def test_stop_finishes_in_flight_attempts_and_records_them(conninfo, db, tenant) -> None:
    tenant_id, _ = tenant
    async def slow(_):
        await asyncio.sleep(0.5)  # a slow receiver, so the attempt is in flight when stop comes
        return 200, {}, b""

    with Receiver(slow) as receiver:
        db.execute("UPDATE relay.endpoints SET enabled = false WHERE tenant_id = %s", (tenant_id,))
        endpoint_id = add_endpoint(db, tenant_id)
        db.execute("UPDATE relay.endpoints SET url = %s WHERE id = %s", (receiver.url(), endpoint_id))
        [accepted] = ingest(conninfo, tenant_id, [event("a.b")])
        # Stop as soon as the receiver has the request: the attempt is then in flight.
        asyncio.run(run_dispatcher_until(conninfo, lambda: len(receiver.received()) == 1))
    assert state_of(db, accepted.id) == ("succeeded", 1)


def test_one_impossible_row_does_not_stop_the_rescue_of_the_others(conninfo, db, tenant) -> None:
    # A row left `delivering` with no attempt counted (by hand, or by a bug) once made the rescue
    # statement fail its CHECK on every poll, and with it every claim of every worker.
    tenant_id, _ = tenant
    endpoint = add_endpoint(db, tenant_id)
    odd, normal = ingest(conninfo, tenant_id, [event("a.b"), event("a.b")])
    db.execute("UPDATE relay.deliveries SET state = 'delivering', attempts = 0, lease_expires_at = now() - interval"
               " '1 second' WHERE event_id = %s", (odd.id,))
    db.execute("UPDATE relay.deliveries SET state = 'delivering', attempts = 1, lease_expires_at = now() - interval"
               " '1 second' WHERE event_id = %s", (normal.id,))
    rescue(db)
    rows = {row[0]: row[1:] for row in db.execute(
        "SELECT event_id, state::text, attempts, lost_attempts FROM relay.deliveries WHERE endpoint_id = %s",
        (endpoint,))}
    assert rows[odd.id] == ("pending", 0, 1) and rows[normal.id] == ("pending", 0, 1)
