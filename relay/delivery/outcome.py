"""Classify one attempt's result and decide the delivery's next state."""

from __future__ import annotations

import enum
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import aiohttp

from relay.backoff import retry_delay
from relay.states import DeliveryState
from relay.urlguard import BlockedAddress


class ErrorClass(enum.StrEnum):
    """Why an attempt failed; stored in attempts.error_class."""

    NETWORK = "network"  # DNS failure, refused or reset connection
    TIMEOUT = "timeout"  # no complete response within the endpoint's timeout
    TLS = "tls"  # handshake or certificate failure
    REDIRECT = "redirect"  # 3xx: redirects are not followed
    SERVER_ERROR = "server_error"  # 5xx
    RATE_LIMITED = "rate_limited"  # 429
    CLIENT_ERROR = "client_error"  # 4xx other than the retryable ones
    GONE = "gone"  # 410
    BLOCKED = "blocked"  # the address is not allowed (SSRF guard): permanent
    LEASE_EXPIRED = "lease_expired"  # the worker died mid-attempt: Relay lost it (logged by the rescue, never here)
    INVALID_REQUEST = "invalid_request"  # the request cannot be built (a URL or header the client refuses): permanent
    INTERNAL_ERROR = (
        "internal_error"  # an unexpected error inside Relay while sending: retried, not the endpoint's fault
    )


# 4xx statuses that mean "try again later" rather than "this will never work".
RETRYABLE_4XX = frozenset({408, 425, 429})


@dataclass(frozen=True)
class AttemptResult:
    """What happened on the wire: a status, or an error class with a message."""

    status: int | None
    error_class: ErrorClass | None
    error_message: str | None
    response_headers: dict[str, str] | None = None
    response_body: str | None = None


def from_status(status: int) -> ErrorClass | None:
    """Return the error class of an HTTP status, None for a 2xx."""
    if 200 <= status < 300:
        return None
    if status == 410:
        return ErrorClass.GONE
    if status == 429:
        return ErrorClass.RATE_LIMITED
    if status >= 500:
        return ErrorClass.SERVER_ERROR
    if 300 <= status < 400:
        return ErrorClass.REDIRECT
    return ErrorClass.CLIENT_ERROR


def from_exception(exc: BaseException) -> ErrorClass:
    """Return the error class of an exception raised while sending (looks through the cause chain)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BlockedAddress):
            return ErrorClass.BLOCKED
        if isinstance(seen, TimeoutError):
            return ErrorClass.TIMEOUT
        if isinstance(seen, ssl.SSLError | aiohttp.ClientSSLError):
            return ErrorClass.TLS
        if isinstance(seen, aiohttp.ServerTimeoutError):
            return ErrorClass.TIMEOUT
        seen = seen.__cause__ or seen.__context__
    return ErrorClass.NETWORK


def is_retryable(result: AttemptResult) -> bool:
    """Tell whether a failed attempt may succeed later (network, timeout, TLS, 3xx, 5xx, 408, 425, 429)."""
    if result.status is None:
        return result.error_class not in (ErrorClass.BLOCKED, ErrorClass.INVALID_REQUEST)
    return result.status >= 500 or result.status in RETRYABLE_4XX or 300 <= result.status < 400


def counts_against_endpoint(result: AttemptResult, in_flight: int = 1) -> bool | None:
    """For the circuit breaker: True for a failure of the endpoint, False when it answered, None when neither.

    A permanent 4xx shows the endpoint is up and answering, so it resets the count. A
    timeout while Relay had other attempts in flight to the endpoint (`in_flight` counts
    this one too) may be Relay's own crowding: it lowers the endpoint's concurrency
    instead, and only timeouts at a level of one — Relay fully backed off — count.
    """
    if result.error_class is None:
        return False
    if result.error_class in (ErrorClass.BLOCKED, ErrorClass.INVALID_REQUEST, ErrorClass.INTERNAL_ERROR):
        return None
    if result.error_class is ErrorClass.TIMEOUT and in_flight > 1:
        return None
    return is_retryable(result)


def dead_reason(result: AttemptResult) -> str:
    """Return why an attempt that ended its delivery did so: a permanent answer, or the schedule ran out."""
    return "retries_exhausted" if is_retryable(result) else "permanent_failure"


def retry_after_seconds(result: AttemptResult, now: float | None = None) -> float | None:
    """Return the delay a 429 or 503 asked for with Retry-After (seconds or an HTTP date), if any."""
    if result.status not in (429, 503) or not result.response_headers:
        return None
    value = next((v for k, v in result.response_headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def next_state(
    result: AttemptResult, attempts_made: int, schedule: tuple[float, ...]
) -> tuple[DeliveryState, float | None]:
    """Return the state the delivery moves to after this attempt, and the delay before the next one.

    A Retry-After on 429/503 replaces the scheduled delay, clamped to the schedule's
    shortest and longest steps, so a receiver can slow Relay down but not stall it.
    """
    if result.error_class is None:
        return DeliveryState.SUCCEEDED, None
    if not is_retryable(result):
        return DeliveryState.DEAD, None
    delay = retry_delay(schedule, attempts_made)
    if delay is None:
        return DeliveryState.DEAD, None
    asked = retry_after_seconds(result)
    if asked is not None:
        delay = min(max(asked, min(schedule)), max(schedule))
    return DeliveryState.RETRYING, delay
