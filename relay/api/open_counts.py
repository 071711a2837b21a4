"""The open deliveries that /v1/stats and the endpoint stats count: exact while few, shared while many.

Counting open deliveries reads every one of them. While a tenant (or endpoint) has fewer than
LARGE of them every call counts afresh. Once it has more, one count is shared by the calls of the
next MAX_AGE seconds — or COST_SHARE times as long as that count took, when that is longer — and a
later call answers with it at once while a single background count replaces it. Counting 1,000,000
open deliveries took ~0.4 s under a drain: a dashboard or monitor polling the stats would otherwise
keep a core busy counting instead of delivering, and even one count a second took a quarter of a
core (README, Performance). Such a large queue's figures are at most about a second old, or ten
times as long as one count of it takes (~4 s at 1,000,000 open deliveries).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import structlog
from psycopg_pool import AsyncConnectionPool

from relay.db.tenant_db import TenantDb
from relay.db.tenants import Principal
from relay.settings import Settings

LARGE = 10_000  # open deliveries from which a count is shared
MAX_AGE = 1.0  # seconds a shared count is used before a fresh one is started
COST_SHARE = 10  # ... at least this many times as long as the count took: counting stays under ~1/11 of a backend

log = structlog.get_logger("relay.api")

Key = tuple[str, str | None]  # (tenant, endpoint or None for the whole tenant)


@dataclass(frozen=True)
class _Count:
    at: float
    took: float
    rows: list[dict[str, Any]]


class OpenCounts:
    """One API process's shared counts of large queues."""

    def __init__(self, pool: AsyncConnectionPool, *, large: int = LARGE, max_age: float = MAX_AGE,
                 cost_share: float = COST_SHARE) -> None:
        self._pool = pool
        self._threshold, self._max_age, self._cost_share = large, max_age, cost_share
        self._large: dict[Key, _Count] = {}
        self._counting: dict[Key, asyncio.Task[None]] = {}

    async def rows(self, db: TenantDb, endpoint_id: str | None) -> list[dict[str, Any]]:
        """`open_delivery_counts` for the caller's tenant (and endpoint)."""
        key = (db.tenant_id, endpoint_id)
        shared = self._large.get(key)
        if shared is None:
            started = time.monotonic()
            rows = await db.fetch_all("open_delivery_counts", endpoint_id=endpoint_id)
            self._remember(key, rows, started)
            return rows
        age = time.monotonic() - shared.at
        if age >= max(self._max_age, self._cost_share * shared.took) and key not in self._counting:
            self._counting[key] = asyncio.create_task(self._recount(key, db.principal, db.settings))
        return shared.rows

    def _remember(self, key: Key, rows: list[dict[str, Any]], started: float) -> None:
        if sum(row["n"] for row in rows) >= self._threshold:
            now = time.monotonic()
            self._large[key] = _Count(now, now - started, rows)
        else:
            self._large.pop(key, None)  # small again: every call counts afresh

    async def _recount(self, key: Key, principal: Principal, settings: Settings) -> None:
        try:
            async with self._pool.connection() as conn:
                started = time.monotonic()  # the count itself, not the wait for a connection
                rows = await TenantDb(conn, principal, settings).fetch_all("open_delivery_counts", endpoint_id=key[1])
            self._remember(key, rows, started)
        except Exception as exc:  # noqa: BLE001 - the next call counts for itself instead
            log.warning("stats.recount_failed", error=type(exc).__name__)
            self._large.pop(key, None)
        finally:
            self._counting.pop(key, None)

    async def close(self) -> None:
        """Stop the counts in progress (the API process is stopping)."""
        tasks = list(self._counting.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
