"""Record a batch of finished attempts: attempt rows, delivery states, rollups, circuit breakers,
FIFO hand-over, 410 disabling and operational webhooks — all in one transaction."""

from __future__ import annotations

import contextlib
from datetime import datetime

import msgspec
import structlog
from psycopg import AsyncConnection

from relay.db import operator
from relay.db.rollups import rollup_params
from relay.db.sql import fetch_one, queries
from relay.delivery.concurrency import Signal, adjustment, signal_of
from relay.delivery.outcome import AttemptResult, counts_against_endpoint, dead_reason
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
    conn: AsyncConnection,
    batch: list[Outcome],
    circuit: CircuitSettings,
    *,
    operator_webhooks: bool,
    default_max_in_flight: int,
) -> int:
    """Write everything a batch of outcomes changes, in one transaction; return how many were recorded.

    An outcome whose lease another worker has taken over meanwhile is logged but changes nothing.
    """
    params = {
        **record_params(batch),
        **endpoint_params(batch),
        **_prefixed("fifo_", _keys([o for o in batch if o.claim.fifo and o.state in TERMINAL])),
        **rollup_params(
            (o.claim.tenant_id, o.claim.endpoint_id, o.started_at, o.duration_ms,
             o.state is DeliveryState.SUCCEEDED, o.state is DeliveryState.DEAD)
            for o in batch
        ),
        **circuit.params(),
        "default_max_in_flight": default_max_in_flight,
    }
    gone = _keys([o for o in batch if o.result.status == 410])
    # Usually the one statement is the whole transaction (the pool is autocommit): no BEGIN/COMMIT
    # round trips on the hot path. Disabling endpoints or reporting to the operator must commit with it.
    together = bool(gone["endpoint_ids"]) or operator_webhooks
    async with conn.transaction() if together else contextlib.nullcontext():
        row = await fetch_one(conn, "record_outcomes", params)
        recorded = row["recorded"] if row else 0
        if gone["endpoint_ids"]:
            await conn.execute(queries["disable_endpoints"], {**gone, "reason": "gone"})
            log.warning("endpoint.disabled", reason="gone", endpoint_ids=gone["endpoint_ids"])
        if operator_webhooks:
            await _report_to_operator(conn, batch)
    return recorded


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
         "endpoint_id": o.claim.endpoint_id, "attempts": o.claim.attempts, "last_status": o.result.status,
         "error_class": o.result.error_class, "error": o.result.error_message}
        for o in dead
    ])
    gone = {(o.claim.tenant_id, o.claim.endpoint_id): o.claim.url for o in batch if o.result.status == 410}
    await operator.emit(conn, operator.ENDPOINT_DISABLED, [
        {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "url": url, "reason": "gone"}
        for (tenant_id, endpoint_id), url in gone.items()
    ])


def endpoint_params(batch: list[Outcome]) -> dict[str, list]:
    """Summarise a batch per endpoint: for the circuit breaker (failures since the last answer) and for the
    concurrency controller (congested, or how much to grow)."""
    health: dict[tuple[str, str], list] = {}
    answers: dict[tuple[str, str], list[tuple[Signal, float, float | None]]] = {}
    for outcome in sorted(batch, key=lambda o: o.started_at):
        key = (outcome.claim.tenant_id, outcome.claim.endpoint_id)
        signal = signal_of(outcome.result, outcome.duration_ms, outcome.claim.timeout_ms)
        answers.setdefault(key, []).append(
            (signal, outcome.claim.concurrency_level, outcome.claim.concurrency_threshold)
        )
        trailing, had_success, first_failure_at, judged = health.get(key, [0, False, None, False])
        verdict = counts_against_endpoint(outcome.result, outcome.claim.in_flight)
        if verdict is None:
            health[key] = [trailing, had_success, first_failure_at, judged]
        elif verdict:
            health[key] = [trailing + 1, had_success, first_failure_at or outcome.started_at, True]
        else:
            health[key] = [0, True, None, True]
    keys = sorted(health)
    adjustments = [adjustment(answers[key]) for key in keys]
    for key, adjusted in zip(keys, adjustments, strict=True):
        if adjusted.congested:
            signals = [signal for signal, _, _ in answers[key]]
            log.info("endpoint.congested", tenant_id=key[0], endpoint_id=key[1], level=answers[key][-1][1],
                     congested=signals.count(Signal.CONGESTED), answers=len(signals))
    return {
        "ep_tenant_ids": [key[0] for key in keys],
        "ep_endpoint_ids": [key[1] for key in keys],
        "judged": [health[key][3] for key in keys],
        "trailing_failures": [health[key][0] for key in keys],
        "had_success": [health[key][1] for key in keys],
        "first_failure_at": [health[key][2] for key in keys],
        "congested": [a.congested for a in adjustments],
        "increments": [a.increment for a in adjustments],
    }


def _keys(batch: list[Outcome]) -> dict[str, list]:
    keys = sorted({(o.claim.tenant_id, o.claim.endpoint_id) for o in batch})
    return {"tenant_ids": [k[0] for k in keys], "endpoint_ids": [k[1] for k in keys]}


def _prefixed(prefix: str, params: dict[str, list]) -> dict[str, list]:
    return {prefix + name: value for name, value in params.items()}


def record_params(batch: list[Outcome]) -> dict[str, list]:
    encode = msgspec.json.encode
    return {
        "delivery_ids": [o.claim.delivery_id for o in batch],
        "tenant_ids": [o.claim.tenant_id for o in batch],
        "event_ids": [o.claim.event_id for o in batch],
        "endpoint_ids": [o.claim.endpoint_id for o in batch],
        "attempt_numbers": [o.claim.attempt_number for o in batch],
        "dead_reasons": [dead_reason(o.result) if o.state is DeliveryState.DEAD else None for o in batch],
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
