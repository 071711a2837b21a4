"""Run one worker process: the dispatcher and a procrastinate worker on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import procrastinate
import structlog

from relay.db.pool import open_pool
from relay.delivery.dispatcher import Dispatcher
from relay.delivery.sender import Sender
from relay.settings import Settings
from relay.worker.app import app as procrastinate_app

log = structlog.get_logger("relay.worker")


async def run_worker(settings: Settings, conninfo: str, stop: asyncio.Event, *, concurrency: int | None = None) -> None:
    """Deliver and run jobs until `stop` is set; in-flight attempts finish and are recorded first."""
    concurrency = concurrency or settings.dispatch_concurrency
    pool = await open_pool(conninfo, min_size=2, max_size=4, name="relay-worker")
    sender = Sender(max_connections=concurrency, response_body_limit=settings.response_body_limit)
    dispatcher = Dispatcher(
        pool,
        conninfo,
        sender,
        retry_schedule=settings.retry_schedule,
        concurrency=concurrency,
        claim_batch_size=settings.claim_batch_size,
        poll_interval=settings.poll_interval_seconds,
        lease_margin=settings.lease_margin_seconds,
    )
    jobs_app = procrastinate_app.with_connector(procrastinate.PsycopgConnector(conninfo=conninfo))
    log.info("worker.started", concurrency=concurrency)
    try:
        async with jobs_app.open_async():
            jobs = asyncio.create_task(
                jobs_app.run_worker_async(install_signal_handlers=False, concurrency=4, name="relay-jobs")
            )
            try:
                await dispatcher.run(stop)
            finally:
                jobs.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await jobs
    finally:
        await pool.close()
        log.info("worker.stopped", attempts=dispatcher.sent)


def install_stop_signals(stop: asyncio.Event) -> None:
    """Make SIGINT and SIGTERM set `stop` (a second signal is not needed: draining is bounded)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
