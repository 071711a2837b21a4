"""procrastinate jobs on a real database: auto-disable of endpoints failing too long (F15)."""

from __future__ import annotations

import asyncio

from relay.db.pool import open_pool
from relay.jobs import app, disable_failing_endpoints
from tests.integration.test_ingest import add_endpoint, event, ingest


def test_periodic_jobs_are_registered() -> None:
    periodic = {task.task.name: task.cron for task in app.periodic_registry.periodic_tasks.values()}
    assert periodic["relay.auto_disable"] == "*/5 * * * *"
    assert "relay.requeue_operations" in periodic
    assert periodic["relay.anomaly_scan"] == "*/5 * * * *" and periodic["relay.retention"] == "17 * * * *"


def test_auto_disable_disables_only_endpoints_failing_long_enough(conninfo, db, tenant) -> None:
    tenant_id, _ = tenant
    long_failing = add_endpoint(db, tenant_id)
    recently_failing = add_endpoint(db, tenant_id)
    healthy = add_endpoint(db, tenant_id)
    db.execute("UPDATE relay.endpoints SET failing_since = now() - interval '6 days' WHERE id = %s", (long_failing,))
    db.execute("UPDATE relay.endpoints SET failing_since = now() - interval '1 hour' WHERE id = %s", (recently_failing,))
    [accepted] = ingest(conninfo, tenant_id, [event("a.b")])

    async def run() -> int:
        pool = await open_pool(conninfo, max_size=2)
        try:
            return await disable_failing_endpoints(pool, after_seconds=5 * 86400)
        finally:
            await pool.close()

    assert asyncio.run(run()) >= 1
    rows = {
        row[0]: (row[1], row[2])
        for row in db.execute(
            "SELECT id, enabled, disabled_reason FROM relay.endpoints WHERE id = ANY(%s)",
            ([long_failing, recently_failing, healthy],),
        )
    }
    assert rows[long_failing] == (False, "failing")
    assert rows[recently_failing] == (True, None) and rows[healthy] == (True, None)
    states = dict(db.execute(
        "SELECT endpoint_id, state::text FROM relay.deliveries WHERE event_id = %s", (accepted.id,)
    ).fetchall())
    assert states[long_failing] == "dead" and states[healthy] == "pending"


def test_retention_removes_old_finished_rows_and_keeps_the_rest(conninfo, db, tenant) -> None:
    from relay.db.retention import purge

    tenant_id, _ = tenant
    endpoint = add_endpoint(db, tenant_id)
    old_done, old_open, recent = ingest(conninfo, tenant_id, [event("a.b"), event("a.b"), event("a.b")])
    db.execute(
        "INSERT INTO relay.attempts (id, tenant_id, delivery_id, event_id, endpoint_id, attempt_number, started_at,"
        " duration_ms, outcome) SELECT 'att_' || d.id, d.tenant_id, d.id, d.event_id, d.endpoint_id, 1,"
        " now() - interval '40 days', 5, 'succeeded' FROM relay.deliveries d WHERE d.event_id = %s",
        (old_done.id,),
    )
    db.execute("UPDATE relay.deliveries SET state = 'succeeded', next_attempt_at = NULL,"
               " completed_at = now() - interval '40 days' WHERE event_id = %s", (old_done.id,))
    db.execute("UPDATE relay.events SET created_at = now() - interval '40 days' WHERE id = ANY(%s)",
               ([old_done.id, old_open.id],))

    async def run() -> dict[str, int]:
        pool = await open_pool(conninfo, max_size=2)
        try:
            return await purge(pool, older_than_seconds=30 * 86400, batch=1)  # batch of one: the loop must continue
        finally:
            await pool.close()

    removed = asyncio.run(run())
    assert removed["attempts"] >= 1 and removed["deliveries"] >= 1 and removed["events"] >= 1
    remaining = {row[0] for row in db.execute("SELECT id FROM relay.events WHERE tenant_id = %s", (tenant_id,))}
    assert remaining == {old_open.id, recent.id}  # the old event with an open delivery stays
    assert db.execute("SELECT count(*) FROM relay.deliveries WHERE event_id = %s", (old_done.id,)).fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM relay.deliveries WHERE endpoint_id = %s", (endpoint,)).fetchone()[0] == 2


def test_finished_jobs_are_kept_for_relay_jobs_keep_then_removed_by_procrastinates_task(conninfo, db) -> None:
    from types import SimpleNamespace

    from relay.jobs import Resources, remove_old_jobs, use_database
    from relay.settings import Settings

    assert "relay.remove_old_jobs" in {task.task.name for task in app.periodic_registry.periodic_tasks.values()}
    db.execute("DELETE FROM procrastinate_jobs WHERE queue_name = 'keep-test'")

    def job(status: str, days_ago: float) -> int:
        job_id = db.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status) VALUES"
            " ('keep-test', 'relay.prune_rate_counters', '{}', 'todo') RETURNING id"
        ).fetchone()[0]
        if status != "todo":
            db.execute("UPDATE procrastinate_jobs SET status = %s WHERE id = %s", (status, job_id))
        db.execute("UPDATE procrastinate_events SET at = now() - make_interval(secs => %s) WHERE job_id = %s",
                   (days_ago * 86400, job_id))
        return job_id

    old = {job(status, 8) for status in ("succeeded", "failed", "cancelled")}
    recent = {job("succeeded", 6), job("failed", 6), job("todo", 30)}

    async def run() -> None:
        jobs_app = use_database(conninfo)
        async with jobs_app.open_async():
            # What the task reads of its context (a whole JobContext needs a running job).
            context = SimpleNamespace(
                app=jobs_app, additional_context={"relay": Resources(pool=None, settings=Settings(), sender=None)}
            )
            await remove_old_jobs(context, timestamp=0)

    asyncio.run(run())
    left = {row[0] for row in db.execute("SELECT id FROM procrastinate_jobs WHERE queue_name = 'keep-test'")}
    assert left == recent and not (old & left)  # the default keeps 7 days of finished jobs, of every ending
