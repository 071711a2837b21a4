"""Send one signed attempt over HTTP through httpx on an aiohttp transport.

Requests go straight to the transport (`handle_async_request`), not through
`httpx.AsyncClient`: a webhook POST needs none of the client's cookie jar, auth,
redirect handling or header merging, and skipping them halves the CPU each attempt
costs the worker (profiled with py-spy during a drain).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, fields
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from relay import __version__
from relay.delivery.outcome import AttemptResult, ErrorClass, from_exception, from_status
from relay.signing import legacy_signature, secret_key, signature_header
from relay.urlguard import AddressPolicy, BlockedAddress, GuardedResolver

USER_AGENT = f"Relay-Webhooks/{__version__}"


@dataclass(frozen=True)
class Claim:
    """A delivery this dispatcher holds a lease on, with what it needs to send it."""

    delivery_id: str
    tenant_id: str
    event_id: str
    endpoint_id: str
    attempts: int  # attempts that count, this one included: its place in the retry schedule
    attempt_number: int  # its place in the attempt history (attempts Relay lost included)
    in_flight: int  # attempts in flight to the endpoint, across workers, when this one was claimed
    concurrency_level: float  # the endpoint's adaptive level when this one was claimed
    concurrency_threshold: float | None  # and the level growth slows down at (None: no congestion seen yet)
    url: str
    secret: str
    previous_secret: str | None  # still signs during a rotation's grace period
    legacy_signature: bool
    headers: dict[str, str]
    timeout_ms: int
    retry_schedule: list[float] | None  # the event type's or the endpoint's; None = the default
    fifo: bool
    body: bytes

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Claim:
        """Build a claim from a claim_due_deliveries row, by column name."""
        return cls(**{field.name: row[field.name] for field in fields(cls)})


def build_headers(claim: Claim, timestamp: int) -> dict[str, str]:
    """Return the request headers: the endpoint's own first, so Relay's can never be overridden."""
    keys = [secret_key(claim.secret)]
    if claim.previous_secret:
        keys.append(secret_key(claim.previous_secret))
    headers = dict(claim.headers)
    headers.update(
        {
            "content-type": "application/json",
            "accept-encoding": "identity",
            "user-agent": USER_AGENT,
            "webhook-id": claim.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(keys, claim.event_id, timestamp, claim.body),
        }
    )
    if claim.legacy_signature:
        headers["x-relay-signature"] = legacy_signature(claim.secret, claim.body)
    return headers


class Sender:
    """An HTTP client shared by every attempt of one worker process."""

    def __init__(self, *, max_connections: int, response_body_limit: int, policy: AddressPolicy) -> None:
        self._limit = response_body_limit
        self._max_connections = max_connections
        self._policy = policy
        self._transport: AiohttpTransport | None = None
        self._urls: dict[str, httpx.URL] = {}

    def _open(self) -> AiohttpTransport:
        # aiohttp needs a running loop, so the session is made on first use.
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                ttl_dns_cache=10,
                resolver=GuardedResolver(self._policy),
            ),
            auto_decompress=False,
        )
        return AiohttpTransport(client=session)

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._transport is not None:
            await self._transport.aclose()
            self._transport = None

    def _url(self, url: str) -> httpx.URL:
        """Parse an endpoint URL once (endpoints are few, attempts many)."""
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) > 10_000:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    async def send(self, claim: Claim) -> AttemptResult:
        """POST the stored body to the endpoint; the endpoint's timeout bounds connect, headers and body."""
        if self._transport is None:
            self._transport = self._open()
        try:
            url = self._url(claim.url)
            # Names are checked on the address they resolve to; IP literals skip the resolver.
            self._policy.check_literal(url.host)
            headers = build_headers(claim, int(time.time()))
            request = httpx.Request("POST", url, headers=headers, content=claim.body)
        except BlockedAddress as exc:
            return AttemptResult(None, ErrorClass.BLOCKED, str(exc))
        except Exception as exc:  # noqa: BLE001 - a request that cannot be built is this attempt's outcome
            return AttemptResult(None, ErrorClass.INVALID_REQUEST, f"cannot build the request: {_one_line(exc)}")
        try:
            async with asyncio.timeout(claim.timeout_ms / 1000):
                response = await self._transport.handle_async_request(request)
                try:
                    body = await self._read_capped(response)
                finally:
                    await response.aclose()
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, UnicodeError, ValueError) as exc:
            # The client refused the URL or a header before anything went on the wire.
            return AttemptResult(None, ErrorClass.INVALID_REQUEST, f"cannot build the request: {_one_line(exc)}")
        except Exception as exc:  # noqa: BLE001 - every failure on the wire is an attempt outcome
            failure = from_exception(exc)
            return AttemptResult(None, failure, _describe(exc, failure, claim.timeout_ms))
        error_class = from_status(response.status_code)
        return AttemptResult(
            status=response.status_code,
            error_class=error_class,
            error_message=None
            if error_class is None
            else f"HTTP {response.status_code} {response.reason_phrase}".strip(),
            response_headers=dict(response.headers),
            response_body=body,
        )

    async def _read_capped(self, response: httpx.Response) -> str:
        """Read at most the configured number of bytes of the response body, as text."""
        chunks, size = [], 0
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
            size += len(chunk)
            if size >= self._limit:
                break
        return b"".join(chunks)[: self._limit].decode("utf-8", "replace")


def _describe(exc: BaseException, error_class: ErrorClass, timeout_ms: int) -> str:
    """Return a one-line message for an attempt that got no response."""
    if error_class is ErrorClass.TIMEOUT:
        return f"no complete response within {timeout_ms / 1000:g} s"
    if error_class is ErrorClass.BLOCKED:
        seen: BaseException | None = exc
        while seen is not None and not isinstance(seen, BlockedAddress):
            seen = seen.__cause__ or seen.__context__
        return str(seen or exc)
    return _one_line(exc)


def _one_line(exc: BaseException) -> str:
    text = " ".join((str(exc) or type(exc).__name__).split())
    return f"{type(exc).__name__}: {text}"[:500]
