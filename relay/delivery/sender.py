"""Send one signed attempt over HTTP (F6, F7, F9) through httpx on an aiohttp transport."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

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
    attempt_number: int
    url: str
    secret: str
    previous_secret: str | None  # still signs during a rotation's grace period
    legacy_signature: bool
    headers: dict[str, str]
    timeout_ms: int
    retry_schedule: list[float] | None  # the event type's or the endpoint's; None = the default
    fifo: bool
    body: bytes


def build_headers(claim: Claim, timestamp: int) -> dict[str, str]:
    """Return the request headers: the endpoint's own first, so Relay's can never be overridden."""
    keys = [secret_key(claim.secret)]
    if claim.previous_secret:
        keys.append(secret_key(claim.previous_secret))
    headers = dict(claim.headers)
    headers.update(
        {
            "content-type": "application/json",
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
        self._client: httpx.AsyncClient | None = None

    def _open(self) -> httpx.AsyncClient:
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
        return httpx.AsyncClient(
            transport=AiohttpTransport(client=session),
            follow_redirects=False,
            timeout=None,  # the whole attempt is bounded by asyncio.timeout below
            headers={"accept-encoding": "identity"},
        )

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, claim: Claim) -> AttemptResult:
        """POST the stored body to the endpoint; the endpoint's timeout bounds connect, headers and body."""
        if self._client is None:
            self._client = self._open()
        headers = build_headers(claim, int(time.time()))
        try:
            # Names are checked on the address they resolve to; IP literals skip the resolver.
            self._policy.check_literal(httpx.URL(claim.url).host)
        except BlockedAddress as exc:
            return AttemptResult(None, ErrorClass.BLOCKED, str(exc))
        try:
            async with asyncio.timeout(claim.timeout_ms / 1000):
                async with self._client.stream("POST", claim.url, content=claim.body, headers=headers) as response:
                    body = await self._read_capped(response)
        except Exception as exc:  # noqa: BLE001 - every failure on the wire is an attempt outcome
            error_class = from_exception(exc)
            return AttemptResult(None, error_class, _describe(exc, error_class, claim.timeout_ms))
        error_class = from_status(response.status_code)
        return AttemptResult(
            status=response.status_code,
            error_class=error_class,
            error_message=None if error_class is None else f"HTTP {response.status_code} {response.reason_phrase}".strip(),
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
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]
