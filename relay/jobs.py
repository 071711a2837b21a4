"""The procrastinate app and its jobs: `relay jobs <command>` inspects them with procrastinate's CLI.

Deliveries do not go through procrastinate (the deliveries table is their queue, see
relay/delivery). procrastinate carries periodic duties and background jobs; they run
inside `relay worker`, which hands each job the worker's resources (pool, settings,
sender) through procrastinate's job context. The API defers jobs through this module.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import procrastinate
import procrastinate.connector
import structlog
from procrastinate import builtin_tasks
from psycopg_pool import AsyncConnectionPool

from relay.ai.anomalies import scan
from relay.db import operator, throttle
from relay.db.retention import purge, purge_audit_log
from relay.db.sql import fetch_all, queries
from relay.delivery.replay import run_operation
from relay.delivery.sender import Sender
from relay.delivery.verification import verify_endpoint
from relay.settings import Settings

log = structlog.get_logger("relay.jobs")

NO_DATABASE = (
    "Relay's database is not set. Use `relay jobs …` (it finds the database as `relay dev` does: "
    "DATABASE_URL, or the embedded PostgreSQL), or set DATABASE_URL=postgresql://… for "
    "`procrastinate --app=relay.jobs.app`."
)


class _NoDatabase(procrastinate.PsycopgConnector):
    """Stands in until a database is named: opening it fails with how to name one.

    An empty conninfo would make libpq connect to its defaults (PGHOST, the local socket):
    another server, where the jobs are not, without a word. This never does.
    """

    def __init__(self) -> None:
        super().__init__(conninfo="")

    async def open_async(self, pool: object = None) -> None:
        raise RuntimeError(NO_DATABASE)

    def get_sync_connector(self) -> procrastinate.connector.BaseConnector:
        raise RuntimeError(NO_DATABASE)


def _initial_connector() -> procrastinate.PsycopgConnector:
    url = os.environ.get("DATABASE_URL", "").strip()
    return procrastinate.PsycopgConnector(conninfo=url) if url else _NoDatabase()


# `relay api`, `relay worker` and `relay jobs` point the app at their database (use_database);
# procrastinate's own CLI reads DATABASE_URL.
app = procrastinate.App(connector=_initial_connector(), import_paths=[])


def api_jobs_app(conninfo: str) -> procrastinate.App:
    """A copy of the app, with its own connector, for one API app to queue jobs through.

    Every API app in a process (tests run several) opens and closes its own, so closing one
    never closes the connector another one, or a worker in the same process, still uses.
    """
    return app.with_connector(procrastinate.PsycopgConnector(conninfo=conninfo))


def use_database(conninfo: str) -> procrastinate.App:
    """Point the app at Relay's database (processes call this once at start) and return it."""
    if getattr(app.connector, "_relay_conninfo", None) != conninfo:
        connector = procrastinate.PsycopgConnector(conninfo=conninfo)
        connector._relay_conninfo = conninfo  # type: ignore[attr-defined]
        app.connector = connector
        app.job_manager.connector = connector
    return app


@dataclass(frozen=True)
class Resources:
    """What jobs need from the worker process."""

    pool: AsyncConnectionPool
    settings: Settings
    sender: Sender


def resources(context: procrastinate.JobContext) -> Resources:
    return context.additional_context["relay"]


@app.task(name="relay.replay_operation", pass_context=True, retry=3)
async def replay_operation(context: procrastinate.JobContext, tenant_id: str, operation_id: str) -> None:
    """Replay the dead deliveries a bulk operation selects (dead-letter replay, endpoint recovery)."""
    await run_operation(resources(context).pool, tenant_id, operation_id)


@app.task(name="relay.verify_endpoint", pass_context=True, retry=2)
async def verify_endpoint_job(context: procrastinate.JobContext, tenant_id: str, endpoint_id: str) -> None:
    """Send an endpoint its verification challenge."""
    res = resources(context)
    verdict = await verify_endpoint(res.pool, res.sender, tenant_id, endpoint_id)
    log.info("endpoint.verification", tenant_id=tenant_id, endpoint_id=endpoint_id, verdict=verdict)


async def disable_failing_endpoints(pool: AsyncConnectionPool, after_seconds: float) -> int:
    """Disable endpoints that have failed without a break for longer than `after_seconds`; return how many."""
    cutoff = datetime.now(UTC) - timedelta(seconds=after_seconds)
    async with pool.connection() as conn, conn.transaction():
        failing = await fetch_all(conn, "endpoints_failing_since", {"cutoff": cutoff})
        if not failing:
            return 0
        await conn.execute(
            queries["disable_endpoints"],
            {
                "tenant_ids": [row["tenant_id"] for row in failing],
                "endpoint_ids": [row["id"] for row in failing],
                "reason": "failing",
            },
        )
        await operator.emit(conn, operator.ENDPOINT_DISABLED, [
            {"tenant_id": row["tenant_id"], "endpoint_id": row["id"], "url": row["url"], "reason": "failing"}
            for row in failing
        ])
    for row in failing:
        log.warning("endpoint.disabled", reason="failing", tenant_id=row["tenant_id"], endpoint_id=row["id"])
    return len(failing)


@app.periodic(cron="*/5 * * * *", periodic_id="auto-disable")
@app.task(name="relay.auto_disable", pass_context=True, queueing_lock="relay.auto_disable")
async def auto_disable(context: procrastinate.JobContext, timestamp: int) -> None:
    """Disable endpoints failing continuously for RELAY_AUTO_DISABLE_AFTER (default 5 days)."""
    res = resources(context)
    await disable_failing_endpoints(res.pool, res.settings.auto_disable_after_seconds)


@app.periodic(cron="* * * * *", periodic_id="requeue-operations")
@app.task(name="relay.requeue_operations", pass_context=True, queueing_lock="relay.requeue_operations")
async def requeue_operations(context: procrastinate.JobContext, timestamp: int) -> None:
    """Queue the job of any operation whose API process died between storing it and queueing it."""
    async with resources(context).pool.connection() as conn:
        stale = await fetch_all(conn, "stale_queued_operations", {})
    for row in stale:
        await defer_operation(row["tenant_id"], row["id"])


async def defer_operation(tenant_id: str, operation_id: str, jobs: procrastinate.App | None = None) -> None:
    """Queue an operation's job (at most one queued job per operation), through `jobs` (an API's) or this app."""
    try:
        await _deferrer(replay_operation, jobs, queueing_lock=f"operation:{operation_id}").defer_async(
            tenant_id=tenant_id, operation_id=operation_id
        )
    except procrastinate.exceptions.AlreadyEnqueued:
        pass


async def defer_verification(tenant_id: str, endpoint_id: str, jobs: procrastinate.App | None = None) -> None:
    """Queue an endpoint's verification challenge, through `jobs` (an API's) or this app."""
    await _deferrer(verify_endpoint_job, jobs).defer_async(tenant_id=tenant_id, endpoint_id=endpoint_id)


def _deferrer(task: procrastinate.tasks.Task[Any, Any, Any], jobs: procrastinate.App | None,
              **options: Any) -> procrastinate.jobs.JobDeferrer:
    """Configure `task` for deferring through `jobs`'s connector (this app's when None).

    A job row carries the task's name and queue; its retry policy is the task's, applied by
    the worker, so a job queued through an API's copy of the app runs as any other.
    """
    if jobs is None:
        return task.configure(**options)
    return procrastinate.tasks.configure_task(
        name=task.name, job_manager=jobs.job_manager, queue=task.queue, lock=task.lock, **options
    )


@app.periodic(cron="* * * * *", periodic_id="prune-rate-counters")
@app.task(name="relay.prune_rate_counters", pass_context=True, queueing_lock="relay.prune_rate_counters")
async def prune_rate_counters(context: procrastinate.JobContext, timestamp: int) -> None:
    """Delete rate-limit windows older than a minute."""
    async with resources(context).pool.connection() as conn:
        await conn.execute(queries["delete_old_rate_counters"])


@app.periodic(cron="17 * * * *", periodic_id="retention")
@app.task(name="relay.retention", pass_context=True, queueing_lock="relay.retention")
async def retention(context: procrastinate.JobContext, timestamp: int) -> None:
    """Remove events, deliveries and attempts older than RELAY_RETENTION (default 30 days), and audit rows older
    than RELAY_AUDIT_RETENTION (default 365 days), hourly."""
    res = resources(context)
    removed = await purge(res.pool, res.settings.retention_seconds)
    removed["audit_log"] = await purge_audit_log(res.pool, res.settings.audit_retention_seconds)
    async with res.pool.connection() as conn:  # dashboard sessions a day past their expiry
        await conn.execute(queries["delete_old_dashboard_sessions"])
        removed["login_throttle"] = await throttle.prune(conn, res.settings.login_window_seconds)  # quiet subjects
    log.info("retention.done", **removed)


@app.periodic(cron="*/5 * * * *", periodic_id="anomaly-scan")
@app.task(name="relay.anomaly_scan", pass_context=True, queueing_lock="relay.anomaly_scan")
async def anomaly_scan(context: procrastinate.JobContext, timestamp: int) -> None:
    """Compare each endpoint's recent failure rate and latency with its own baseline; open or resolve alerts."""
    res = resources(context)
    changed = await scan(res.pool, window_seconds=res.settings.anomaly_window_seconds)
    log.info("anomaly_scan.done", **changed)


@app.periodic(cron="41 * * * *", periodic_id="remove-old-jobs")
@app.task(name="relay.remove_old_jobs", pass_context=True, queueing_lock="relay.remove_old_jobs")
async def remove_old_jobs(context: procrastinate.JobContext, timestamp: int) -> None:
    """Remove finished jobs older than RELAY_JOBS_KEEP (default 7 days), hourly, with procrastinate's own task.

    The worker keeps every finished job (succeeded, failed, cancelled, aborted) until then,
    so `relay jobs shell -- list_jobs` shows what ran and how it ended.
    """
    keep_hours = max(1, math.ceil(resources(context).settings.jobs_keep_seconds / 3600))
    await builtin_tasks.remove_old_jobs(
        context, max_hours=keep_hours, remove_failed=True, remove_cancelled=True, remove_aborted=True
    )
