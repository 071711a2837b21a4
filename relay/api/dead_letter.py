"""`/v1/dead-letter`: dead deliveries not yet replayed or discarded; replay them in bulk, or discard."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter
from msgspec import Meta

from relay.api.audit_log import audit
from relay.api.deliveries import DeliveryId, DeliveryOut, delivery_out
from relay.api.errors import Problem, problem_responses
from relay.api.operations import OperationOut, queue_operation, store_operation
from relay.api.pagination import Cursor, Limit, Page, page_of
from relay.db.tenant_db import TenantDb


class DeadLetterFilter(msgspec.Struct, forbid_unknown_fields=True):
    """Which dead deliveries to replay (all of them when empty)."""

    endpoint_id: Annotated[str, Meta(max_length=64)] | None = None
    event_type: Annotated[str, Meta(max_length=255)] | None = None
    since: datetime | None = None
    until: datetime | None = None


class DeadLetterController(Controller):
    """The dead letter of the calling tenant."""

    path = "/v1/dead-letter"
    tags = ["dead-letter"]

    @get("/", operation_id="listDeadLetter", responses=problem_responses(400, 401))
    async def list(
        self,
        db: NamedDependency[TenantDb],
        limit: Limit = 50,
        cursor: Cursor = None,
        endpoint_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        event_type: Annotated[str | None, QueryParameter(max_length=255)] = None,
        since: Annotated[datetime | None, QueryParameter(description="Created at or after (ISO 8601).")] = None,
        until: Annotated[datetime | None, QueryParameter(description="Created before (ISO 8601).")] = None,
    ) -> Page[DeliveryOut]:
        """List dead deliveries that were neither replayed nor discarded, newest first."""
        rows = await db.fetch_all(
            "list_dead_letter", cursor=cursor, limit=limit + 1, endpoint_id=endpoint_id, event_type=event_type,
            since=since, until=until,
        )
        return page_of([delivery_out(row) for row in rows], limit)

    @post("/replay", operation_id="replayDeadLetter", status_code=202, responses=problem_responses(400, 401))
    async def replay(
        self, request: Request, db: NamedDependency[TenantDb], data: JSONBody[DeadLetterFilter | None] = None
    ) -> OperationOut:
        """Replay every dead delivery the filter selects, once each, as a background operation."""
        chosen = data or DeadLetterFilter()
        scope: dict[str, Any] = {
            key: (value.isoformat() if isinstance(value, datetime) else value)
            for key, value in msgspec.structs.asdict(chosen).items()
            if value is not None
        }
        async with db.transaction():
            operation = await store_operation(db, "replay_dead_letter", scope)
            await audit(db, request, "dead_letter.replayed", "operation", operation.id, filter=scope)
        return await queue_operation(db, operation)

    @delete("/replay", include_in_schema=False, status_code=204)
    async def not_a_delivery(self) -> None:
        """`DELETE /v1/dead-letter/replay` discards a delivery called "replay", which cannot exist (not a 405)."""
        raise Problem(404, "No dead delivery 'replay' in the dead letter.")

    @delete(
        "/{delivery_id:str}", operation_id="discardDeadLetter", status_code=204, responses=problem_responses(401, 404)
    )
    async def discard(self, request: Request, db: NamedDependency[TenantDb], delivery_id: DeliveryId) -> None:
        """Discard a dead delivery: it stays in the log but leaves the dead letter."""
        async with db.transaction():
            if await db.fetch_one("discard_dead_delivery", id=delivery_id) is None:
                raise Problem(404, f"No dead delivery {delivery_id!r} in the dead letter.")
            await audit(db, request, "dead_letter.discarded", "delivery", delivery_id)
