"""Operational webhooks: `endpoint.disabled` and `delivery.dead` sent to the operator's URL.

They travel through Relay's own delivery engine: a built-in operator tenant owns one
endpoint (RELAY_OPERATOR_WEBHOOK_URL, signed with RELAY_OPERATOR_WEBHOOK_SECRET), and each
operational event is ingested for it in the same transaction as the change it reports —
so it is signed, retried, logged and replayable like any delivery.
"""

from __future__ import annotations

from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from relay.db.events import insert_events, new_event
from relay.db.sql import queries

OPERATOR_TENANT = "ten_" + "0" * 32
OPERATOR_ENDPOINT = "ep_" + "0" * 32
ENDPOINT_DISABLED = "endpoint.disabled"
DELIVERY_DEAD = "delivery.dead"
ALERT_CREATED = "alert.created"


async def configure_operator_endpoint(conn: AsyncConnection, url: str | None, secret: str | None) -> None:
    """Create, update or switch off the operator's endpoint to match the settings."""
    async with conn.transaction():
        await conn.execute(queries["ensure_operator_tenant"], {"id": OPERATOR_TENANT})
        if url and secret:
            await conn.execute(
                queries["ensure_operator_endpoint"],
                {
                    "tenant_id": OPERATOR_TENANT,
                    "id": OPERATOR_ENDPOINT,
                    "url": url,
                    "secret": secret,
                    "headers": Jsonb({}),
                },
            )
        else:
            await conn.execute(
                queries["disable_operator_endpoint"], {"tenant_id": OPERATOR_TENANT, "id": OPERATOR_ENDPOINT}
            )


async def emit(conn: AsyncConnection, event_type: str, items: list[dict[str, Any]]) -> None:
    """Ingest one operational event per item for the operator endpoint (nothing when it is off)."""
    events = [
        new_event(event_type, msgspec.json.encode(item), endpoint_id=OPERATOR_ENDPOINT)
        for item in items
        if item.get("tenant_id") != OPERATOR_TENANT  # never report on the operator's own deliveries: no loops
    ]
    if events:
        await insert_events(conn, OPERATOR_TENANT, events)
