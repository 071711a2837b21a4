"""Ingest rate limits per API key, counted in PostgreSQL so every API replica shares them."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from psycopg import AsyncConnection

from relay.db.sql import fetch_one

# A busy key's counter is spread over this many rows; the sum is read across them.
SHARDS = 8


@dataclass(frozen=True)
class Allowance:
    """The outcome of spending against a limit, as the RateLimit-* headers report it."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        """Return the RateLimit-Limit/Remaining/Reset headers (and Retry-After when refused)."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_seconds)
        return headers


async def spend(conn: AsyncConnection, subject: str, cost: int, limit: int) -> Allowance:
    """Count `cost` units for `subject` in the current one-second window against `limit` per second.

    A refused request is counted too, so hammering a limit does not earn a client more.
    """
    row = await fetch_one(
        conn, "spend_rate_limit", {"subject": subject, "shard": random.randrange(SHARDS), "cost": cost}
    )
    assert row is not None  # an upsert … RETURNING always returns its row
    used_before, resets_in = row["used_before"], row["resets_in"]
    used = used_before + cost
    return Allowance(
        allowed=used <= limit,
        limit=limit,
        remaining=max(0, limit - used),
        reset_seconds=max(1, math.ceil(resets_in)),
    )
