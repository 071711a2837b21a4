"""The dispatcher on a real database: leases come back, late results lose the race, SIGTERM drains, pacing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from relay.db.admin import create_database, drop_database
from relay.db.events import insert_events
from relay.db.migrate import migrate
from relay.db.pool import open_pool
from relay.db.rollups import empty_buckets, rollup_params
from relay.db.sql import queries
from relay.db.tenants import create_tenant
from relay.delivery.dispatcher import Dispatcher
from relay.delivery.outcome import AttemptResult
from relay.delivery.recording import CircuitSettings, Outcome, endpoint_params, record_params
from relay.delivery.sender import Claim, Sender
from relay.states import DeliveryState
from relay.urlguard import AddressPolicy, parse_networks
from tests.conftest import _server_url
from tests.integration.test_ingest import add_endpoint, event, ingest
from tests.receiver import Receiver

LOOPBACK = AddressPolicy(parse_networks("127.0.0.0/8"))


def only_endpoint(db: psycopg.Connection, tenant_id: str, url: str = "http://127.0.0.1:9/", **columns) -> str:
    """The tenant's only enabled endpoint, at `url`, with the given columns set; return its id."""
    db.execute("UPDATE relay.endpoints SET enabled = false WHERE tenant_id = %s", (tenant_id,))
    endpoint_id = add_endpoint(db, tenant_id)
    db.execute("UPDATE relay.endpoints SET url = %s WHERE id = %s", (url, endpoint_id))
    for column, value in columns.items():
        db.execute(f"UPDATE relay.endpoints SET {column} = %s WHERE id = %s", (value, endpoint_id))
    return endpoint_id


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


async def run_dispatcher_until(conninfo: str, done: Callable[[], bool], *, kind: type[Dispatcher] = Dispatcher,
                               feed: Callable[[], Awaitable[None]] | None = None, timeout: float = 15.0,
                               **settings: Any) -> Dispatcher:
    """Run a dispatcher (of class `kind`, with `settings` over small defaults) while `feed` runs, until `done`."""
    settings = {"retry_schedule": (1.0,), "concurrency": 8, "claim_batch_size": 8, "poll_interval": 0.1,
                "lease_margin": 30, **settings}
    pool = await open_pool(conninfo, max_size=2)
    sender = Sender(max_connections=settings["concurrency"], response_body_limit=100, policy=LOOPBACK)
    dispatcher = kind(pool, conninfo, sender, **settings)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        if feed is not None:
            await feed()
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(done):
            assert time.monotonic() < deadline, "dispatcher did not finish the work in time"
            await asyncio.sleep(0.05)  # polling interval with a bound
    finally:
        stop.set()
        await task
        await pool.close()
    return dispatcher


def test_claim_of_a_dead_worker_comes_back_after_its_lease(conninfo, db, tenant) -> None:
    tenant_id, _ = tenant
    with Receiver() as receiver:
        endpoint_id = only_endpoint(db, tenant_id, receiver.url())
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
        only_endpoint(db, tenant_id, receiver.url())
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


class ClaimLog(Dispatcher):
    """The real dispatcher, noting when each claim started, what it asked for and how many it got."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.claims: list[tuple[float, int, int]] = []

    async def _claim(self, limit: int) -> list[Claim]:
        started = time.monotonic()
        claims = await super()._claim(limit)
        self.claims.append((started, limit, len(claims)))
        return claims


@pytest.fixture
def own_database() -> Iterator[str]:
    """A migrated database of the test's own: the claim serves every tenant, and other tests leave failing
    endpoints retrying in the shared one (whose attempts, at their cap, would end the pacing pauses)."""
    server, name = _server_url(), f"relay_pacing_{uuid.uuid4().hex[:10]}"
    url = create_database(server, name, fresh=True)
    try:
        migrate(url)
        yield url
    finally:
        drop_database(server, name)


def _gaps_after_short_claims(conninfo: str, events: int, pacing: float, **endpoint: int) -> list[float]:
    """Deliver `events` trickled one by one to a receiver through an endpoint with the given settings;
    return the seconds from each claim that came back short to the start of the next one."""
    with psycopg.connect(conninfo, autocommit=True) as db, Receiver() as receiver:
        tenant_id, _ = create_tenant(db, "pacing")
        endpoint_id = only_endpoint(db, tenant_id, receiver.url(), **endpoint)

        def all_sent() -> bool:
            return db.execute("SELECT count(*) FROM relay.deliveries WHERE endpoint_id = %s AND state = 'succeeded'",
                              (endpoint_id,)).fetchone()[0] == events

        async def trickle() -> None:  # one event at a time, as fast as they go
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                for _ in range(events):
                    await insert_events(conn, tenant_id, [event("a.b")])

        log = asyncio.run(run_dispatcher_until(conninfo, all_sent, kind=ClaimLog, feed=trickle, timeout=60,
                                               concurrency=64, claim_batch_size=64, poll_interval=1.0, pacing=pacing))
        assert isinstance(log, ClaimLog)
        assert len(receiver.received()) == events
    assert len(log.claims) < events, len(log.claims)  # several deliveries per claim
    return [b[0] - a[0] for a, b in zip(log.claims, log.claims[1:], strict=False) if a[2] < a[1]]


def test_light_traffic_is_claimed_at_the_pacing_interval_not_once_per_event(own_database: str) -> None:
    # Events trickling in one by one each woke a claim of their own (and each outcome a recording of its
    # own): two statements per event, whatever the rate. With pacing, a claim that came back short is
    # followed by the next no sooner than the pacing interval after it started. The endpoint has a
    # healthy endpoint's adaptive level, far from its cap (a new one starts at 4 and grows).
    pacing = 0.05
    gaps = _gaps_after_short_claims(own_database, 120, pacing, concurrency_level=64)
    assert len(gaps) >= 5, gaps
    assert min(gaps) >= pacing * 0.95, sorted(gaps)[:5]


def test_an_endpoint_at_its_cap_is_not_paced(own_database: str) -> None:
    # While an endpoint's in-flight cap binds, its next claim is what frees its queue: no pacing then,
    # or a drain to a capped endpoint would go one claim per pacing interval. The interval here is long
    # (1 s) so that pacing, if it applied, could not be mistaken for anything else.
    pacing = 1.0
    gaps = _gaps_after_short_claims(own_database, 60, pacing, max_in_flight=2, concurrency_level=2)
    quick = [gap for gap in gaps if gap < pacing * 0.9]
    assert len(quick) >= 10, sorted(gaps)  # 60 deliveries, 2 at a time: claims followed each other at once


def test_a_fifo_head_held_behind_nothing_is_released_by_the_poll(conninfo, db, tenant) -> None:
    # What the race between a claim and a recording left behind (see release_fifo_heads): the delivery
    # before it finished, and it is still held 'fifo'. The poll lets it go.
    tenant_id, _ = tenant
    with Receiver() as receiver:
        only_endpoint(db, tenant_id, receiver.url(), fifo=True)
        first, second = ingest(conninfo, tenant_id, [event("a.b"), event("a.b")])
        db.execute("UPDATE relay.deliveries SET state = 'succeeded', attempts = 1, next_attempt_at = NULL,"
                   " completed_at = now() WHERE event_id = %s", (first.id,))
        db.execute("UPDATE relay.deliveries SET held_by = 'fifo', next_attempt_at = 'infinity' WHERE event_id = %s",
                   (second.id,))
        asyncio.run(run_dispatcher_until(conninfo, lambda: state_of(db, second.id)[0] == "succeeded"))
        assert [r.headers["webhook-id"] for r in receiver.received()] == [second.id]


def test_a_fifo_delivery_held_behind_an_open_one_stays_held(conninfo, db, tenant) -> None:
    # The repair lets go only a head: one behind a delivery still open waits for it.
    tenant_id, _ = tenant
    only_endpoint(db, tenant_id, fifo=True)
    first, second = ingest(conninfo, tenant_id, [event("a.b"), event("a.b")])
    db.execute("UPDATE relay.deliveries SET state = 'retrying', attempts = 1,"
               " next_attempt_at = now() + interval '1 hour' WHERE event_id = %s", (first.id,))
    db.execute("UPDATE relay.deliveries SET held_by = 'fifo', next_attempt_at = 'infinity' WHERE event_id = %s",
               (second.id,))
    released = db.execute(queries["release_fifo_heads"]).fetchall()
    assert second.id not in [row[2] for row in released]
    assert db.execute("SELECT held_by FROM relay.deliveries WHERE event_id = %s", (second.id,)).fetchone()[0] == "fifo"
