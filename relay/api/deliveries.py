"""`/v1/deliveries`: the delivery log, filtered and paginated, with every attempt."""

from __future__ import annotations

from datetime import datetime
from itertools import groupby
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, PathParameter, QueryParameter

from relay.api.audit_log import audit
from relay.api.errors import Problem, problem_responses
from relay.api.pagination import Cursor, Limit, Page, page_of
from relay.db.tenant_db import TenantDb
from relay.delivery.replay import replay_deliveries
from relay.states import TERMINAL, DeliveryState

DeliveryId = Annotated[str, PathParameter(max_length=64, description="A delivery id (`dlv_…`).")]


class AttemptOut(msgspec.Struct):
    """One HTTP attempt of a delivery."""

    id: str
    attempt_number: int
    started_at: datetime
    duration_ms: int
    response_status: int | None
    response_headers: dict[str, str] | None
    response_body: str | None
    error_class: str | None
    error_message: str | None
    outcome: DeliveryState
    next_attempt_at: datetime | None
    lost: bool  # Relay lost this attempt (lease expired): it does not count


class DeliveryOut(msgspec.Struct):
    """One event's delivery to one endpoint."""

    id: str
    event_id: str
    endpoint_id: str
    event_type: str
    status: DeliveryState
    attempts: int  # attempts the receiver answered or failed: what the retry schedule counts
    lost_attempts: int  # attempts Relay lost (a worker died mid-attempt): logged, not counted
    dead_reason: str | None  # permanent_failure, retries_exhausted, endpoint_disabled or lost_attempts
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    held_by: str | None
    replay_of: str | None
    replayed_at: datetime | None
    created_at: datetime
    completed_at: datetime | None


class ReplayOut(msgspec.Struct):
    """A delivery made by a replay."""

    id: str
    replay_of: str


class DeliveryDetail(DeliveryOut):
    """A delivery with its attempts, oldest first."""

    attempt_log: list[AttemptOut] = []


def delivery_out(row: dict[str, Any]) -> DeliveryOut:
    """Shape a database row for the API; a delivering row's next_attempt_at is a lease, not a schedule."""
    return DeliveryOut(
        id=row["id"],
        event_id=row["event_id"],
        endpoint_id=row["endpoint_id"],
        event_type=row["event_type"],
        status=DeliveryState(row["state"]),
        attempts=row["attempts"],
        lost_attempts=row["lost_attempts"],
        dead_reason=row["dead_reason"],
        next_attempt_at=None if row["state"] == DeliveryState.DELIVERING else row["next_attempt_at"],
        last_attempt_at=row["last_attempt_at"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        held_by=row["held_by"],
        replay_of=row["replay_of"],
        replayed_at=row["replayed_at"],
        created_at=row["created_at"],
        completed_at=row["completed_at"],
    )


async def delivery_details(db: TenantDb, rows: list[dict[str, Any]]) -> list[DeliveryDetail]:
    """Attach every attempt to each delivery row with one query."""
    attempts = await db.fetch_all("attempts_of_deliveries", delivery_ids=[row["id"] for row in rows])
    by_delivery = {
        delivery_id: [msgspec.convert(a, AttemptOut, from_attributes=False) for a in group]
        for delivery_id, group in groupby(attempts, key=lambda a: a.pop("delivery_id"))
    }
    return [
        DeliveryDetail(**msgspec.structs.asdict(delivery_out(row)), attempt_log=by_delivery.get(row["id"], []))
        for row in rows
    ]


class DeliveryController(Controller):
    """Deliveries of the calling tenant."""

    path = "/v1/deliveries"
    tags = ["deliveries"]

    @get("/", operation_id="listDeliveries", responses=problem_responses(400, 401))
    async def list(
        self,
        db: NamedDependency[TenantDb],
        limit: Limit = 50,
        cursor: Cursor = None,
        status: FromQuery[DeliveryState | None] = None,
        endpoint_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        event_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        event_type: Annotated[str | None, QueryParameter(max_length=255)] = None,
        since: Annotated[datetime | None, QueryParameter(description="Created at or after (ISO 8601).")] = None,
        until: Annotated[datetime | None, QueryParameter(description="Created before (ISO 8601).")] = None,
    ) -> Page[DeliveryOut]:
        """List deliveries, newest first, filtered by status, endpoint, event, event type and time."""
        rows = await db.fetch_all(
            "list_deliveries",
            cursor=cursor,
            limit=limit + 1,
            state=status.value if status else None,
            endpoint_id=endpoint_id,
            event_id=event_id,
            event_type=event_type,
            since=since,
            until=until,
        )
        return page_of([delivery_out(row) for row in rows], limit)

    @get("/{delivery_id:str}", operation_id="getDelivery", responses=problem_responses(401, 404))
    async def read(self, db: NamedDependency[TenantDb], delivery_id: DeliveryId) -> DeliveryDetail:
        """Read one delivery with every attempt."""
        (detail,) = await delivery_details(db, [await _delivery_or_404(db, delivery_id)])
        return detail

    @post("/{delivery_id:str}/replay", operation_id="replayDelivery", status_code=202,
          responses=problem_responses(401, 404, 409))
    async def replay(self, request: Request, db: NamedDependency[TenantDb], delivery_id: DeliveryId) -> ReplayOut:
        """Send a finished delivery again, as a new delivery (the original stays as it was)."""
        row = await _delivery_or_404(db, delivery_id)
        if row["state"] not in TERMINAL:
            raise Problem(
                409, f"Delivery {delivery_id!r} is still {row['state']}; only finished deliveries are replayed."
            )
        async with db.transaction():
            made = await replay_deliveries(db.conn, db.tenant_id, [delivery_id])
            if not made:
                raise Problem(409, f"The endpoint of delivery {delivery_id!r} is disabled or deleted.")
            await audit(db, request, "delivery.replayed", "delivery", delivery_id, replay_id=made[0].id)
        return ReplayOut(id=made[0].id, replay_of=made[0].replay_of)


async def _delivery_or_404(db: TenantDb, delivery_id: str) -> dict[str, Any]:
    row = await db.fetch_one("get_delivery", id=delivery_id)
    if row is None:
        raise Problem(404, f"No delivery {delivery_id!r}.")
    return row
