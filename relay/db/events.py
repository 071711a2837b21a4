"""Events: store them with their fan-out in one statement, with idempotency."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from relay.db.sql import fetch_all, queries
from relay.envelope import build_envelope
from relay.ids import new_id


@dataclass(frozen=True)
class NewEvent:
    """An event ready to store: its id, envelope bytes and routing."""

    id: str
    type: str
    channels: tuple[str, ...]
    body: bytes
    idempotency_key: str | None
    endpoint_id: str | None
    created_at: datetime
    request_hash: bytes


@dataclass(frozen=True)
class Accepted:
    """The answer for one event: its id, how many deliveries it made, and whether it is new."""

    id: str
    deliveries: int
    created: bool


class IdempotencyConflict(Exception):
    """An idempotency key was used before with a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def request_hash(event_type: str, payload: bytes, channels: tuple[str, ...], endpoint_id: str | None) -> bytes:
    """Fingerprint what a request asks for, to tell a retried request from a reused key."""
    digest = hashlib.sha256()
    for part in (event_type.encode(), payload, ",".join(channels).encode(), (endpoint_id or "").encode()):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def new_event(
    event_type: str,
    payload: bytes,
    *,
    channels: tuple[str, ...] = (),
    endpoint_id: str | None = None,
    idempotency_key: str | None = None,
) -> NewEvent:
    """Build an event created now: a fresh id, the envelope around `payload`'s exact bytes, and its fingerprint."""
    event_id = new_id("evt")
    created_at = datetime.now(UTC)
    return NewEvent(
        id=event_id,
        type=event_type,
        channels=channels,
        body=build_envelope(event_id, event_type, created_at, payload),
        idempotency_key=idempotency_key,
        endpoint_id=endpoint_id,
        created_at=created_at,
        request_hash=request_hash(event_type, payload, channels, endpoint_id),
    )


def event_columns(events: list[NewEvent]) -> dict[str, list[object]]:
    """The events as the column arrays that insert_events and ingest_group unnest."""
    return {
        "ids": [e.id for e in events],
        "types": [e.type for e in events],
        "channels": [",".join(e.channels) for e in events],
        "bodies": [e.body for e in events],
        "idempotency_keys": [e.idempotency_key for e in events],
        "request_hashes": [e.request_hash for e in events],
        "endpoint_ids": [e.endpoint_id for e in events],
        "created_at": [e.created_at for e in events],
    }


async def insert_events(conn: AsyncConnection, tenant_id: str, events: list[NewEvent]) -> list[Accepted]:
    """Store events and their deliveries in one transaction; return one answer per event, in order.

    An event whose idempotency key was already used with the same request answers
    with the original; with a different request the whole call raises
    IdempotencyConflict and nothing is stored.
    """
    # One statement is atomic on its own. A transaction is only needed when a later
    # idempotency check may have to undo the other events of a batch.
    needs_transaction = len(events) > 1 and any(event.idempotency_key for event in events)
    async with conn.transaction() if needs_transaction else _no_transaction():
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(queries["insert_events"], {"tenant_id": tenant_id, **event_columns(events)})
        rows = await cursor.fetchall()
        answers = [Accepted(id=row["id"], deliveries=row["deliveries"], created=row["inserted"]) for row in rows]
        replayed = [event for event, answer in zip(events, answers, strict=True) if not answer.created]
        if not replayed:
            return answers
        originals = {
            row["idempotency_key"]: row
            for row in await fetch_all(
                conn,
                "events_by_idempotency_key",
                {"tenant_id": tenant_id, "keys": [e.idempotency_key for e in replayed]},
            )
        }
        for index, event in enumerate(events):
            if answers[index].created:
                continue
            original = originals[event.idempotency_key]
            if original["request_hash"] != event.request_hash:
                raise IdempotencyConflict(event.idempotency_key or "")
            answers[index] = Accepted(id=original["id"], deliveries=original["deliveries"], created=False)
        return answers


@contextlib.asynccontextmanager
async def _no_transaction() -> AsyncIterator[None]:
    yield
