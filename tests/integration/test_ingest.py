"""Ingest in PostgreSQL: fan-out with filters, idempotency, atomic batches (F1-F4)."""

import asyncio

import psycopg
import pytest

from relay.db.events import IdempotencyConflict, NewEvent, insert_events, new_event
from relay.ids import new_id
from relay.signing import new_secret


def add_endpoint(db, tenant_id: str, *, event_types=(), channels=(), enabled=True) -> str:
    endpoint_id = new_id("ep")
    db.execute(
        "INSERT INTO relay.endpoints (id, tenant_id, url, secret, event_types, channels, enabled)"
        " VALUES (%s, %s, 'http://127.0.0.1:9/', %s, %s, %s, %s)",
        (endpoint_id, tenant_id, new_secret(), list(event_types), list(channels), enabled),
    )
    return endpoint_id


def event(event_type: str, *, key: str | None = None, channels=(), payload=b'{"a":1}', endpoint_id=None) -> NewEvent:
    return new_event(event_type, payload, channels=tuple(channels), endpoint_id=endpoint_id, idempotency_key=key)


def ingest(conninfo: str, tenant_id: str, events: list[NewEvent]):
    async def go():
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            return await insert_events(conn, tenant_id, events)

    return asyncio.run(go())


def deliveries_of(db, event_id: str) -> set[str]:
    return {row[0] for row in db.execute("SELECT endpoint_id FROM relay.deliveries WHERE event_id = %s", (event_id,))}


def test_fan_out_follows_type_filters_and_channels(conninfo, db, tenant) -> None:
    tenant_id, _ = tenant
    everything = add_endpoint(db, tenant_id)
    exact = add_endpoint(db, tenant_id, event_types=["invoice.paid"])
    prefix = add_endpoint(db, tenant_id, event_types=["invoice.*"])
    other = add_endpoint(db, tenant_id, event_types=["user.created"])
    channelled = add_endpoint(db, tenant_id, channels=["eu"])
    add_endpoint(db, tenant_id, enabled=False)
    [paid, voided, user, eu] = ingest(
        conninfo, tenant_id,
        [event("invoice.paid"), event("invoice.voided"), event("user.created"), event("invoice.paid", channels=["eu"])],
    )
    assert deliveries_of(db, paid.id) == {everything, exact, prefix} and paid.deliveries == 3
    assert deliveries_of(db, voided.id) == {everything, prefix}
    assert deliveries_of(db, user.id) == {everything, other}
    assert deliveries_of(db, eu.id) == {everything, exact, prefix, channelled} and eu.deliveries == 4


def test_prefix_filter_does_not_match_lookalike(conninfo, db, tenant) -> None:
    tenant_id, _ = tenant
    add_endpoint(db, tenant_id, event_types=["invoice.*"])
    [result] = ingest(conninfo, tenant_id, [event("invoices.paid")])
    assert result.deliveries == 0


def test_targeted_event_reaches_only_its_endpoint(conninfo, db, tenant) -> None:
    tenant_id, _ = tenant
    add_endpoint(db, tenant_id)
    target = add_endpoint(db, tenant_id, event_types=["something.else"])
    [result] = ingest(conninfo, tenant_id, [event("invoice.paid", endpoint_id=target)])
    assert deliveries_of(db, result.id) == {target}


def test_other_tenants_endpoints_never_match(conninfo, db, tenant) -> None:
    from relay.db.tenants import create_tenant

    tenant_id, _ = tenant
    other_tenant, _ = create_tenant(db, "other")
    add_endpoint(db, other_tenant)
    [result] = ingest(conninfo, tenant_id, [event("invoice.paid")])
    assert result.deliveries == 0


def test_same_idempotency_key_returns_original_and_creates_nothing(conninfo, db, tenant) -> None:
    tenant_id, _ = tenant
    add_endpoint(db, tenant_id)
    [first] = ingest(conninfo, tenant_id, [event("a.b", key="k1")])
    before = db.execute("SELECT count(*) FROM relay.deliveries WHERE tenant_id = %s", (tenant_id,)).fetchone()[0]
    [again] = ingest(conninfo, tenant_id, [event("a.b", key="k1")])
    after = db.execute("SELECT count(*) FROM relay.deliveries WHERE tenant_id = %s", (tenant_id,)).fetchone()[0]
    assert (again.id, again.deliveries, again.created) == (first.id, 1, False)
    assert before == after == 1


def test_reused_key_with_other_body_conflicts_and_batch_stores_nothing(conninfo, db, tenant) -> None:
    tenant_id, _ = tenant
    add_endpoint(db, tenant_id)
    ingest(conninfo, tenant_id, [event("a.b", key="k2")])
    fresh = event("a.b", key="k3")
    with pytest.raises(IdempotencyConflict):
        ingest(conninfo, tenant_id, [fresh, event("a.b", key="k2", payload=b'{"a":2}')])
    assert db.execute("SELECT count(*) FROM relay.events WHERE id = %s", (fresh.id,)).fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM relay.deliveries WHERE event_id = %s", (fresh.id,)).fetchone()[0] == 0


def test_ingest_notifies_dispatchers_on_commit(conninfo, db, tenant) -> None:
    tenant_id, _ = tenant
    add_endpoint(db, tenant_id)
    with psycopg.connect(conninfo, autocommit=True) as listener:
        listener.execute("LISTEN relay_deliveries")
        ingest(conninfo, tenant_id, [event("a.b")])
        notes = list(listener.notifies(timeout=5, stop_after=1))
    assert [n.channel for n in notes] == ["relay_deliveries"]
