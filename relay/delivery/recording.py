"""Record a batch of finished attempts: attempt rows, delivery states, rollups, circuit breakers,
FIFO hand-over, 410 disabling and operational webhooks — all in one transaction."""

from __future__ import annotations

from datetime import datetime

import msgspec
import structlog
from psycopg import AsyncConnection

from relay.db import operator
from relay.db.rollups import rollup_params
from relay.db.sql import queries
from relay.delivery.outcome import AttemptResult, counts_against_endpoint
from relay.delivery.sender import Claim
from relay.ids import new_id
from relay.states import TERMINAL, DeliveryState

log = structlog.get_logger("relay.delivery")


class Outcome(msgspec.Struct, frozen=True):
    """One finished attempt, waiting to be written."""

    claim: Claim
    result: AttemptResult
    state: DeliveryState
    delay: float | None
    started_at: datetime
    duration_ms: int


async def write_outcomes(
    conn: AsyncConnection, batch: list[Outcome], circuit: CircuitSettings, *, operator_webhooks: bool
) -> None:
    """Write everything a batch of outcomes changes, in one transaction."""
    health = _health_params(batch)
    fifo_done = _endpoint_params([o for o in batch if o.claim.fifo and o.state in TERMINAL])
    gone = _endpoint_params([o for o in batch if o.result.status == 410])
    rollups = rollup_params(
        (o.claim.tenant_id, o.claim.endpoint_id, o.started_at, o.duration_ms,
         o.state is DeliveryState.SUCCEEDED, o.state is DeliveryState.DEAD)
        for o in batch
    )
    async with conn.transaction():
        await conn.execute(queries["record_outcomes"], record_params(batch))
        await conn.execute(queries["add_rollups"], rollups)
        if health["endpoint_ids"]:
            await conn.execute(queries["update_endpoint_health"], {**health, **circuit.params()})
        if fifo_done["endpoint_ids"]:
            await conn.execute(queries["release_fifo_heads"], fifo_done)
        if gone["endpoint_ids"]:
            await conn.execute(queries["disable_endpoints"], {**gone, "reason": "gone"})
            log.warning("endpoint.disabled", reason="gone", endpoint_ids=gone["endpoint_ids"])
        if operator_webhooks:
            await _report_to_operator(conn, batch)


class CircuitSettings(msgspec.Struct, frozen=True):
    """When a circuit opens and how long it stays open."""

    failure_threshold: int = 5
    cooldown_seconds: float = 60.0
    max_cooldown_seconds: float = 600.0

    def params(self) -> dict[str, float]:
        return {
            "threshold": self.failure_threshold,
            "cooldown": self.cooldown_seconds,
            "max_cooldown": self.max_cooldown_seconds,
        }


async def _report_to_operator(conn: AsyncConnection, batch: list[Outcome]) -> None:
    """Send `delivery.dead` and `endpoint.disabled` (410) to the operator, in the record transaction."""
    dead = [o for o in batch if o.state is DeliveryState.DEAD]
    await operator.emit(conn, operator.DELIVERY_DEAD, [
        {"tenant_id": o.claim.tenant_id, "delivery_id": o.claim.delivery_id, "event_id": o.claim.event_id,
         "endpoint_id": o.claim.endpoint_id, "attempts": o.claim.attempt_number, "last_status": o.result.status,
         "error_class": o.result.error_class, "error": o.result.error_message}
        for o in dead
    ])
    gone = {(o.claim.tenant_id, o.claim.endpoint_id): o.claim.url for o in batch if o.result.status == 410}
    await operator.emit(conn, operator.ENDPOINT_DISABLED, [
        {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "url": url, "reason": "gone"}
        for (tenant_id, endpoint_id), url in gone.items()
    ])


def _health_params(batch: list[Outcome]) -> dict[str, list]:
    """Summarise a batch per endpoint for the circuit breaker: failures since the last answer."""
    summary: dict[tuple[str, str], list] = {}
    for outcome in sorted(batch, key=lambda o: o.started_at):
        verdict = counts_against_endpoint(outcome.result)
        if verdict is None:
            continue
        key = (outcome.claim.tenant_id, outcome.claim.endpoint_id)
        trailing, had_success, first_failure_at = summary.get(key, [0, False, None])
        if verdict:
            summary[key] = [trailing + 1, had_success, first_failure_at or outcome.started_at]
        else:
            summary[key] = [0, True, None]
    return {
        "tenant_ids": [key[0] for key in summary],
        "endpoint_ids": [key[1] for key in summary],
        "trailing_failures": [value[0] for value in summary.values()],
        "had_success": [value[1] for value in summary.values()],
        "first_failure_at": [value[2] for value in summary.values()],
    }


def _endpoint_params(batch: list[Outcome]) -> dict[str, list]:
    keys = sorted({(o.claim.tenant_id, o.claim.endpoint_id) for o in batch})
    return {"tenant_ids": [k[0] for k in keys], "endpoint_ids": [k[1] for k in keys]}


def record_params(batch: list[Outcome]) -> dict[str, list]:
    encode = msgspec.json.encode
    return {
        "delivery_ids": [o.claim.delivery_id for o in batch],
        "tenant_ids": [o.claim.tenant_id for o in batch],
        "event_ids": [o.claim.event_id for o in batch],
        "endpoint_ids": [o.claim.endpoint_id for o in batch],
        "attempt_numbers": [o.claim.attempt_number for o in batch],
        "states": [o.state.value for o in batch],
        "delays": [o.delay for o in batch],
        "attempt_ids": [new_id("att") for _ in batch],
        "started_at": [o.started_at for o in batch],
        "durations": [o.duration_ms for o in batch],
        "statuses": [o.result.status for o in batch],
        "response_headers": [
            None if o.result.response_headers is None else encode(o.result.response_headers).decode() for o in batch
        ],
        "response_bodies": [_text(o.result.response_body) for o in batch],
        "error_classes": [None if o.result.error_class is None else o.result.error_class.value for o in batch],
        "error_messages": [_text(o.result.error_message) for o in batch],
    }


def _text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; a receiver may well send one.
    return None if value is None else value.replace("\x00", "\ufffd")
