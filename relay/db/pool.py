"""The async connection pool every process shares its database work through."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool


async def open_pool(
    conninfo: str,
    *,
    min_size: int = 2,
    max_size: int = 8,
    name: str = "relay",
    autocommit: bool = True,
    wait: bool = True,
    timeout: float = 30.0,
) -> AsyncConnectionPool:
    """Open a pool; Relay's are autocommit (one statement is one transaction unless a caller opens one).

    procrastinate's pool must not be: it opens its listener with `autocommit=True` on top of the pool's kwargs.
    """
    kwargs: dict[str, object] = {"application_name": name}
    if autocommit:
        kwargs["autocommit"] = True
    pool = AsyncConnectionPool(
        conninfo,
        min_size=min(min_size, max_size),
        max_size=max_size,
        kwargs=kwargs,
        open=False,
        name=name,
        timeout=timeout,
    )
    await pool.open(wait=wait, timeout=timeout)
    return pool
