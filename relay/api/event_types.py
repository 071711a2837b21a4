"""`/v1/event-types`: registered event types, with an optional retry schedule that wins over the endpoint's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import jsonschema
import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter
from psycopg.types.json import Jsonb

from relay.api.audit_log import audit
from relay.api.endpoints import Description, RetrySchedule
from relay.api.errors import Problem, problem_responses
from relay.api.events import EventType
from relay.api.pagination import Cursor, Limit, Page, page_of
from relay.api.rows import from_row
from relay.db.tenant_db import TenantDb

EventTypeName = Annotated[str, PathParameter(max_length=255, description="An event type name, e.g. `invoice.paid`.")]


class EventTypeIn(msgspec.Struct, forbid_unknown_fields=True):
    """An event type; registering a name again replaces it."""

    name: EventType
    description: Description = ""
    retry_schedule: RetrySchedule | None = None
    schema: dict[str, Any] | None = None  # a JSON Schema (draft 2020-12) for the payload


class EventTypeOut(msgspec.Struct):
    """A registered event type."""

    name: str
    description: str
    retry_schedule: list[float] | None
    schema: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


def event_type_out(row: dict[str, Any]) -> EventTypeOut:
    return from_row(EventTypeOut, row)


class EventTypeController(Controller):
    """Event types of the calling tenant."""

    path = "/v1/event-types"
    tags = ["event-types"]

    @post("/", operation_id="putEventType", status_code=201, responses=problem_responses(400, 401))
    async def put(self, request: Request, db: NamedDependency[TenantDb], data: JSONBody[EventTypeIn]) -> EventTypeOut:
        """Register (or replace) an event type, optionally with a JSON Schema for its payload."""
        if data.schema is not None:
            try:
                jsonschema.Draft202012Validator.check_schema(data.schema)
            except jsonschema.SchemaError as exc:
                raise Problem(422, f"Not a valid JSON Schema: {exc.message}", field="$.schema") from None
        async with db.transaction():
            row = await db.fetch_one(
                "upsert_event_type", name=data.name, description=data.description, retry_schedule=data.retry_schedule,
                schema=Jsonb(data.schema) if data.schema is not None else None,
            )
            assert row is not None
            # The schema itself can be large: the row says whether there is one.
            await audit(db, request, "event_type.changed", "event_type", data.name, description=data.description,
                        retry_schedule=data.retry_schedule, schema=data.schema is not None)
        return event_type_out(row)

    @get("/", operation_id="listEventTypes", responses=problem_responses(400, 401))
    async def list(
        self, db: NamedDependency[TenantDb], limit: Limit = 50, cursor: Cursor = None
    ) -> Page[EventTypeOut]:
        """List event types by name."""
        rows = await db.fetch_all("list_event_types", cursor=cursor, limit=limit + 1)
        return page_of([event_type_out(row) for row in rows], limit, lambda item: item.name)

    @get("/{name:str}", operation_id="getEventType", responses=problem_responses(401, 404))
    async def read(self, db: NamedDependency[TenantDb], name: EventTypeName) -> EventTypeOut:
        """Read one event type."""
        row = await db.fetch_one("get_event_type", name=name)
        if row is None:
            raise Problem(404, f"No event type {name!r}.")
        return event_type_out(row)

    @delete("/{name:str}", operation_id="deleteEventType", status_code=204, responses=problem_responses(401, 404))
    async def remove(self, request: Request, db: NamedDependency[TenantDb], name: EventTypeName) -> None:
        """Forget an event type (its events stay)."""
        async with db.transaction():
            if await db.fetch_one("delete_event_type", name=name) is None:
                raise Problem(404, f"No event type {name!r}.")
            await audit(db, request, "event_type.deleted", "event_type", name)
