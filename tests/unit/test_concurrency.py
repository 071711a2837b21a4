"""The adaptive concurrency controller: what a batch of answers says (here) and the level it leads to (SQL)."""

from __future__ import annotations

import pytest

from relay.delivery.concurrency import START_LEVEL, Adjustment, Signal, adjustment, signal_of
from relay.delivery.outcome import AttemptResult, ErrorClass

OK = AttemptResult(200, None, None)
FAST, STEADY, CONGESTED = Signal.FAST, Signal.STEADY, Signal.CONGESTED


def test_before_any_congestion_each_fast_answer_adds_one() -> None:
    assert adjustment([(FAST, 4.0, None)] * 4) == Adjustment(False, 4.0)  # the level doubles per round


def test_below_the_threshold_each_fast_answer_adds_one() -> None:
    assert adjustment([(FAST, 4.0, 8.0)] * 3) == Adjustment(False, 3.0)


def test_at_or_above_the_threshold_each_fast_answer_adds_one_over_the_level() -> None:
    assert adjustment([(FAST, 4.0, 4.0)]) == Adjustment(False, 0.25)
    assert adjustment([(FAST, 8.0, 2.0)] * 8) == Adjustment(False, pytest.approx(1.0))


def test_congestion_anywhere_in_a_batch_wins() -> None:
    batch = [(FAST, 16.0, None), (CONGESTED, 16.0, None), (FAST, 16.0, None)]
    assert adjustment(batch) == Adjustment(True, 0.0)


def test_steady_answers_add_nothing() -> None:
    assert adjustment([(STEADY, 6.0, None), (STEADY, 6.0, 3.0)]) == Adjustment(False, 0.0)
    assert adjustment([]) == Adjustment(False, 0.0)


def test_a_level_below_one_never_divides_by_zero() -> None:
    assert adjustment([(FAST, 0.0, 0.0)]) == Adjustment(False, 1.0)


def test_the_start_level_is_the_schema_default() -> None:
    from relay.db.sql import sql_dir

    assert f"concurrency_level float8 NOT NULL DEFAULT {START_LEVEL:g}" in (
        sql_dir() / "migrations" / "0006_fair_delivery.sql"
    ).read_text()


@pytest.mark.parametrize(
    ("result", "duration_ms", "expected"),
    [
        (OK, 10, FAST),
        (OK, 7_000, FAST),  # under half of a 15 s timeout
        (OK, 9_000, STEADY),
        (OK, 12_500, CONGESTED),  # latency close to the timeout
        (AttemptResult(None, ErrorClass.TIMEOUT, "no answer"), 15_000, CONGESTED),
        (AttemptResult(None, ErrorClass.NETWORK, "refused"), 1, CONGESTED),
        (AttemptResult(503, ErrorClass.SERVER_ERROR, "HTTP 503"), 5, CONGESTED),
        (AttemptResult(429, ErrorClass.RATE_LIMITED, "HTTP 429"), 5, CONGESTED),
        (AttemptResult(500, ErrorClass.SERVER_ERROR, "HTTP 500"), 5, STEADY),
        (AttemptResult(404, ErrorClass.CLIENT_ERROR, "HTTP 404"), 5, STEADY),
        (AttemptResult(None, ErrorClass.INVALID_REQUEST, "bad url"), 0, STEADY),
    ],
)
def test_signals(result: AttemptResult, duration_ms: int, expected: Signal) -> None:
    assert signal_of(result, duration_ms, 15_000) is expected
