"""`/v1/audit-log`: who did what in the tenant, newest first; and `audit`, which handlers call to record it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from psycopg.pq import TransactionStatus

from relay.api.auth import actor_of
from relay.api.errors import Problem, problem_responses
from relay.api.pagination import Cursor, Limit, Page, page_of
from relay.api.rows import from_row
from relay.db.audit import record
from relay.db.tenant_db import TenantDb

TargetType = Literal["endpoint", "api_key", "event", "delivery", "user", "operation", "event_type"]
# `endpoint.created` exactly, or every action under a prefix: `endpoint.` (or `endpoint.*`).
ActionFilter = Annotated[
    str | None,
    QueryParameter(
        max_length=100, pattern=r"^[a-z_]+(\.[a-z_]+)*(\.\*?)?$",
        description="An action (`endpoint.created`), or a prefix ending in a dot (`endpoint.`): every action under it.",
    ),
]


class AuditEntryOut(msgspec.Struct):
    """One audited action: when, who (user id or API key prefix, and address), what, on what, and what changed."""

    id: str
    at: datetime
    actor_type: str  # user, api_key, anonymous or system
    actor: str | None
    action: str
    target_type: str | None
    target_id: str | None
    client_address: str | None
    details: dict[str, Any]


async def audit(
    db: TenantDb, request: Request[Any, Any, Any], action: str, target_type: str, target_id: str, /,
    **details: Any,
) -> None:
    """Record `action` by the request's caller, in the transaction the handler opened around the change.

    Refuses to run outside a transaction: a row committed on its own could outlive a change
    that then fails, or be missing from one that succeeds.
    """
    conn = await db.connection()
    if conn.info.transaction_status != TransactionStatus.INTRANS:
        raise RuntimeError(f"audit {action!r} outside the change's transaction")
    await record(conn, tenant_id=db.tenant_id, actor=actor_of(request), action=action, target_type=target_type,
                 target_id=target_id, details=details)


class AuditLogController(Controller):
    """The calling tenant's audit log."""

    path = "/v1/audit-log"
    tags = ["audit-log"]

    @get("/", operation_id="listAuditLog", responses=problem_responses(400, 401, 403, 422))
    async def list(
        self,
        db: NamedDependency[TenantDb],
        limit: Limit = 50,
        cursor: Cursor = None,
        action: ActionFilter = None,
        actor: Annotated[str | None, QueryParameter(max_length=64, description="A user id or API key prefix.")] = None,
        target_type: Annotated[TargetType | None, QueryParameter(description="What was acted on.")] = None,
        target_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        since: Annotated[datetime | None, QueryParameter(description="At or after (RFC 3339, with offset).")] = None,
        until: Annotated[datetime | None, QueryParameter(description="Before (RFC 3339, with offset).")] = None,
    ) -> Page[AuditEntryOut]:
        """List audited actions (API keys, endpoints, secrets, replays, sign-ins), newest first."""
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise Problem(422, f"'{name}' needs a time zone offset (RFC 3339), e.g. 2024-05-01T10:00:00Z.",
                              field=f"$.{name}")
        if since and until and since > until:
            raise Problem(422, "'since' is after 'until': no entry can match.", field="$.since")
        prefix = action.rstrip("*") if action and action.endswith((".", ".*")) else None
        rows = await db.fetch_all(
            "list_audit_log", cursor=cursor, limit=limit + 1, action=None if prefix else action, action_prefix=prefix,
            actor=actor, target_type=target_type, target_id=target_id, since=since, until=until,
        )
        return page_of([from_row(AuditEntryOut, row) for row in rows], limit)
