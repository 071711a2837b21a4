"""Run one worker process: the dispatcher and a procrastinate worker on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import procrastinate
import structlog

from relay.db.operator import configure_operator_endpoint
from relay.db.pool import open_pool
from relay.delivery.dispatcher import Dispatcher
from relay.delivery.recording import CircuitSettings
from relay.delivery.sender import Sender
from relay.jobs import Resources, use_database
from relay.settings import Settings
from relay.urlguard import AddressPolicy, describe

log = structlog.get_logger("relay.worker")


async def run_worker(settings: Settings, conninfo: str, stop: asyncio.Event, *, concurrency: int | None = None) -> None:
    """Deliver and run jobs until `stop` is set; in-flight attempts finish and are recorded first."""
    concurrency = concurrency or settings.dispatch_concurrency
    pool = await open_pool(conninfo, min_size=2, max_size=4, name="relay-worker")
    sender_policy = AddressPolicy(settings.allowed_networks or ())
    sender = Sender(
        max_connections=concurrency, response_body_limit=settings.response_body_limit, policy=sender_policy
    )
    dispatcher = Dispatcher(
        pool,
        conninfo,
        sender,
        retry_schedule=settings.retry_schedule,
        concurrency=concurrency,
        claim_batch_size=settings.claim_batch_size,
        poll_interval=settings.poll_interval_seconds,
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
        jobs = asyncio.create_task(_supervise_jobs(jobs_app, jobs_pool, context, stop))
        try:
            await dispatcher.run(stop)
        finally:
            jobs.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await jobs
    finally:
        await pool.close()
        await jobs_pool.close()
        log.info("worker.stopped", attempts=dispatcher.sent)


async def _supervise_jobs(jobs_app: procrastinate.App, jobs_pool, context: dict, stop: asyncio.Event) -> None:
    """Run procrastinate's worker, and start it again if it fails (say, while PostgreSQL restarts)."""
    while not stop.is_set():
        try:
            async with jobs_app.open_async(pool=jobs_pool):
                await jobs_app.run_worker_async(
                    install_signal_handlers=False, concurrency=4, name="relay-jobs",
                    additional_context=context, delete_jobs="successful",
                )
            log.warning("worker.jobs_restarting", reason="procrastinate's worker stopped")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure: log, wait, start again
            log.warning("worker.jobs_restarting", error_type=type(exc).__name__, error=str(exc)[:200])
        await asyncio.sleep(2)  # back off before starting again, not synchronisation


def install_stop_signals(stop: asyncio.Event) -> None:
    """Make SIGINT and SIGTERM set `stop` (a second signal is not needed: draining is bounded)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
