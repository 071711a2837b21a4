"""The audit trail: who did what, appended in the same transaction as the change it records.

A row never holds a secret: `details` carries what changed (field names and values that
are not secrets), and an API key appears as its display prefix, never the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from relay.db.sql import queries
from relay.ids import new_id


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted, and from where."""

    type: str  # 'user', 'api_key', 'anonymous' or 'system'
    id: str | None  # a user id, an API key's prefix, or None
    address: str | None = None  # the client's address as the API saw it

    @classmethod
    def anonymous(cls, address: str | None) -> Actor:
        return cls("anonymous", None, address)


async def record(
    conn: AsyncConnection,
    *,
    tenant_id: str | None,
    actor: Actor,
    action: str,
    target_type: str | None = None,
    target_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one audit row on `conn` — inside the caller's transaction, so it commits (or not) with the change."""
    await conn.execute(
        queries["record_audit"],
        {
            "id": new_id("aud"),
            "tenant_id": tenant_id,
            "actor_type": actor.type,
            "actor": actor.id,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "client_address": actor.address,
            "details": Jsonb(details or {}),
        },
    )
