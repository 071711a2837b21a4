"""Failure classes and the next state after an attempt (F9, F11)."""

import asyncio
import ssl

import aiohttp
import pytest

from relay.delivery.outcome import AttemptResult, ErrorClass, from_exception, from_status, next_state
from relay.states import DeliveryState

SCHEDULE = (5.0, 300.0)


def result(status: int | None, error: ErrorClass | None = None) -> AttemptResult:
    return AttemptResult(status, error if status is None else from_status(status), "x")


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_2xx_succeeds(status: int) -> None:
    assert next_state(result(status), 1, SCHEDULE) == (DeliveryState.SUCCEEDED, None)


@pytest.mark.parametrize("status", [500, 502, 503, 408, 425, 429, 301, 302, 307])
def test_retryable_statuses_retry(status: int) -> None:
    state, delay = next_state(result(status), 1, SCHEDULE)
    assert state is DeliveryState.RETRYING
    assert 4.0 <= delay <= 6.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422])
def test_other_4xx_is_dead_at_once(status: int) -> None:
    assert next_state(result(status), 1, SCHEDULE) == (DeliveryState.DEAD, None)


@pytest.mark.parametrize("error", [ErrorClass.NETWORK, ErrorClass.TIMEOUT, ErrorClass.TLS])
def test_transport_errors_retry(error: ErrorClass) -> None:
    assert next_state(result(None, error), 1, SCHEDULE)[0] is DeliveryState.RETRYING


def test_last_retry_goes_dead() -> None:
    assert next_state(result(503), 3, SCHEDULE) == (DeliveryState.DEAD, None)


def test_classes() -> None:
    assert from_status(410) is ErrorClass.GONE
    assert from_status(429) is ErrorClass.RATE_LIMITED
    assert from_status(302) is ErrorClass.REDIRECT
    assert from_status(404) is ErrorClass.CLIENT_ERROR
    assert from_status(200) is None


def test_exception_classes_look_through_causes() -> None:
    wrapped = RuntimeError("outer")
    wrapped.__cause__ = ssl.SSLError("bad cert")
    assert from_exception(wrapped) is ErrorClass.TLS
    assert from_exception(TimeoutError()) is ErrorClass.TIMEOUT
    assert from_exception(asyncio.TimeoutError()) is ErrorClass.TIMEOUT
    assert from_exception(aiohttp.ServerDisconnectedError()) is ErrorClass.NETWORK
    assert from_exception(ConnectionRefusedError()) is ErrorClass.NETWORK


def test_retry_after_seconds_and_http_date() -> None:
    from email.utils import formatdate

    from relay.delivery.outcome import retry_after_seconds

    def with_header(status: int, value: str) -> AttemptResult:
        return AttemptResult(status, from_status(status), "x", {"Retry-After": value}, "")

    assert retry_after_seconds(with_header(429, "7")) == 7
    assert 9 <= retry_after_seconds(with_header(503, formatdate(1_000_010, usegmt=True)), now=1_000_000) <= 10
    assert retry_after_seconds(with_header(500, "7")) is None  # only 429 and 503 carry it
    assert retry_after_seconds(with_header(429, "soon")) is None


def test_retry_after_is_clamped_to_the_schedule() -> None:
    slow = AttemptResult(429, ErrorClass.RATE_LIMITED, "x", {"retry-after": "99999"}, "")
    quick = AttemptResult(503, ErrorClass.SERVER_ERROR, "x", {"retry-after": "0"}, "")
    assert next_state(slow, 1, SCHEDULE) == (DeliveryState.RETRYING, 300.0)
    assert next_state(quick, 1, SCHEDULE) == (DeliveryState.RETRYING, 5.0)


def test_blocked_is_permanent_and_not_a_circuit_failure() -> None:
    from relay.delivery.outcome import counts_against_endpoint

    blocked = AttemptResult(None, ErrorClass.BLOCKED, "refused")
    assert next_state(blocked, 1, SCHEDULE) == (DeliveryState.DEAD, None)
    assert counts_against_endpoint(blocked) is None
    assert counts_against_endpoint(result(503)) is True
    assert counts_against_endpoint(result(404)) is False  # the endpoint answered
