"""Claim due deliveries in batches, send them concurrently, record their outcomes in batches.

One dispatcher runs inside each `relay worker`. It wakes on NOTIFY (sent when an
ingest transaction commits), whenever a batch of its own outcomes is recorded (slots
came back), and at least every poll interval for retries that fell due and
notifications it missed; each poll also gives back deliveries whose lease ran out.
Any number of dispatchers can share one database: claims use FOR UPDATE SKIP LOCKED,
in-flight counts live on the endpoint rows, and a lease makes a dead worker's claims
come back.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from relay.db import operator
from relay.db.rollups import empty_buckets
from relay.db.sql import queries
from relay.delivery.outcome import AttemptResult, ErrorClass, next_state
from relay.delivery.recording import CircuitSettings, Outcome, write_outcomes
from relay.delivery.sender import Claim, Sender
from relay.states import DeliveryState
from relay.supervise import failure_of, keep_running

CHANNEL = "relay_deliveries"
_RECORD_BATCH = 1000
_LINGER_BELOW = 32  # a recording with at least this many outcomes waiting goes at once

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
        default_max_in_flight: int = 64,
        max_lost_attempts: int = 3,
        circuit: CircuitSettings | None = None,
        operator_webhooks: bool = False,
        pacing: float = 0.0,
    ) -> None:
        self._pool = pool
        self._conninfo = conninfo
        self._sender = sender
        self._schedule = retry_schedule
        self._concurrency = max(1, concurrency)
        self._batch = max(1, min(claim_batch_size, self._concurrency))
        self._poll = poll_interval
        self._lease_margin = lease_margin
        self._default_max_in_flight = default_max_in_flight
        self._max_lost = max(1, max_lost_attempts)
        self._circuit = circuit or CircuitSettings()
        self._operator_webhooks = operator_webhooks
        # Pacing (seconds): a claim that came back short (light traffic) is followed by the next no sooner
        # than this after it started, and a recording waits this long for more outcomes to join it.
        # Without it each event cost its own claim and its own recording (two statements of ~2 ms each in
        # PostgreSQL), so the machine stayed busy at any rate. An endpoint at its in-flight cap (or FIFO)
        # is not kept waiting: the end of one of its attempts ends the pause (`_capped_slot_back`), and
        # its outcomes are recorded at once.
        self._pacing = max(0.0, pacing)
        self._capped_slot_back = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._results: asyncio.Queue[Outcome | None] = asyncio.Queue()
        # Attempts whose HTTP exchange is over but whose recording has not started, per endpoint: the
        # endpoint's in_flight count still holds their slots, but nothing is open at the receiver for them,
        # so this worker's claims may use them (credit, see claim_due_deliveries). A recording waits until
        # no claim is running, then takes its batch out of the credit before it writes: a claim never counts
        # a slot both as credit and as given back.
        self._unrecorded: Counter[tuple[str, str]] = Counter()
        self._no_claim_running = asyncio.Event()
        self._no_claim_running.set()
        # ... and a claim waits until no recording is running. A claim and a recording at the same moment
        # each work in their own snapshot: the recording of a FIFO endpoint's delivery looks for the next one
        # to hand over while the claim, still seeing the first in flight, holds that next one behind it —
        # and nothing released it (release_fifo_heads, run by the poll, now repairs what other workers cause).
        self._no_record_running = asyncio.Event()
        self._no_record_running.set()
        self._wake = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self.sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set, then finish in-flight attempts and record them.

        The NOTIFY listener is started again after a crash (the poll covers the gap). A crash of the
        claim loop or the recorder raises WorkerFailed: the worker must exit and be restarted; the
        leases bring back what was in flight, as lost attempts that cost no retry step.
        """
        listener = asyncio.create_task(
            keep_running("relay-listen", lambda: self._listen(stop), stop, max_delay=10.0), name="relay-listen"
        )
        recorder = asyncio.create_task(self._record_loop(), name="relay-record")
        claimer = asyncio.create_task(self._claim_loop(stop), name="relay-claim")
        try:
            await asyncio.wait([claimer, recorder], return_when=asyncio.FIRST_COMPLETED)
            failures = [failure for failure in (failure_of(recorder), failure_of(claimer)) if failure]
            if recorder.done():  # before it was told to finish: it crashed
                # No outcome can be written any more: waiting for the attempts in flight would only delay the exit.
                raise failures[0]
            # The claim loop ended (stop, or a crash) but the recorder works: what is in flight is recorded first,
            # so that fewer deliveries are sent twice.
            await self._drain(recorder)
            if failures:
                raise failures[0]
        finally:
            tasks = [listener, claimer, recorder, *self._inflight]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # the attempts' own failures are logged by _done
            await self._sender.close()

    async def _drain(self, recorder: asyncio.Task[None]) -> None:
        """Let the attempts in flight finish and record every outcome; raise WorkerFailed if the recorder dies."""
        if self._inflight:
            log.info("dispatcher.draining", in_flight=len(self._inflight))
            waiting: list[asyncio.Future[Any]] = [asyncio.gather(*self._inflight, return_exceptions=True), recorder]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not recorder.done():
            await self._results.put(None)
            await asyncio.wait([recorder])
        failure = failure_of(recorder)
        if failure is not None:
            raise failure

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        failures = 0
        next_rescue = 0.0
        while not stop.is_set():
            free = self._concurrency - len(self._inflight)
            if free <= 0:
                self._slot_freed.clear()
                await _first_of(self._slot_freed, stop, timeout=self._poll)
                continue
            wanted = min(free, self._batch)
            self._wake.clear()
            self._capped_slot_back.clear()
            try:
                if time.monotonic() >= next_rescue:
                    next_rescue = time.monotonic() + self._poll
                    await self._rescue()
                claim_started = time.monotonic()
                claims = await self._claim(wanted)
                failures = 0
            except (psycopg.Error, OSError) as exc:
                failures += 1
                log.warning("dispatcher.claim_failed", error=str(exc), retry_in=min(5.0, 0.2 * failures))
                await _first_of(stop, timeout=min(5.0, 0.2 * failures))
                continue
            for claim in claims:
                task = asyncio.create_task(self._attempt(claim), name=f"relay-attempt-{claim.delivery_id}")
                self._inflight.add(task)
                task.add_done_callback(self._done)
            if len(claims) < wanted:
                # Nothing more may go now: wait for new events, recorded outcomes (slots back) or the poll.
                rest = claim_started + self._pacing - time.monotonic()
                if rest > 0:
                    await _first_of(stop, self._capped_slot_back, timeout=rest)
                await _first_of(self._wake, stop, timeout=self._poll)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            # _attempt records every failure itself; reaching here is a bug, and the lease will bring it back.
            log.error("dispatcher.attempt_crashed", task=task.get_name(), exc_info=task.exception())

    async def _claim(self, limit: int) -> list[Claim]:
        """Claim due deliveries; return those to send now (the others were held, made to wait or left due)."""
        async with self._pool.connection() as conn:
            await _until_set(self._no_record_running)
            self._no_claim_running.clear()  # no await since the wait: no recording can start in between
            credit = [(key, n) for key, n in self._unrecorded.items() if n > 0]
            cursor = conn.cursor(row_factory=dict_row)
            try:
                await cursor.execute(
                    queries["claim_due_deliveries"],
                    {
                        "limit": limit,
                        "lease_margin": self._lease_margin,
                        "default_max_in_flight": self._default_max_in_flight,
                        "credit_tenant_ids": [key[0] for key, _ in credit],
                        "credit_endpoint_ids": [key[1] for key, _ in credit],
                        "credits": [n for _, n in credit],
                    },
                )
                rows = await cursor.fetchall()
            finally:
                self._no_claim_running.set()
        return [Claim.from_row(row) for row in rows if row["action"] == "send"]

    async def _rescue(self) -> None:
        """Give back deliveries whose lease expired (their worker died); wake the claim if any are due again."""
        async with self._pool.connection() as conn, conn.transaction():
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(
                queries["rescue_lost_attempts"], {"max_lost": self._max_lost, "empty_buckets": empty_buckets()}
            )
            rescued = await cursor.fetchall()
            await cursor.execute(queries["release_fifo_heads"])
            released = await cursor.fetchall()
            dead = [row for row in rescued if row["state"] == DeliveryState.DEAD]
            if dead and self._operator_webhooks:
                await operator.emit(conn, operator.DELIVERY_DEAD, [
                    {"tenant_id": r["tenant_id"], "delivery_id": r["delivery_id"], "event_id": r["event_id"],
                     "endpoint_id": r["endpoint_id"], "attempts": 0, "last_status": None,
                     "error_class": ErrorClass.LEASE_EXPIRED.value, "error": "lost_attempts"}
                    for r in dead
                ])
        if rescued:
            log.warning("dispatcher.lost_attempts", rescued=len(rescued), dead=len(dead),
                        delivery_ids=[r["delivery_id"] for r in rescued[:20]])
            self._wake.set()
        if released:
            log.info("dispatcher.fifo_released", delivery_ids=[r["id"] for r in released[:20]])
            self._wake.set()

    async def _attempt(self, claim: Claim) -> None:
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        try:
            result = await self._sender.send(claim)
        except Exception as exc:  # noqa: BLE001 - a bug must cost one attempt, never a delivery stuck in flight
            log.exception("delivery.send_crashed", delivery_id=claim.delivery_id, endpoint_id=claim.endpoint_id)
            result = AttemptResult(None, ErrorClass.INTERNAL_ERROR, f"Relay failed while sending: {type(exc).__name__}")
        duration_ms = int((time.perf_counter() - started) * 1000)
        schedule = tuple(claim.retry_schedule) if claim.retry_schedule else self._schedule
        state, delay = next_state(result, claim.attempts, schedule)
        self.sent += 1
        if state is not DeliveryState.SUCCEEDED:
            log.info(
                "delivery.attempt_failed",
                tenant_id=claim.tenant_id,
                endpoint_id=claim.endpoint_id,
                event_id=claim.event_id,
                delivery_id=claim.delivery_id,
                attempt=claim.attempts,
                status=result.status,
                error_class=result.error_class,
                error=result.error_message,
                next_state=state,
                retry_in_s=None if delay is None else round(delay, 1),
            )
        self._unrecorded[(claim.tenant_id, claim.endpoint_id)] += 1
        await self._results.put(Outcome(claim, result, state, delay, started_at, duration_ms))
        self._wake.set()  # its slot is free at the receiver: the endpoint may take another one
        if _at_cap(claim):
            self._capped_slot_back.set()  # ... and it had none other: no pacing pause for it

    async def _record_loop(self) -> None:
        finished = False
        while not finished:
            first = await self._results.get()
            if (self._pacing and first is not None and not _at_cap(first.claim)
                    and self._results.qsize() < _LINGER_BELOW):
                await asyncio.sleep(self._pacing)  # pacing (see __init__): let more outcomes join this recording
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
                    await _until_set(self._no_claim_running)
                    self._no_record_running.clear()
                    self._take_credit(batch, -1)  # no await since the wait: no claim can start in between
                    try:
                        await write_outcomes(conn, batch, self._circuit, operator_webhooks=self._operator_webhooks,
                                             default_max_in_flight=self._default_max_in_flight)
                    except BaseException:
                        self._take_credit(batch, +1)  # not given back after all
                        raise
                    finally:
                        self._no_record_running.set()
                self._wake.set()  # their slots are free again: more may be claimed now
                if any(_at_cap(outcome.claim) for outcome in batch):
                    self._capped_slot_back.set()  # a capped endpoint's slots, or a FIFO endpoint's next one
                return
            except (psycopg.Error, OSError) as exc:
                log.warning("dispatcher.record_failed", error=str(exc), outcomes=len(batch), retry_in=delay)
                await asyncio.sleep(delay)  # backoff while the database is away, not synchronisation
                delay = min(5.0, delay * 2)

    def _take_credit(self, batch: list[Outcome], sign: int) -> None:
        for outcome in batch:
            key = (outcome.claim.tenant_id, outcome.claim.endpoint_id)
            self._unrecorded[key] += sign
            if self._unrecorded[key] <= 0:
                del self._unrecorded[key]

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


def _at_cap(claim: Claim) -> bool:
    """Whether the claim filled its endpoint's in-flight cap (relay.concurrency_cap; FIFO: one at a time)."""
    return claim.fifo or claim.in_flight >= max(1, int(claim.concurrency_level))


async def _until_set(event: asyncio.Event) -> None:
    """Wait until `event` is set and still set when this task runs again (Event.wait() returns once it was set,
    even if another task cleared it before this one was scheduled)."""
    while not event.is_set():
        await event.wait()


async def _first_of(*events: asyncio.Event, timeout: float) -> None:
    """Wait until any of `events` is set, or `timeout` seconds pass."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
