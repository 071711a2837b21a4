"""Adaptive concurrency per endpoint: additive increase while answers are fast, multiplicative decrease on trouble.

Every endpoint has a level: how many attempts Relay may have in flight to it at once,
across all workers (never above its `max_in_flight`). Each recorded batch of finished
attempts adjusts it the way TCP grows and shrinks its window:

- a fast, healthy answer (a 2xx in under half the endpoint's timeout) adds one while the
  level is under its threshold (slow start: the level doubles every round of answers),
  and 1/level above it (about one more per round); the threshold is half the level at
  the last congestion, and there is none until the first, so a healthy receiver,
  fast or slow, reaches its limit in a few rounds;
- congestion — a timeout, a connection error, a 429 or 503, or a success that took over
  80 % of the timeout — halves the level, once per batch (one bad round, one cut);
- anything else (a quick 4xx or 500: the receiver answered but is failing) holds it:
  the circuit breaker deals with failing receivers, this only with overloaded ones.

This module decides what a batch says (`adjustment`); the record statement applies it
to the level on the endpoint's row (`relay.next_concurrency_level`: halve or add, within
1 and the endpoint's limit), so workers recording at the same time never lose each
other's changes. A fast receiver climbs from the start level to its limit within a few
hundred answers; a struggling one is eased off before its timeouts could open its circuit.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from relay.delivery.outcome import AttemptResult, ErrorClass

START_LEVEL = 4.0  # what a new endpoint starts at (the column default in sql/migrations)
FAST_SHARE = 0.5  # answers faster than this share of the timeout let the level grow
SLOW_SHARE = 0.8  # successes slower than this share of the timeout count as congestion

_CONGESTION_CLASSES = frozenset({ErrorClass.TIMEOUT, ErrorClass.NETWORK})
_OVERLOAD_STATUSES = frozenset({429, 503})


class Signal(enum.Enum):
    """What one finished attempt says about the endpoint's load."""

    FAST = "fast"
    STEADY = "steady"
    CONGESTED = "congested"


@dataclass(frozen=True)
class Adjustment:
    """What one batch does to an endpoint's level: halve it (congested), or add `increment`."""

    congested: bool
    increment: float


def signal_of(result: AttemptResult, duration_ms: int, timeout_ms: int) -> Signal:
    """Classify one attempt for the controller."""
    if result.error_class in _CONGESTION_CLASSES or result.status in _OVERLOAD_STATUSES:
        return Signal.CONGESTED
    if result.error_class is not None:
        return Signal.STEADY
    if duration_ms >= SLOW_SHARE * timeout_ms:
        return Signal.CONGESTED
    if duration_ms < FAST_SHARE * timeout_ms:
        return Signal.FAST
    return Signal.STEADY


def adjustment(answers: Iterable[tuple[Signal, float, float | None]]) -> Adjustment:
    """Sum up a batch of (signal, level, threshold) for one endpoint, level and threshold as the attempt was sent.

    Congestion anywhere in the batch wins: the level halves once. Otherwise each fast
    answer adds one below the threshold (or with none yet), 1/level at or above it.
    """
    answers = list(answers)
    if any(signal is Signal.CONGESTED for signal, _, _ in answers):
        return Adjustment(congested=True, increment=0.0)
    increment = 0.0
    for signal, level, threshold in answers:
        if signal is Signal.FAST:
            increment += 1.0 if threshold is None or level < threshold else 1.0 / max(1.0, level)
    return Adjustment(congested=False, increment=increment)
