"""Group commit for single events: the requests that arrive while a write is in flight are written together.

An API process runs one writer. A request hands its event to the writer and waits; the
writer takes everything waiting — at once when it is idle, so a lone request is not
delayed — and stores it with one statement (`ingest_group`): one round trip, one commit,
one NOTIFY for all of them, the rate limits charged in the same statement. Each request
then gets its own verdict. A request is answered only after its write committed; if the
write fails, every request in it gets the error (and nothing of theirs was stored, as the
statement is atomic).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import psycopg
import structlog
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from relay.db.events import NewEvent, event_columns
from relay.db.sql import queries

log = structlog.get_logger("relay.ingest")

MAX_GROUP = 1000  # events in one statement; more wait for the next write


@dataclass(frozen=True)
class Submission:
    """One request's event, with whose limit it counts against."""

    tenant_id: str
    subject: str
    rate_limit: int  # events per second; 0 = no limit
    event: NewEvent


@dataclass(frozen=True)
class Verdict:
    """What became of one submission."""

    event_id: str  # the new event's id, or the original's for a repeated idempotency key
    deliveries: int
    created: bool  # False: an idempotency key seen before with the same request
    endpoint_known: bool  # False: `endpoint_id` is not one of the tenant's endpoints; nothing stored
    conflict: bool  # True: the idempotency key was used before with a different request; nothing stored
    rate_limited: bool  # True: over the limit; nothing stored
    used: int | None  # the subject's count in this second, this request included
    resets_in: float


class GroupCommit:
    """One API process's writer of single events."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self._waiting: list[tuple[Submission, asyncio.Future[Verdict]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.writes = 0  # statements run (for tests and the bench)
        self.events = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="relay-group-commit")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _, future in self._waiting:
            if not future.done():
                future.set_exception(psycopg.OperationalError("the API process is stopping"))
        self._waiting.clear()

    async def submit(self, submission: Submission) -> Verdict:
        """Queue one event for the next write and wait until that write has committed (or failed)."""
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._waiting.append((submission, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
                group = [(s, f) for s, f in group if not f.cancelled()]  # a client that went away
                if not group:
                    continue
                await self._write_and_answer(group)

    async def _write_and_answer(self, group: list[tuple[Submission, asyncio.Future[Verdict]]]) -> None:
        try:
            verdicts = await self._write([s for s, _ in group])
        except (psycopg.OperationalError, OSError) as exc:
            # The database is away (or the connection broke): nothing of this group is known
            # to be stored, so no request in it may be told 202. Each gets the error (503).
            log.warning("ingest.group_failed", events=len(group), error=type(exc).__name__)
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        except Exception as exc:  # noqa: BLE001 - one request's data may be at fault: find it alone
            if len(group) == 1:
                if not group[0][1].done():
                    group[0][1].set_exception(exc)
                return
            log.warning("ingest.group_split", events=len(group), error=type(exc).__name__)
            for one in group:
                await self._write_and_answer([one])
            return
        for (_, future), verdict in zip(group, verdicts, strict=True):
            if not future.done():
                future.set_result(verdict)

    async def _write(self, group: list[Submission]) -> list[Verdict]:
        params = {
            "tenant_ids": [s.tenant_id for s in group],
            "subjects": [s.subject for s in group],
            "rate_limits": [s.rate_limit for s in group],
            **event_columns([s.event for s in group]),
        }
        async with self.pool.connection() as conn:
            for attempt in range(3):
                try:
                    cursor = conn.cursor(row_factory=dict_row)
                    await cursor.execute(queries["ingest_group"], params)
                    rows = await cursor.fetchall()
                    break
                except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                    if attempt == 2:
                        raise
                    # The statement rolled back as a whole: nothing of it was stored; write it again.
            self.writes += 1
            self.events += len(group)
            verdicts = [
                Verdict(
                    event_id=row["id"], deliveries=row["deliveries"], created=row["inserted"],
                    endpoint_known=row["endpoint_known"], conflict=False,
                    rate_limited=bool(s.rate_limit > 0 and row["used_after"] > s.rate_limit),
                    used=row["used_after"], resets_in=row["resets_in"],
                )
                for s, row in zip(group, rows, strict=True)
            ]
            repeated = [
                index for index, v in enumerate(verdicts)
                if not v.created and v.endpoint_known and not v.rate_limited
            ]
            if repeated:
                await self._answer_repeats(conn, group, verdicts, repeated)
        return verdicts

    async def _answer_repeats(self, conn: psycopg.AsyncConnection, group: list[Submission],
                              verdicts: list[Verdict], repeated: list[int]) -> None:
        """Answer a repeated idempotency key with the original, or as a conflict when the request differs."""
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(queries["originals_by_idempotency_key"], {
            "tenant_ids": [group[i].tenant_id for i in repeated],
            "keys": [group[i].event.idempotency_key for i in repeated],
        })
        originals = {(row["tenant_id"], row["idempotency_key"]): row for row in await cursor.fetchall()}
        for index in repeated:
            submission = group[index]
            original = originals.get((submission.tenant_id, submission.event.idempotency_key))
            if original is None:  # cannot happen: the key conflicted, so its event exists
                raise RuntimeError("an idempotency key conflicted but its event was not found")
            same = bytes(original["request_hash"]) == submission.event.request_hash
            verdicts[index] = Verdict(
                event_id=original["id"], deliveries=original["deliveries"], created=False,
                endpoint_known=True, conflict=not same, rate_limited=False,
                used=verdicts[index].used, resets_in=verdicts[index].resets_in,
            )
