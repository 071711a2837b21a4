"""Delivery rollups: per endpoint and hour, counts and a latency histogram of attempts."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

# Upper bounds of the latency buckets in milliseconds; the last bucket is everything slower.
BUCKETS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)


def empty_buckets() -> list[int]:
    """Return a latency histogram with nothing in it (for rollup rows that count no attempt)."""
    return [0] * (len(BUCKETS_MS) + 1)


@dataclass
class Rollup:
    """One endpoint-hour's share of a batch of attempts."""

    attempts: int = 0
    succeeded: int = 0
    failed_attempts: int = 0
    dead: int = 0
    duration_ms_sum: int = 0
    buckets: list[int] = field(default_factory=empty_buckets)

    def add(self, duration_ms: int, succeeded: bool, dead: bool) -> None:
        self.attempts += 1
        self.succeeded += int(succeeded)
        self.failed_attempts += int(not succeeded)
        self.dead += int(dead)
        self.duration_ms_sum += duration_ms
        self.buckets[bisect.bisect_left(BUCKETS_MS, duration_ms)] += 1


def rollup_params(attempts: Iterable[tuple[str, str, datetime, int, bool, bool]]) -> dict[str, list]:
    """Aggregate (tenant, endpoint, started_at, duration_ms, succeeded, dead) into upsert parameters."""
    rollups: dict[tuple[str, str, datetime], Rollup] = {}
    for tenant_id, endpoint_id, started_at, duration_ms, succeeded, dead in attempts:
        hour = started_at.replace(minute=0, second=0, microsecond=0)
        rollups.setdefault((tenant_id, endpoint_id, hour), Rollup()).add(duration_ms, succeeded, dead)
    keys = list(rollups)
    return {
        "rollup_tenant_ids": [k[0] for k in keys],
        "rollup_endpoint_ids": [k[1] for k in keys],
        "hours": [k[2] for k in keys],
        "attempts": [rollups[k].attempts for k in keys],
        "succeeded": [rollups[k].succeeded for k in keys],
        "failed_attempts": [rollups[k].failed_attempts for k in keys],
        "dead": [rollups[k].dead for k in keys],
        "duration_sums": [rollups[k].duration_ms_sum for k in keys],
        "buckets": [msgspec.json.encode(rollups[k].buckets).decode() for k in keys],
    }


def quantile_ms(buckets: list[int], q: float) -> float | None:
    """Estimate a quantile from bucket counts (the upper bound of the bucket it falls in)."""
    total = sum(buckets)
    if total == 0:
        return None
    rank, seen = q * total, 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= rank:
            return float(BUCKETS_MS[index]) if index < len(BUCKETS_MS) else float(BUCKETS_MS[-1]) * 2
    return float(BUCKETS_MS[-1]) * 2
