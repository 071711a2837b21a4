"""Open-delivery counts for the stats: exact and fresh while few, one count shared while many."""

from __future__ import annotations

import asyncio
import time
import uuid

import psycopg

from relay.api.open_counts import OpenCounts
from relay.db.pool import open_pool
from relay.db.tenant_db import TenantDb
from relay.db.tenants import Principal, create_tenant
from relay.settings import Settings


def _add_open(db: psycopg.Connection, tenant_id: str, n: int) -> None:
    db.execute(
        "INSERT INTO relay.deliveries (id, tenant_id, event_id, endpoint_id, event_type, state, next_attempt_at)"
        " SELECT 'dlv_' || md5(random()::text), %s, 'evt_x', 'ep_x', 't', 'pending', now() FROM generate_series(1, %s)",
        (tenant_id, n),
    )


def _pending(rows: list[dict]) -> int:
    return sum(row["n"] for row in rows if row["state"] == "pending")


def test_a_small_queue_is_counted_afresh_on_every_call(conninfo: str, db: psycopg.Connection) -> None:
    tenant_id, _ = create_tenant(db, f"test-{uuid.uuid4().hex[:6]}")

    async def scenario() -> list[int]:
        pool = await open_pool(conninfo, min_size=1, max_size=2)
        counts = OpenCounts(pool, large=100, max_age=3600)
        seen = []
        try:
            async with pool.connection() as conn:
                tenant_db = TenantDb(conn, Principal(tenant_id=tenant_id), Settings())
                for _ in range(3):
                    _add_open(db, tenant_id, 2)
                    seen.append(_pending(await counts.rows(tenant_db, None)))
        finally:
            await counts.close()
            await pool.close()
        return seen

    assert asyncio.run(scenario()) == [2, 4, 6]


def test_a_large_queue_shares_one_count_then_a_background_recount_replaces_it(
    conninfo: str, db: psycopg.Connection
) -> None:
    tenant_id, _ = create_tenant(db, f"test-{uuid.uuid4().hex[:6]}")
    _add_open(db, tenant_id, 5)

    async def scenario() -> tuple[int, int, int, int]:
        pool = await open_pool(conninfo, min_size=1, max_size=2)
        counts = OpenCounts(pool, large=5, max_age=0.2)
        try:
            async with pool.connection() as conn:
                tenant_db = TenantDb(conn, Principal(tenant_id=tenant_id), Settings())
                first = _pending(await counts.rows(tenant_db, None))
                _add_open(db, tenant_id, 3)
                shared = _pending(await counts.rows(tenant_db, None))  # within max_age: the same count
                other_endpoint = _pending(await counts.rows(tenant_db, "ep_other"))  # its own count
                deadline = time.monotonic() + 10
                latest = shared
                while latest != 8 and time.monotonic() < deadline:  # poll: once stale, a recount takes over
                    await asyncio.sleep(0.05)
                    latest = _pending(await counts.rows(tenant_db, None))
        finally:
            await counts.close()
            await pool.close()
        return first, shared, other_endpoint, latest

    first, shared, other_endpoint, latest = asyncio.run(scenario())
    assert (first, shared, other_endpoint) == (5, 5, 0)
    assert latest == 8


def test_a_count_that_took_long_is_shared_for_longer(conninfo: str, db: psycopg.Connection) -> None:
    # A shared count lives at least cost_share times as long as it took to make, however short
    # max_age is: recounting a huge queue back to back would keep a backend busy counting.
    tenant_id, _ = create_tenant(db, f"test-{uuid.uuid4().hex[:6]}")
    _add_open(db, tenant_id, 5)

    async def scenario(cost_share: float) -> list[int]:
        pool = await open_pool(conninfo, min_size=1, max_size=2)
        counts = OpenCounts(pool, large=5, max_age=0.0, cost_share=cost_share)
        seen = []
        try:
            async with pool.connection() as conn:
                tenant_db = TenantDb(conn, Principal(tenant_id=tenant_id), Settings())
                seen.append(_pending(await counts.rows(tenant_db, None)))
                _add_open(db, tenant_id, 1)
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline and seen[-1] != 6:  # poll: would a recount take over?
                    await asyncio.sleep(0.05)
                    seen.append(_pending(await counts.rows(tenant_db, None)))
        finally:
            await counts.close()
            await pool.close()
        return seen

    # Any count takes well over 1 µs: times 10,000,000 that is more than the 3 s this waits.
    assert set(asyncio.run(scenario(10_000_000))) == {5}
    # With no such floor, max_age 0 recounts at once.
    assert asyncio.run(scenario(0))[-1] == 6
