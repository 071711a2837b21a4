"""Supervised worker tasks on a real database: a crashed claim loop or recorder stops the worker, the rest restart."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable
from typing import Any

import procrastinate
import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from structlog.testing import capture_logs

from relay.db.pool import open_pool
from relay.delivery import dispatcher as dispatcher_module
from relay.delivery.dispatcher import Dispatcher
from relay.delivery.sender import Sender
from relay.settings import load_settings
from relay.supervise import WorkerFailed
from relay.urlguard import parse_networks
from relay.worker.run import run_worker
from tests.integration.test_dispatcher import LOOPBACK, state_of
from tests.integration.test_ingest import add_endpoint, event, ingest
from tests.receiver import Holding, Received, Receiver


async def until(check: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `check` in a thread (it may query the database) until it is truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := await asyncio.to_thread(check)):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)  # polling interval, not synchronisation: the deadline decides
    return result


def endpoint_at(db: psycopg.Connection, tenant_id: str, url: str) -> str:
    endpoint_id = add_endpoint(db, tenant_id)
    db.execute("UPDATE relay.endpoints SET url = %s WHERE id = %s", (url, endpoint_id))
    return endpoint_id


def deliver_to(conninfo: str, tenant_id: str, endpoint_id: str) -> str:
    """Ingest one event for `endpoint_id` alone; return its id."""
    [accepted] = ingest(conninfo, tenant_id, [event("a.b", endpoint_id=endpoint_id)])
    return accepted.id


def new_dispatcher(pool, conninfo: str, *, poll_interval: float = 0.1, listen_conninfo: str = "") -> Dispatcher:
    return Dispatcher(
        pool, listen_conninfo or conninfo, Sender(max_connections=16, response_body_limit=100, policy=LOOPBACK),
        retry_schedule=(1.0,), concurrency=16, claim_batch_size=16, poll_interval=poll_interval, lease_margin=30,
    )


def logged(logs: list[dict], event_name: str, task: str) -> list[dict]:
    return [entry for entry in logs if entry["event"] == event_name and entry.get("task") == task]


async def stop_and_wait(run: asyncio.Task[None], stop: asyncio.Event) -> None:
    """Stop a run that is still going (a test that failed half-way), and wait for it."""
    stop.set()
    if not run.done():
        await asyncio.wait([run], timeout=30)
        run.cancel()
    await asyncio.gather(run, return_exceptions=True)


def test_a_recorder_crash_stops_the_dispatcher_at_once_and_names_the_task(conninfo, db, tenant, monkeypatch) -> None:
    tenant_id, _ = tenant
    holding = Holding(seconds=60)

    async def hold_the_slow_one(request: Received):
        if request.path == "/slow":
            await holding.hold()
        return 200, {}, b"ok"

    with Receiver(hold_the_slow_one) as receiver:
        slow = endpoint_at(db, tenant_id, receiver.url("/slow"))
        fast = endpoint_at(db, tenant_id, receiver.url("/fast"))
        real_write = dispatcher_module.write_outcomes

        async def crash_on_the_fast_one(conn, batch, *args, **kwargs):
            if any(outcome.claim.endpoint_id == fast for outcome in batch):
                raise RuntimeError("injected recorder failure")
            await real_write(conn, batch, *args, **kwargs)

        monkeypatch.setattr(dispatcher_module, "write_outcomes", crash_on_the_fast_one)

        async def scenario() -> tuple[WorkerFailed, float, str, str]:
            pool = await open_pool(conninfo, max_size=2)
            stop = asyncio.Event()
            run = asyncio.create_task(new_dispatcher(pool, conninfo).run(stop))
            try:
                slow_event = await asyncio.to_thread(deliver_to, conninfo, tenant_id, slow)
                await until(lambda: receiver.received("/slow"), what="the slow attempt to be in flight")
                fast_event = await asyncio.to_thread(deliver_to, conninfo, tenant_id, fast)
                started = time.monotonic()
                with pytest.raises(WorkerFailed) as failed:
                    await asyncio.wait_for(asyncio.shield(run), timeout=20)
                return failed.value, time.monotonic() - started, slow_event, fast_event
            finally:
                holding.release()
                await stop_and_wait(run, stop)
                await pool.close()

        with capture_logs() as logs:
            failure, took, slow_event, fast_event = asyncio.run(scenario())

    assert failure.task == "relay-record" and "RuntimeError: injected recorder failure" in str(failure)
    # It did not wait for the attempt still held at the receiver: its outcome could not have been written.
    assert took < 10, took
    # Neither outcome was written: both leases will bring their deliveries back, as lost attempts.
    assert state_of(db, slow_event) == ("delivering", 1) and state_of(db, fast_event) == ("delivering", 1)
    [entry] = logged(logs, "worker.task_failed", "relay-record")
    assert entry["log_level"] == "error" and isinstance(entry["exc_info"], RuntimeError)
    assert entry["exc_info"].__traceback__ is not None


def test_a_claim_loop_crash_stops_the_dispatcher_after_recording_what_is_in_flight(
    conninfo, db, tenant, monkeypatch
) -> None:
    tenant_id, _ = tenant
    holding = Holding(seconds=30)
    crash_next_claim = False
    real_claim = Dispatcher._claim

    async def claim(self: Dispatcher, limit: int):
        nonlocal crash_next_claim
        if crash_next_claim:
            crash_next_claim = False
            raise RuntimeError("injected claim failure")
        return await real_claim(self, limit)

    monkeypatch.setattr(Dispatcher, "_claim", claim)

    async def hold(_: Received):
        await holding.hold()
        return 200, {}, b"ok"

    with Receiver(hold) as receiver, capture_logs() as logs:
        endpoint_id = endpoint_at(db, tenant_id, receiver.url())

        async def scenario() -> tuple[WorkerFailed, str]:
            nonlocal crash_next_claim
            pool = await open_pool(conninfo, max_size=2)
            stop = asyncio.Event()
            run = asyncio.create_task(new_dispatcher(pool, conninfo).run(stop))
            try:
                event_id = await asyncio.to_thread(deliver_to, conninfo, tenant_id, endpoint_id)
                await until(receiver.received, what="the attempt to be in flight")
                crash_next_claim = True
                await until(lambda: logged(logs, "worker.task_failed", "relay-claim"), what="the claim loop to crash")
                # The recorder still works, so the dispatcher waits for the attempt in flight to record it.
                assert not run.done()
                assert (await asyncio.to_thread(state_of, db, event_id))[0] == "delivering"
                holding.release()
                with pytest.raises(WorkerFailed) as failed:
                    await asyncio.wait_for(asyncio.shield(run), timeout=20)
                return failed.value, event_id
            finally:
                holding.release()
                await stop_and_wait(run, stop)
                await pool.close()

        failure, event_id = asyncio.run(scenario())

    assert failure.task == "relay-claim" and "RuntimeError: injected claim failure" in str(failure)
    assert state_of(db, event_id) == ("succeeded", 1)  # recorded before the dispatcher stopped
    [entry] = logged(logs, "worker.task_failed", "relay-claim")
    assert entry["log_level"] == "error" and isinstance(entry["exc_info"], RuntimeError)
    assert [e for e in logs if e["event"] == "dispatcher.draining"]


def test_a_crashed_listener_is_started_again_and_wakes_the_dispatcher(conninfo, db, tenant, monkeypatch) -> None:
    tenant_id, _ = tenant
    listener_name = f"relay-test-listener-{uuid.uuid4().hex[:6]}"
    real_connect = psycopg.AsyncConnection.connect
    failed = False

    async def connect_broken_once(*args, **kwargs):
        nonlocal failed
        if not failed:
            failed = True
            raise RuntimeError("injected listener failure")
        return await real_connect(*args, **kwargs)

    def listening() -> bool:
        return db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND query = 'LISTEN relay_deliveries'",
            (listener_name,),
        ).fetchone()[0] == 1

    with Receiver() as receiver, capture_logs() as logs:
        endpoint_id = endpoint_at(db, tenant_id, receiver.url())

        async def scenario() -> None:
            # Opened in full before the patch, so that the listener is the only one to connect.
            pool = await open_pool(conninfo, min_size=2, max_size=2)
            monkeypatch.setattr(psycopg.AsyncConnection, "connect", connect_broken_once)
            stop = asyncio.Event()
            # A poll far longer than the test: only a NOTIFY, so a working listener, can wake the claim loop.
            dispatcher = new_dispatcher(pool, conninfo, poll_interval=60,
                                        listen_conninfo=make_conninfo(conninfo, application_name=listener_name))
            run = asyncio.create_task(dispatcher.run(stop))
            try:
                await until(lambda: logged(logs, "worker.task_restarting", "relay-listen"), what="a restart")
                await until(listening, what="the restarted listener to LISTEN")
                await asyncio.to_thread(deliver_to, conninfo, tenant_id, endpoint_id)
                await until(receiver.received, timeout=10, what="the delivery, woken by NOTIFY")
                stop.set()
                await asyncio.wait_for(asyncio.shield(run), timeout=20)
            finally:
                await stop_and_wait(run, stop)
                await pool.close()

        asyncio.run(scenario())

    [restart] = logged(logs, "worker.task_restarting", "relay-listen")
    assert restart["restarts"] == 1 and isinstance(restart["exc_info"], RuntimeError)
    assert "injected listener failure" in restart["reason"]
    assert not [e for e in logs if e["event"] == "worker.task_failed"]


def test_a_crashed_procrastinate_worker_is_started_again_and_runs_jobs(conninfo, db, monkeypatch) -> None:
    real_run = procrastinate.App.run_worker_async
    runs = 0

    async def crash_once(self: procrastinate.App, **options):
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("injected jobs failure")
        await real_run(self, **options)

    monkeypatch.setattr(procrastinate.App, "run_worker_async", crash_once)
    settings = dataclasses.replace(load_settings(), allowed_networks=parse_networks("127.0.0.0/8"))

    def job_done(job_id: int) -> bool:
        row = db.execute("SELECT status::text FROM procrastinate_jobs WHERE id = %s", (job_id,)).fetchone()
        return row is None or row[0] == "succeeded"  # the worker deletes the jobs that succeed

    async def scenario() -> None:
        stop = asyncio.Event()
        worker = asyncio.create_task(run_worker(settings, conninfo, stop, concurrency=4))
        try:
            await until(lambda: logged(logs, "worker.task_restarting", "relay-jobs"), what="a restart")
            other = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
            async with other.open_async():
                job_id = await other.configure_task(
                    "relay.prune_rate_counters", queueing_lock=f"test-{uuid.uuid4().hex}"
                ).defer_async(timestamp=0)
            await until(lambda: job_done(job_id), what="the restarted worker to run a job")
            stop.set()
            await asyncio.wait_for(asyncio.shield(worker), timeout=30)
        finally:
            await stop_and_wait(worker, stop)

    with capture_logs() as logs:
        asyncio.run(scenario())

    assert runs == 2
    [restart] = logged(logs, "worker.task_restarting", "relay-jobs")
    assert restart["restarts"] == 1 and isinstance(restart["exc_info"], RuntimeError)
    assert "injected jobs failure" in restart["reason"]
    assert not [e for e in logs if e["event"] == "worker.task_failed"]
