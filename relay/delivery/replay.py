"""Replay: send finished deliveries again as new deliveries, one by one or in bulk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from relay.db.sql import fetch_all, fetch_one, queries

CHUNK = 500

log = structlog.get_logger("relay.replay")


@dataclass(frozen=True)
class Replayed:
    """A new delivery made by a replay, and the one it repeats."""

    id: str
    replay_of: str


async def replay_deliveries(
    conn: AsyncConnection, tenant_id: str, delivery_ids: list[str], operation_id: str | None = None
) -> list[Replayed]:
    """Replay finished deliveries now; deliveries to disabled or deleted endpoints are skipped."""
    rows = await fetch_all(
        conn, "replay_deliveries", {"tenant_id": tenant_id, "ids": delivery_ids, "operation_id": operation_id}
    )
    return [Replayed(row["id"], row["replay_of"]) for row in rows]


def operation_filter(operation: dict[str, Any]) -> dict[str, Any]:
    """Return the query parameters of an operation's stored filter."""
    stored = operation["filter"]
    return {
        "endpoint_id": stored.get("endpoint_id"),
        "event_type": stored.get("event_type"),
        "since": datetime.fromisoformat(stored["since"]) if stored.get("since") else None,
        "until": datetime.fromisoformat(stored["until"]) if stored.get("until") else None,
    }


async def run_operation(pool: AsyncConnectionPool, tenant_id: str, operation_id: str) -> None:
    """Replay every dead delivery an operation's filter selects, in chunks, recording progress.

    Only deliveries that were dead when the operation was requested are replayed, and
    each at most once (a unique index), so running the job again is harmless.
    """
    async with pool.connection() as conn:
        operation = await fetch_one(conn, "get_operation", {"tenant_id": tenant_id, "id": operation_id})
        if operation is None or operation["status"] in ("succeeded", "failed"):
            return
        scope = {"tenant_id": tenant_id, "cutoff": operation["cutoff"], **operation_filter(operation)}
        counted = await fetch_one(conn, "count_dead_letter", scope)
        total = counted["total"] if counted else 0
        await conn.execute(queries["start_operation"], {"tenant_id": tenant_id, "id": operation_id, "total": total})
    after = ""
    try:
        while True:
            async with pool.connection() as conn, conn.transaction():
                page = await fetch_all(conn, "dead_letter_page", {**scope, "after": after, "limit": CHUNK})
                if not page:
                    break
                ids = [row["id"] for row in page]
                made = await replay_deliveries(conn, tenant_id, ids, operation_id)
                await conn.execute(
                    queries["advance_operation"],
                    {
                        "tenant_id": tenant_id,
                        "id": operation_id,
                        "replayed": len(made),
                        "skipped": len(ids) - len(made),
                    },
                )
                after = ids[-1]
    except Exception as exc:
        async with pool.connection() as conn:
            await conn.execute(
                queries["finish_operation"],
                {"tenant_id": tenant_id, "id": operation_id, "status": "failed", "error": type(exc).__name__},
            )
        raise
    async with pool.connection() as conn:
        await conn.execute(
            queries["finish_operation"],
            {"tenant_id": tenant_id, "id": operation_id, "status": "succeeded", "error": None},
        )
    log.info("operation.finished", tenant_id=tenant_id, operation_id=operation_id, total=total)
