"""Create databases on a server: the embedded default, and the fresh ones bench and tests use."""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from relay.db.sql import queries


def server_version(conn: psycopg.Connection) -> str:
    """Return the server's version string (for reports)."""
    row = conn.cursor(row_factory=dict_row).execute(queries["server_version"]).fetchone()
    return row["server_version"] if row else "unknown"


def database_url(server_url: str, name: str) -> str:
    """Return `server_url` pointed at database `name`."""
    return psycopg.conninfo.make_conninfo(server_url, dbname=name)


def create_database(server_url: str, name: str, *, fresh: bool = False) -> str:
    """Create database `name` (dropping it first when `fresh`) unless it exists; return its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        if fresh:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if fresh or not conn.execute(queries["database_exists"], {"name": name}).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """Drop database `name`, disconnecting whoever still uses it."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
