"""procrastinate's schema under `relay migrate`: recorded on a fresh install, detected and upgraded on an old one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import procrastinate
import psycopg
import pytest
from structlog.testing import capture_logs

from relay.db.migrate import (
    PROCRASTINATE_BASELINE,
    detect_procrastinate_migrations,
    migrate,
    migration_files,
    procrastinate_migration_files,
)
from relay.db.sql import queries
from tests.migration.conftest import OLDEST_PROCRASTINATE_SCHEMA, SCHEMA_FACTS

SHIPPED = [path.name for path in procrastinate_migration_files()]
# Released after 3.0 (file names start with the release): what upgrading the oldest supported schema runs.
AFTER_OLDEST = [name for name in SHIPPED if name[:8] > PROCRASTINATE_BASELINE]
UP_TO_OLDEST = [name for name in SHIPPED if name not in AFTER_OLDEST]


def make_old_relay_database(url: str) -> None:
    """Leave `url` as an older `relay migrate` did: Relay's migrations recorded, procrastinate 3.0.2's schema.sql
    run, and no relay.procrastinate_migrations."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(queries["create_migrations_table"])
        conn.execute("DROP TABLE relay.procrastinate_migrations")
        for version, path in migration_files():
            conn.execute(path.read_text())
            conn.execute(queries["record_migration"], {"version": version, "name": path.name})
        conn.execute(OLDEST_PROCRASTINATE_SCHEMA.read_text())


def recorded(url: str) -> dict[str, str]:
    """Return {migration file name: source} from relay.procrastinate_migrations."""
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT name, source FROM relay.procrastinate_migrations").fetchall())


def schema_facts(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Return the catalog facts of tests/migration/schema_facts.sql, by query name."""
    with psycopg.connect(url) as conn:
        return {name: conn.execute(query).fetchall() for name, query in SCHEMA_FACTS.items()}


def test_a_fresh_database_gets_the_current_schema_with_every_shipped_migration_recorded(new_database) -> None:
    url = new_database()
    relay_files = [path.name for _, path in migration_files()]
    assert migrate(url) == [*relay_files, "procrastinate schema"]
    assert recorded(url) == {name: "schema" for name in SHIPPED}
    assert migrate(url) == []


def test_an_old_relay_database_is_upgraded_to_the_schema_of_a_fresh_install(new_database) -> None:
    assert AFTER_OLDEST, "the installed procrastinate ships nothing after 3.0: this test would upgrade nothing"
    old, fresh = new_database(), new_database()
    make_old_relay_database(old)
    with capture_logs() as logs:
        applied = migrate(old)
    assert applied == [f"procrastinate {name}" for name in AFTER_OLDEST]
    assert [(entry["event"], entry["latest"]) for entry in logs] == [
        ("migrate.procrastinate_detected", UP_TO_OLDEST[-1])
    ]
    assert recorded(old) == {name: "applied" if name in AFTER_OLDEST else "detected" for name in SHIPPED}

    migrate(fresh)
    upgraded, installed = schema_facts(old), schema_facts(fresh)
    for fact in SCHEMA_FACTS:
        assert upgraded[fact] == installed[fact], f"procrastinate {fact} differ from a fresh install"
    assert all(installed.values()), "a fact query found nothing: it no longer looks at procrastinate's objects"

    assert migrate(old) == []


def test_procrastinate_defers_runs_and_retries_jobs_on_an_upgraded_database(new_database) -> None:
    url = new_database()
    make_old_relay_database(url)
    migrate(url)
    outcome = asyncio.run(exercise_procrastinate(url))
    assert outcome["statuses"] == {"probe": "succeeded", "flaky": "succeeded", "tick": "todo"}
    assert outcome["probe_again"] == "AlreadyEnqueued" and outcome["tick_again"] is None
    assert outcome["calls"] == [1, "flaky", "flaky"]
    # 'retried' is the event 3.4's post migration makes the status trigger write for a failed -> todo move.
    assert "retried" in outcome["flaky_events"]


async def exercise_procrastinate(url: str) -> dict[str, Any]:
    """Defer (single, locked, periodic), run, fail and retry jobs with procrastinate's own app on `url`."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
    calls: list[object] = []

    @app.task(name="probe", queueing_lock="probe")
    async def probe(n: int) -> None:
        calls.append(n)

    @app.task(name="flaky")
    async def flaky() -> None:
        calls.append("flaky")
        if calls.count("flaky") == 1:
            raise RuntimeError("the first run fails")

    @app.task(name="tick", queue="periodic")
    async def tick(timestamp: int) -> None:
        calls.append(timestamp)

    async with app.open_async():
        await probe.defer_async(n=1)
        try:
            await probe.defer_async(n=2)
            probe_again = "deferred"
        except procrastinate.exceptions.AlreadyEnqueued:
            probe_again = "AlreadyEnqueued"
        flaky_id = await flaky.defer_async()
        timestamp = int(datetime.now(UTC).timestamp())
        ticks = tick.configure(task_kwargs={"timestamp": timestamp})
        await ticks.job_manager.defer_periodic_job(job=ticks.job, periodic_id="every-minute", defer_timestamp=timestamp)
        tick_again = await ticks.job_manager.defer_periodic_job(
            job=ticks.job, periodic_id="every-minute", defer_timestamp=timestamp
        )

        await app.run_worker_async(queues=["default"], wait=False, install_signal_handlers=False)
        await app.job_manager.retry_job_by_id_async(flaky_id, retry_at=datetime.now(UTC))
        await app.run_worker_async(queues=["default"], wait=False, install_signal_handlers=False)

        jobs = await app.job_manager.list_jobs_async()
        flaky_events = await app.connector.execute_query_all_async(
            "SELECT type::text FROM procrastinate_events WHERE job_id = %(job_id)s ORDER BY id", job_id=flaky_id
        )
    return {
        "statuses": {job.task_name: job.status for job in jobs},
        "probe_again": probe_again,
        "tick_again": tick_again,
        "calls": calls,
        "flaky_events": [row["type"] for row in flaky_events],
    }


def test_detection_follows_the_schema_through_each_migration_since_the_oldest(new_database) -> None:
    """Migrations run one by one on 3.0.2's schema stand for the schema.sql of each later release."""
    url = new_database()
    paths = {path.name: path for path in procrastinate_migration_files()}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(OLDEST_PROCRASTINATE_SCHEMA.read_text())
        assert detect_procrastinate_migrations(conn, SHIPPED) == UP_TO_OLDEST
        for count, name in enumerate(AFTER_OLDEST, start=1):
            conn.execute(paths[name].read_text())
            assert detect_procrastinate_migrations(conn, SHIPPED) == UP_TO_OLDEST + AFTER_OLDEST[:count], name


def test_every_shipped_migration_since_3_0_has_a_catalog_marker(new_database) -> None:
    """A procrastinate upgrade that ships a migration fails here until sql/queries/migrations.sql can detect it."""
    with psycopg.connect(new_database()) as conn:
        markers = [row[0] for row in conn.execute(queries["procrastinate_schema_markers"])]
    assert markers == [name for name in SHIPPED if name >= PROCRASTINATE_BASELINE]


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ("ALTER TABLE procrastinate_jobs DROP COLUMN abort_requested CASCADE", "older than 03.00.00"),
        # 3.4's pre migration on a 3.0 schema: no release has it without 3.1 to 3.3.
        ("03.04.00_01_pre_add_retry_failed_job_procedure.sql", "matches no release"),
    ],
)
def test_a_schema_matching_no_release_is_refused(new_database: Callable[[], str], tamper: str, message: str) -> None:
    url = new_database()
    paths = {path.name: path for path in procrastinate_migration_files()}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(OLDEST_PROCRASTINATE_SCHEMA.read_text())
        conn.execute(paths[tamper].read_text() if tamper in paths else tamper)
    with pytest.raises(RuntimeError, match=message):
        migrate(url)
    assert recorded(url) == {}


def test_concurrent_runs_apply_everything_once(new_database) -> None:
    url = new_database()
    make_old_relay_database(url)
    results: list[list[str]] = []
    runners = [threading.Thread(target=lambda: results.append(migrate(url))) for _ in range(3)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    assert sorted(results, key=len) == [[], [], [f"procrastinate {name}" for name in AFTER_OLDEST]]
