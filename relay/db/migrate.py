"""Apply Relay's `sql/migrations/NNNN_*.sql` and procrastinate's schema migrations, in order, once each."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import structlog
from procrastinate.schema import SchemaManager
from psycopg.rows import dict_row

from relay.db.sql import queries, sql_dir

log = structlog.get_logger("relay.migrate")

_FILE = re.compile(r"^(\d{4})_[\w-]+\.sql$")
_PROCRASTINATE_FILE = re.compile(r"^\d{2}\.\d{2}\.\d{2}_\d{2}_\w+\.sql$")
# Relay has required procrastinate 3.0 or later since its first commit, so a procrastinate schema it
# installed without recording migrations has at least this release's; the catalog tells what came after.
PROCRASTINATE_BASELINE = "03.00.00"
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


def procrastinate_migration_files(folder: Path | None = None) -> list[Path]:
    """Return the migrations the installed procrastinate ships, in the order they apply."""
    folder = folder or Path(SchemaManager.get_migrations_path())
    # Names start with a zero-padded release (`03.01.00_01_pre_…`), so name order is release order.
    return sorted((path for path in folder.iterdir() if _PROCRASTINATE_FILE.match(path.name)), key=lambda p: p.name)


def migrate(conninfo: str) -> list[str]:
    """Bring the database up to date and return the names of the migrations applied now.

    Safe to run concurrently (an advisory lock serialises runners) and again (applied
    migrations are recorded in relay.schema_migrations and relay.procrastinate_migrations).
    """
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(queries["create_migrations_table"])
            return _apply_relay_migrations(conn) + _apply_procrastinate_migrations(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def _apply_relay_migrations(conn: psycopg.Connection) -> list[str]:
    done = {row["version"] for row in conn.cursor(row_factory=dict_row).execute(queries["applied_migrations"])}
    applied_now = []
    for version, path in migration_files():
        if version in done:
            continue
        with conn.transaction():
            conn.execute(path.read_text())
            conn.execute(queries["record_migration"], {"version": version, "name": path.name})
        applied_now.append(path.name)
    return applied_now


def _apply_procrastinate_migrations(conn: psycopg.Connection) -> list[str]:
    """Install procrastinate's schema on a new database, else run the shipped migrations it lacks.

    Pre and post migrations run back to back: `relay migrate` is one step, run before the new code starts.
    """
    shipped = procrastinate_migration_files()
    reader = conn.cursor(row_factory=dict_row)
    recorded = {row["name"] for row in reader.execute(queries["recorded_procrastinate_migrations"])}
    if not recorded:
        installed = reader.execute(queries["procrastinate_installed"]).fetchone()
        if installed and not installed["installed"]:
            # schema.sql is the shipped migrations folded together: record them all with it.
            with conn.transaction():
                conn.execute(SchemaManager.get_schema())
                _record(conn, [path.name for path in shipped], "schema")
            return ["procrastinate schema"]
        recorded = set(detect_procrastinate_migrations(conn, [path.name for path in shipped]))
        with conn.transaction():
            _record(conn, sorted(recorded), "detected")
        log.info("migrate.procrastinate_detected", latest=max(recorded), migrations=len(recorded))
    applied_now = []
    for path in shipped:
        if path.name in recorded:
            continue
        with conn.transaction():
            conn.execute(path.read_text())
            _record(conn, [path.name], "applied")
        applied_now.append(f"procrastinate {path.name}")
    return applied_now


def detect_procrastinate_migrations(conn: psycopg.Connection, shipped: list[str]) -> list[str]:
    """Return the shipped migrations an unrecorded procrastinate schema already has, read from its catalog.

    Every migration before PROCRASTINATE_BASELINE counts as present; from there on each migration
    has a catalog marker (sql/queries/migrations.sql), and the present ones must be a prefix.
    """
    present = {name: bool(found) for name, found in conn.execute(queries["procrastinate_schema_markers"])}
    marked = [name for name in shipped if name >= PROCRASTINATE_BASELINE]
    seen = [present.get(name, False) for name in marked]
    count = seen.index(False) if False in seen else len(seen)
    found = [name for name, is_present in zip(marked, seen, strict=True) if is_present]
    if not all(present.get(name) for name in marked if name.startswith(PROCRASTINATE_BASELINE)):
        raise RuntimeError(
            f"procrastinate's schema is older than {PROCRASTINATE_BASELINE} (3.x markers found: {found}):"
            " upgrade it with procrastinate 3.0's own migrations first"
        )
    if any(seen[count:]):
        raise RuntimeError(
            f"procrastinate's schema matches no release: 3.x markers found {found} are not a prefix of"
            f" {marked}; apply the missing ones by hand and record them in relay.procrastinate_migrations"
        )
    return [name for name in shipped if name < PROCRASTINATE_BASELINE] + marked[:count]


def _record(conn: psycopg.Connection, names: list[str], source: str) -> None:
    conn.execute(queries["record_procrastinate_migrations"], {"names": names, "source": source})
