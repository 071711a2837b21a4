"""Claim due deliveries in batches, send them concurrently, record their outcomes in batches.

One dispatcher runs inside each `relay worker`. It wakes on NOTIFY (sent when an
ingest transaction commits) and polls at least every second for retries that fell
due and notifications it missed. Any number of dispatchers can share one database:
claims use FOR UPDATE SKIP LOCKED, and a lease makes a dead worker's claims come back.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

from relay.db.sql import queries
from relay.delivery.outcome import next_state
from relay.delivery.recording import CircuitSettings, Outcome, write_outcomes
from relay.delivery.sender import Claim, Sender
from relay.states import DeliveryState

CHANNEL = "relay_deliveries"
_RECORD_BATCH = 1000

log = structlog.get_logger("relay.delivery")


class Dispatcher:
    """The claim → send → record loop of one worker process."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        conninfo: str,
        sender: Sender,
        *,
        retry_schedule: tuple[float, ...],
        concurrency: int,
        claim_batch_size: int,
        poll_interval: float,
        lease_margin: float,
        circuit: CircuitSettings | None = None,
        operator_webhooks: bool = False,
    ) -> None:
        self._pool = pool
        self._conninfo = conninfo
        self._sender = sender
        self._schedule = retry_schedule
        self._concurrency = max(1, concurrency)
        self._batch = max(1, min(claim_batch_size, self._concurrency))
        # Claiming a handful at a time costs a round trip each; wait for a worthwhile batch of free slots.
        self._min_claim = max(1, self._batch // 8)
        self._poll = poll_interval
        self._lease_margin = lease_margin
        self._circuit = circuit or CircuitSettings()
        self._operator_webhooks = operator_webhooks
        self._inflight: set[asyncio.Task[None]] = set()
        self._results: asyncio.Queue[Outcome | None] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self.sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set, then finish in-flight attempts and record them."""
        listener = asyncio.create_task(self._listen(stop), name="relay-listen")
        recorder = asyncio.create_task(self._record_loop(), name="relay-record")
        try:
            await self._claim_loop(stop)
        finally:
            listener.cancel()
            if self._inflight:
                log.info("dispatcher.draining", in_flight=len(self._inflight))
                await asyncio.gather(*self._inflight, return_exceptions=True)
            await self._results.put(None)
            await recorder
            await self._sender.close()

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            free = self._concurrency - len(self._inflight)
            if free < self._min_claim:
                self._slot_freed.clear()
                await _first_of(self._slot_freed, stop, timeout=self._poll)
                continue
            wanted = min(free, self._batch)
            self._wake.clear()
            try:
                claims = await self._claim(wanted)
                failures = 0
            except (psycopg.Error, OSError) as exc:
                failures += 1
                log.warning("dispatcher.claim_failed", error=str(exc), retry_in=min(5.0, 0.2 * failures))
                await _first_of(stop, timeout=min(5.0, 0.2 * failures))
                continue
            for claim in claims:
                task = asyncio.create_task(self._attempt(claim))
                self._inflight.add(task)
                task.add_done_callback(self._done)
            if len(claims) < wanted:
                await _first_of(self._wake, stop, timeout=self._poll)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slot_freed.set()

    async def _claim(self, limit: int) -> list[Claim]:
        """Claim due deliveries; return those to send now (the others were held or rescheduled)."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                queries["claim_due_deliveries"], {"limit": limit, "lease_margin": self._lease_margin}
            )
            rows = await cursor.fetchall()
        return [Claim(*row[1:]) for row in rows if row[0] == "send"]

    async def _attempt(self, claim: Claim) -> None:
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        result = await self._sender.send(claim)
        duration_ms = int((time.perf_counter() - started) * 1000)
        schedule = tuple(claim.retry_schedule) if claim.retry_schedule else self._schedule
        state, delay = next_state(result, claim.attempt_number, schedule)
        self.sent += 1
        if state is not DeliveryState.SUCCEEDED:
            log.info(
                "delivery.attempt_failed",
                tenant_id=claim.tenant_id,
                endpoint_id=claim.endpoint_id,
                event_id=claim.event_id,
                delivery_id=claim.delivery_id,
                attempt=claim.attempt_number,
                status=result.status,
                error_class=result.error_class,
                error=result.error_message,
                next_state=state,
                retry_in_s=None if delay is None else round(delay, 1),
            )
        await self._results.put(Outcome(claim, result, state, delay, started_at, duration_ms))

    async def _record_loop(self) -> None:
        finished = False
        while not finished:
            first = await self._results.get()
            batch: list[Outcome] = []
            item = first
            while True:
                if item is None:
                    finished = True
                else:
                    batch.append(item)
                if finished or len(batch) >= _RECORD_BATCH or self._results.empty():
                    break
                item = self._results.get_nowait()
            if batch:
                await self._record(batch)

    async def _record(self, batch: list[Outcome]) -> None:
        """Write a batch of outcomes, retrying while the database is unreachable.

        If this process dies first, the leases expire and the deliveries are sent
        again: at-least-once, never lost.
        """
        delay = 0.2
        while True:
            try:
                async with self._pool.connection() as conn:
                    await write_outcomes(conn, batch, self._circuit, operator_webhooks=self._operator_webhooks)
                return
            except (psycopg.Error, OSError) as exc:
                log.warning("dispatcher.record_failed", error=str(exc), outcomes=len(batch), retry_in=delay)
                await asyncio.sleep(delay)  # backoff while the database is away, not synchronisation
                delay = min(5.0, delay * 2)

    async def _listen(self, stop: asyncio.Event) -> None:
        """Set the wake event on every NOTIFY; reconnect after errors (the poll covers the gap)."""
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._wake.set()  # anything committed while we were not listening
                    async for _ in conn.notifies():
                        self._wake.set()
            except (psycopg.Error, OSError) as exc:
                log.warning("dispatcher.listen_failed", error=str(exc))
                await _first_of(stop, timeout=1.0)


async def _first_of(*events: asyncio.Event, timeout: float) -> None:
    """Wait until any of `events` is set, or `timeout` seconds pass."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
