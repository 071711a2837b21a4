"""The retry schedule: parsing and jittered delays."""

import random

import pytest

from relay.backoff import parse_schedule, retry_delay


def test_parse_default_schedule() -> None:
    assert parse_schedule("5s,5m,30m,2h,5h,10h,10h") == (5, 300, 1800, 7200, 18000, 36000, 36000)


def test_parse_units_and_bare_seconds() -> None:
    assert parse_schedule("250ms, 2, 1d") == (0.25, 2, 86400)


@pytest.mark.parametrize("text", ["", "5x", "five", "1s,,2s", "-1s"])
def test_parse_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        parse_schedule(text)


def test_delay_is_jittered_within_twenty_percent() -> None:
    rng = random.Random(7)
    delays = [retry_delay((100.0,), 1, rng) for _ in range(500)]
    assert all(80.0 <= d <= 120.0 for d in delays)
    assert max(delays) - min(delays) > 20  # really spread, not constant


def test_out_of_retries() -> None:
    schedule = (1.0, 2.0)
    assert retry_delay(schedule, 2) is not None
    assert retry_delay(schedule, 3) is None
    assert retry_delay(schedule, 0) is None
