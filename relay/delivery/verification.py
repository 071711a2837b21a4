"""Endpoint verification: Relay POSTs a challenge; the endpoint must echo it before it gets events."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import msgspec
from psycopg_pool import AsyncConnectionPool

from relay.db.sql import fetch_one
from relay.delivery.sender import Claim, Sender
from relay.envelope import build_envelope
from relay.ids import new_id

EVENT_TYPE = "relay.verification"


class _Echo(msgspec.Struct):
    challenge: str


def challenge_body(event_id: str, challenge: str) -> bytes:
    """Return the signed body of a verification request."""
    payload = msgspec.json.encode({"challenge": challenge})
    return build_envelope(event_id, EVENT_TYPE, datetime.now(UTC), payload)


def echoed(response_body: str | None, challenge: str) -> bool:
    """Tell whether a response body is `{"challenge": "<the challenge>"}`."""
    if not response_body:
        return False
    try:
        return msgspec.json.decode(response_body, type=_Echo).challenge == challenge
    except msgspec.DecodeError:
        return False


async def verify_endpoint(pool: AsyncConnectionPool, sender: Sender, tenant_id: str, endpoint_id: str) -> str:
    """Challenge an endpoint and store the verdict ('verified' or 'failed'); return it."""
    async with pool.connection() as conn:
        endpoint = await fetch_one(conn, "get_endpoint", {"tenant_id": tenant_id, "id": endpoint_id})
    if endpoint is None:
        return "gone"
    challenge = secrets.token_urlsafe(24)
    event_id = new_id("evt")
    claim = Claim(
        delivery_id="",
        tenant_id=tenant_id,
        event_id=event_id,
        endpoint_id=endpoint_id,
        attempts=1,
        attempt_number=1,
        in_flight=1,
        concurrency_level=1.0,
        concurrency_threshold=None,
        url=endpoint["url"],
        secret=endpoint["secret"],
        previous_secret=None,
        legacy_signature=endpoint["legacy_signature"],
        headers=endpoint["headers"],
        timeout_ms=endpoint["timeout_ms"],
        retry_schedule=None,
        fifo=False,
        body=challenge_body(event_id, challenge),
    )
    result = await sender.send(claim)
    if result.error_class is None and echoed(result.response_body, challenge):
        verdict, error = "verified", None
    elif result.error_class is None:
        verdict, error = "failed", 'the response did not echo the challenge as {"challenge": "…"}'
    else:
        verdict, error = "failed", result.error_message
    async with pool.connection() as conn:
        await fetch_one(
            conn,
            "set_endpoint_verification",
            {"tenant_id": tenant_id, "id": endpoint_id, "verification": verdict, "error": error},
        )
    return verdict
