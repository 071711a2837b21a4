"""The delivery state machine: every state, and who moves a delivery in and out of it.

This is the one place the lifecycle is written down. The SQL enum
`relay.delivery_state` must list exactly these states (a test checks it), and
every transition below is a guarded `UPDATE … WHERE state = ANY(…)` in
`sql/queries/deliveries.sql`: an update that matches zero rows lost a race to
another worker or request and is not an error.

    pending ──claim──▶ delivering ──2xx──▶ succeeded
       ▲                 │  │  │
       └──lease expired──┘  │  └──permanent failure / out of retries / lost too often──▶ dead
                            └──retryable failure, or lease expired──▶ retrying ──claim──▶ delivering

    (pending, retrying) ──endpoint disabled or deleted──▶ dead

Terminal states are final: a replay does not move a finished delivery back, it creates
a new `pending` delivery (`replay_of` points at the original, which is marked
`replayed_at` and leaves the dead letter).

An open delivery may be *held* (`held_by`: pause, fifo, circuit, disabled) without
changing state: it keeps its state, does not spend an attempt, and is released by
whatever ends the hold (resume, the older FIFO delivery finishing, the circuit closing).

Two numbers count tries, and they are kept apart everywhere they are shown:
`attempts` are the attempts the receiver answered or failed (they advance the retry
schedule, count toward `dead`, and feed the circuit breaker, anomaly detection,
auto-disable and failure rates); `lost_attempts` are attempts Relay lost — the lease
ran out because the worker sending it died, was killed, or was stopped past its grace.
A lost attempt is logged in the attempt history (error class `lease_expired`, `lost`)
and the delivery is due again at once, at the same place in its schedule. After
RELAY_MAX_LOST_ATTEMPTS lost attempts in a row (default 3) it is `dead` with
`dead_reason` `lost_attempts`: a payload that kills every worker must not cycle for ever.

pending     Created by ingest (one row per matching endpoint) or by a replay; also a
            delivery whose only attempts were lost. Waits for `next_attempt_at`.
            Left by a dispatcher's claim.
delivering  A dispatcher holds a lease on it (`lease_expires_at`) and an HTTP attempt
            is in flight. If the worker dies, the lease runs out and the next
            dispatcher poll gives the delivery back (pending or retrying, due now).
            Left when the dispatcher records the attempt's outcome.
retrying    The last attempt failed with a retryable error and the schedule has
            another step; `next_attempt_at` is that step. Left by a claim.
succeeded   An attempt got a 2xx. Terminal, except that a replay re-queues it.
dead        A permanent failure (non-retryable 4xx, 410), the schedule ran out, the
            endpoint was disabled, or Relay lost it too often (`dead_reason` says
            which). Terminal; listed in the dead letter; a replay re-queues it.
"""

from __future__ import annotations

import enum


class DeliveryState(enum.StrEnum):
    """Where a delivery is in its lifecycle (the values are the SQL enum's labels)."""

    PENDING = "pending"
    DELIVERING = "delivering"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    DEAD = "dead"


S = DeliveryState

# (from, to) -> who makes the move. Nothing else may change a delivery's state.
TRANSITIONS: dict[tuple[DeliveryState, DeliveryState], str] = {
    (S.PENDING, S.DELIVERING): "dispatcher claims a due delivery",
    (S.RETRYING, S.DELIVERING): "dispatcher claims a due retry",
    (S.DELIVERING, S.RETRYING): "dispatcher records a retryable failure with retries left, or gives back a "
    "delivery whose lease expired after earlier attempts (the lost one does not count)",
    (S.DELIVERING, S.PENDING): "dispatcher gives back a delivery whose lease expired before any attempt counted",
    (S.DELIVERING, S.SUCCEEDED): "dispatcher records a 2xx",
    (S.DELIVERING, S.DEAD): "dispatcher records a permanent failure or the last retry, or the lease expired "
    "RELAY_MAX_LOST_ATTEMPTS times in a row",
    (S.PENDING, S.DEAD): "the endpoint is disabled (410 Gone, failing too long, by request) or deleted",
    (S.RETRYING, S.DEAD): "the endpoint is disabled (410 Gone, failing too long, by request) or deleted",
}

TERMINAL = (S.SUCCEEDED, S.DEAD)


def sources_of(target: DeliveryState) -> tuple[DeliveryState, ...]:
    """Return every state from which `target` may be reached (the guard of its UPDATE)."""
    return tuple(source for (source, to) in TRANSITIONS if to == target)
