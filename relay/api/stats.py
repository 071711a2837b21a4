"""`GET /v1/stats`: the tenant's delivery health today, read from rollups and small indexes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import Parameter

from relay.api.errors import Problem, problem_responses
from relay.api.open_counts import OpenCounts
from relay.api.rows import from_row
from relay.db.rollups import quantile_ms
from relay.db.tenant_db import TenantDb


class EndpointCounts(msgspec.Struct):
    total: int
    active: int
    paused: int
    disabled: int
    circuits_open: int


class DeliveriesToday(msgspec.Struct):
    """What today's attempts (since 00:00 UTC) did, and what is still open now."""

    attempts: int
    succeeded: int
    failed_attempts: int
    dead: int
    lost_attempts: int  # attempts Relay lost (a worker died mid-attempt): not in attempts or failed_attempts
    pending: int
    retrying: int
    delivering: int
    held: int


class Latency(msgspec.Struct):
    """Attempt durations today, estimated from the rollups' histogram (bucket upper bounds)."""

    p50_ms: float | None
    p95_ms: float | None


class Failure(msgspec.Struct):
    attempt_id: str
    delivery_id: str
    event_id: str
    endpoint_id: str
    attempt_number: int
    started_at: datetime
    response_status: int | None
    error_class: str | None
    error_message: str | None


class Queue(msgspec.Struct):
    """Deliveries due now (not held) and how long the oldest of them has waited."""

    depth: int
    lag_seconds: float


class HealthFigures(msgspec.Struct):
    """Delivery figures for a tenant or one endpoint."""

    deliveries_today: DeliveriesToday
    success_rate_today: float | None
    dead_letter: int
    latency_today: Latency
    queue: Queue
    recent_failures: list[Failure]


class TenantStats(HealthFigures):
    endpoints: EndpointCounts | None = None
    events_today: int = 0


def start_of_day() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def health_figures(db: TenantDb, endpoint_id: str | None, open_counts: OpenCounts) -> dict[str, Any]:
    """Gather the figures shared by the tenant and endpoint stats (`endpoint_id` None: the whole tenant)."""
    rollup = await db.fetch_one("tenant_rollups_since", endpoint_id=endpoint_id, since=start_of_day())
    assert rollup is not None
    open_rows = {row["state"]: row for row in await open_counts.rows(db, endpoint_id)}
    queue = Queue(depth=sum(row["due"] for row in open_rows.values()),
                  lag_seconds=round(max((row["lag_seconds"] for row in open_rows.values()), default=0.0), 3))
    dead_letter = await db.fetch_one("dead_letter_size", endpoint_id=endpoint_id)
    failures = await db.fetch_all("recent_failures", endpoint_id=endpoint_id, limit=10)
    finished = rollup["succeeded"] + rollup["dead"]
    buckets = [int(b) for b in rollup["buckets"] or []]
    return {
        "deliveries_today": DeliveriesToday(
            attempts=rollup["attempts"], succeeded=rollup["succeeded"], failed_attempts=rollup["failed_attempts"],
            dead=rollup["dead"], lost_attempts=rollup["lost_attempts"],
            pending=open_rows.get("pending", {}).get("n", 0), retrying=open_rows.get("retrying", {}).get("n", 0),
            delivering=open_rows.get("delivering", {}).get("n", 0),
            held=sum(row["held"] for row in open_rows.values()),
        ),
        "success_rate_today": round(rollup["succeeded"] / finished, 4) if finished else None,
        "dead_letter": dead_letter["n"] if dead_letter else 0,
        "latency_today": Latency(p50_ms=quantile_ms(buckets, 0.5), p95_ms=quantile_ms(buckets, 0.95)),
        "queue": queue,
        "recent_failures": [
            from_row(Failure, f, attempt_id=f["id"]) for f in failures
        ],
    }


@get("/v1/stats", operation_id="getStats", tags=["stats"], responses=problem_responses(401))
async def tenant_stats(db: NamedDependency[TenantDb], state: State) -> TenantStats:
    """Endpoints, today's events and deliveries, success rate, dead letter, latency, queue and recent failures."""
    endpoints = await db.fetch_one("endpoint_counts")
    assert endpoints is not None  # an aggregate always returns its row
    events = await db.fetch_one("events_since", since=start_of_day())
    figures = await health_figures(db, None, state.open_counts)
    return TenantStats(**figures, endpoints=EndpointCounts(**endpoints), events_today=events["n"] if events else 0)


class HourFigures(msgspec.Struct):
    """One hour of delivery attempts, from the rollups."""

    hour: datetime
    attempts: int
    succeeded: int
    failed_attempts: int
    dead: int
    lost_attempts: int
    p95_ms: float | None


class HourlyStats(msgspec.Struct):
    """The last `hours` hours, oldest first; hours without traffic are there with zeros."""

    data: list[HourFigures]


Hours = Annotated[int, Parameter(ge=1, le=24 * 31, description="Hours back (1-744), the current one included.")]
EndpointFilter = Annotated[str | None, Parameter(max_length=64, description="Only this endpoint (`ep_…`).")]


@get("/v1/stats/hourly", operation_id="getHourlyStats", tags=["stats"], responses=problem_responses(400, 401, 404))
async def hourly_stats(
    db: NamedDependency[TenantDb], hours: Hours = 24, endpoint_id: EndpointFilter = None
) -> HourlyStats:
    """Attempts, successes, failures, dead deliveries and p95 latency per hour (for charts)."""
    if endpoint_id is not None and await db.fetch_one("get_endpoint_without_secrets", id=endpoint_id) is None:
        raise Problem(404, f"No endpoint {endpoint_id!r}.")
    rows = await db.fetch_all("tenant_rollups_by_hour", hours=hours, endpoint_id=endpoint_id)
    return HourlyStats(data=[
        HourFigures(
            hour=row["hour"], attempts=row["attempts"], succeeded=row["succeeded"],
            failed_attempts=row["failed_attempts"], dead=row["dead"], lost_attempts=row["lost_attempts"],
            p95_ms=quantile_ms([int(b) for b in row["buckets"] or []], 0.95),
        )
        for row in rows
    ])
