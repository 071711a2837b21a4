"""Operators inspect procrastinate's jobs with `relay jobs` (issue 10, item 6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from tests.acceptance.conftest import Stack
from tests.support import REPO, wait_until

PROCRASTINATE = str(Path(sys.executable).parent / "procrastinate")


def run(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, cwd=REPO, timeout=timeout)


def relay(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "relay", *args], env)


def clean_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("RELAY_", "PG")) and key != "DATABASE_URL"}
    env.update(extra)
    return env


def test_procrastinate_cli_without_database_url_refuses_instead_of_using_libpq_defaults(conninfo: str) -> None:
    # libpq's defaults point at a real server here (the test database): before, the CLI
    # silently connected there and listed nothing. Now it must refuse and say how to set it.
    params = conninfo_to_dict(conninfo)
    libpq_defaults = {"PGHOST": str(params.get("host", "127.0.0.1")), "PGPORT": str(params.get("port", 5432)),
                      "PGUSER": str(params.get("user", "postgres")), "PGDATABASE": str(params.get("dbname", ""))}
    result = run([PROCRASTINATE, "--app=relay.jobs.app", "shell", "list_jobs"], clean_env(**libpq_defaults))
    assert result.returncode != 0, result.stdout + result.stderr
    assert "DATABASE_URL" in result.stderr and "relay jobs" in result.stderr, result.stderr


def test_relay_jobs_lists_finished_jobs_on_relays_database(stack: Stack, conninfo: str) -> None:
    env = clean_env(DATABASE_URL=conninfo)
    deferred = relay("jobs", "defer", "--ignore-already-enqueued", "relay.prune_rate_counters",
                     '{"timestamp": 0}', env=env)
    assert deferred.returncode == 0, deferred.stderr

    def finished_job_listed() -> str | None:
        listing = relay("jobs", "shell", "list_jobs", "task=relay.prune_rate_counters", "status=succeeded", env=env)
        assert listing.returncode == 0, listing.stderr
        return listing.stdout if "relay.prune_rate_counters" in listing.stdout else None

    # The worker ran it and kept it (it used to delete every successful job at once).
    listing = wait_until(finished_job_listed, timeout=90, interval=0.5, what="a succeeded job in list_jobs")
    assert "[succeeded]" in listing
    health = relay("jobs", "healthchecks", env=env)
    assert health.returncode == 0 and "DB connection: OK" in health.stdout, health.stdout + health.stderr


def test_relay_jobs_without_database_url_uses_the_embedded_database(tmp_path: Path) -> None:
    result = relay("jobs", "healthchecks", env=clean_env(RELAY_HOME=str(tmp_path / "home")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Found procrastinate_jobs table: OK" in result.stdout
    helped = relay("jobs", env=clean_env(RELAY_HOME=str(tmp_path / "home")))
    assert helped.returncode == 0 and "shell" in helped.stdout and "healthchecks" in helped.stdout
