"""Run one worker process: the dispatcher and a procrastinate worker on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import procrastinate
import structlog
from psycopg_pool import AsyncConnectionPool

from relay.db.operator import configure_operator_endpoint
from relay.db.pool import open_pool
from relay.delivery.dispatcher import Dispatcher
from relay.delivery.recording import CircuitSettings
from relay.delivery.sender import Sender
from relay.jobs import Resources, use_database
from relay.settings import Settings
from relay.supervise import WorkerFailed, keep_running
from relay.urlguard import AddressPolicy, describe

log = structlog.get_logger("relay.worker")


async def run_worker(settings: Settings, conninfo: str, stop: asyncio.Event, *, concurrency: int | None = None) -> None:
    """Deliver and run jobs until `stop` is set; in-flight attempts finish and are recorded first.

    If the claim loop or the recorder crashes, set `stop` and raise WorkerFailed: the process must
    exit non-zero so that its manager starts it again (see Dispatcher.run).
    """
    concurrency = concurrency or settings.dispatch_concurrency
    pool = await open_pool(conninfo, min_size=2, max_size=4, name="relay-worker")
    sender_policy = AddressPolicy(settings.allowed_networks or ())
    sender = Sender(max_connections=concurrency, response_body_limit=settings.response_body_limit, policy=sender_policy)
    dispatcher = Dispatcher(
        pool,
        conninfo,
        sender,
        retry_schedule=settings.retry_schedule,
        concurrency=concurrency,
        claim_batch_size=settings.claim_batch_size,
        poll_interval=settings.poll_interval_seconds,
        pacing=settings.dispatch_pacing_ms / 1000,
        lease_margin=settings.lease_margin_seconds,
        default_max_in_flight=settings.endpoint_max_in_flight,
        max_lost_attempts=settings.max_lost_attempts,
        operator_webhooks=bool(settings.operator_webhook_url),
        circuit=CircuitSettings(
            failure_threshold=settings.circuit_failure_threshold,
            cooldown_seconds=settings.circuit_cooldown_seconds,
            max_cooldown_seconds=settings.circuit_max_cooldown_seconds,
        ),
    )
    async with pool.connection() as conn:
        await configure_operator_endpoint(conn, settings.operator_webhook_url, settings.operator_webhook_secret)
    context = {"relay": Resources(pool=pool, settings=settings, sender=sender)}
    log.info("worker.started", concurrency=concurrency, **describe(sender_policy))
    jobs_pool = await open_pool(conninfo, min_size=1, max_size=6, name="relay-jobs", autocommit=False)
    jobs_app = use_database(conninfo)
    try:
        # procrastinate's worker keeps its state in the database: after a crash it can simply start again.
        jobs = asyncio.create_task(
            keep_running("relay-jobs", lambda: _run_jobs(jobs_app, jobs_pool, context), stop, first_delay=1.0),
            name="relay-jobs",
        )
        try:
            await dispatcher.run(stop)
        except WorkerFailed:
            stop.set()  # the rest of this process stops with it: procrastinate's worker, the API under `relay dev`
            raise
        finally:
            jobs.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await jobs
    finally:
        await pool.close()
        await jobs_pool.close()
        log.info("worker.stopped", attempts=dispatcher.sent)


async def _run_jobs(jobs_app: procrastinate.App, jobs_pool: AsyncConnectionPool, context: dict) -> None:
    """Run procrastinate's worker until cancelled, or until it stops itself (one of its side tasks failed)."""
    async with jobs_app.open_async(pool=jobs_pool):
        await jobs_app.run_worker_async(
            install_signal_handlers=False,
            concurrency=4,
            name="relay-jobs",
            additional_context=context,
            delete_jobs="never",  # kept for `relay jobs`; relay.remove_old_jobs removes them after RELAY_JOBS_KEEP
        )


def install_stop_signals(stop: asyncio.Event) -> None:
    """Make SIGINT and SIGTERM set `stop` (a second signal is not needed: draining is bounded)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
