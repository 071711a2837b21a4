"""`/v1/operations/{id}`: progress of bulk work done in the background (dead-letter replay, recovery)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
import procrastinate
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import PathParameter
from psycopg.types.json import Jsonb

from relay.api.errors import Problem, problem_responses
from relay.api.rows import from_row
from relay.db.tenant_db import TenantDb
from relay.ids import new_id
from relay.jobs import defer_operation


class OperationOut(msgspec.Struct):
    """A bulk operation and how far it got."""

    id: str
    kind: str
    status: str
    filter: dict[str, Any]
    total: int | None
    replayed: int
    skipped: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def operation_out(row: dict[str, Any]) -> OperationOut:
    """Shape a database row for the API."""
    return from_row(OperationOut, row)


async def store_operation(db: TenantDb, kind: str, scope: dict[str, Any]) -> OperationOut:
    """Store an operation (in the caller's transaction, with its audit row); `queue_operation` it once committed."""
    row = await db.fetch_one("insert_operation", id=new_id("op"), kind=kind, filter=Jsonb(scope))
    assert row is not None
    return operation_out(row)


async def queue_operation(db: TenantDb, operation: OperationOut) -> OperationOut:
    """Queue a stored operation's job; a job that failed to queue is queued by the next sweep."""
    try:
        await defer_operation(db.tenant_id, operation.id, db.jobs)
    except procrastinate.exceptions.ConnectorException:
        pass  # relay.requeue_operations queues it within a minute
    return operation


class OperationController(Controller):
    """Bulk operations of the calling tenant."""

    path = "/v1/operations"
    tags = ["operations"]

    @get("/{operation_id:str}", operation_id="getOperation", responses=problem_responses(401, 404))
    async def read(
        self, db: NamedDependency[TenantDb], operation_id: Annotated[str, PathParameter(max_length=64)]
    ) -> OperationOut:
        """Read an operation's progress."""
        row = await db.fetch_one("get_operation", id=operation_id)
        if row is None:
            raise Problem(404, f"No operation {operation_id!r}.")
        return operation_out(row)
