"""Retention: remove events, deliveries, attempts and (on their own clock) audit rows past their age, in batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from psycopg_pool import AsyncConnectionPool

from relay.db.sql import queries

BATCH = 5000


async def purge(pool: AsyncConnectionPool, older_than_seconds: float, batch: int = BATCH) -> dict[str, int]:
    """Delete what is older than the retention age; return how many rows of each kind went.

    Each statement deletes at most `batch` rows in its own short transaction, so ingest
    and delivery never wait behind a long lock. Open deliveries and the events they
    belong to are kept whatever their age; rollups are kept (they are small, and keep
    /metrics counters monotonic).
    """
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
    removed = {}
    for kind, query in (("attempts", "delete_old_attempts"), ("deliveries", "delete_old_deliveries"),
                        ("events", "delete_old_events")):
        total = 0
        while True:
            async with pool.connection() as conn:
                cursor = await conn.execute(queries[query], {"cutoff": cutoff, "batch": batch})
            total += cursor.rowcount
            if cursor.rowcount < batch:
                break
        removed[kind] = total
    async with pool.connection() as conn:
        await conn.execute(queries["delete_old_operations"], {"cutoff": cutoff})
        await conn.execute(queries["delete_old_event_counts"], {"cutoff": cutoff})
    return removed


async def purge_audit_log(pool: AsyncConnectionPool, older_than_seconds: float, batch: int = BATCH) -> int:
    """Delete audit rows older than RELAY_AUDIT_RETENTION, a batch per short transaction; return how many went."""
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
    total = 0
    while True:
        async with pool.connection() as conn:
            cursor = await conn.execute(queries["delete_old_audit_log"], {"cutoff": cutoff, "batch": batch})
        total += cursor.rowcount
        if cursor.rowcount < batch:
            return total
