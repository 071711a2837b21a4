"""Apply `sql/migrations/NNNN_*.sql` in order, once each, and procrastinate's schema."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
from procrastinate.schema import SchemaManager

from relay.db.sql import queries, sql_dir

_FILE = re.compile(r"^(\d{4})_[\w-]+\.sql$")
# Any constant works; it only has to be the same in every process that migrates.
_LOCK_KEY = 7_240_611


def migration_files(folder: Path | None = None) -> list[tuple[int, Path]]:
    """Return (version, path) for every migration file, in order."""
    folder = folder or sql_dir() / "migrations"
    found = []
    for path in folder.iterdir():
        match = _FILE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_version() -> int:
    """Return the version the code expects the database to be at."""
    return migration_files()[-1][0]


def migrate(conninfo: str) -> list[str]:
    """Bring the database up to date and return the names of the migrations applied now.

    Safe to run concurrently (an advisory lock serialises runners) and again
    (applied versions are recorded in relay.schema_migrations).
    """
    applied_now = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(queries["create_migrations_table"])
            done = {row[0] for row in conn.execute(queries["applied_migrations"])}
            for version, path in migration_files():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text())
                    conn.execute(queries["record_migration"], {"version": version, "name": path.name})
                applied_now.append(path.name)
            installed = conn.execute(queries["procrastinate_installed"]).fetchone()
            if installed and not installed[0]:
                with conn.transaction():
                    conn.execute(SchemaManager.get_schema())
                applied_now.append("procrastinate schema")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
