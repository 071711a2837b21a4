"""The async connection pool every process shares its database work through."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool


async def open_pool(conninfo: str, *, min_size: int = 2, max_size: int = 8, name: str = "relay") -> AsyncConnectionPool:
    """Open an autocommit pool; one statement is one transaction unless a caller opens one."""
    pool = AsyncConnectionPool(
        conninfo,
        min_size=min(min_size, max_size),
        max_size=max_size,
        kwargs={"autocommit": True, "application_name": name},
        open=False,
        name=name,
    )
    await pool.open(wait=True, timeout=30)
    return pool
