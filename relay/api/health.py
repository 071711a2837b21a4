"""`/health` (liveness) and `/health/ready` (database, schema version, queue lag), without authentication."""

from __future__ import annotations

import msgspec
import psycopg
from litestar import Request, Response, get
from psycopg_pool import PoolTimeout

from relay import __version__
from relay.db.migrate import latest_version
from relay.db.sql import fetch_one


class Health(msgspec.Struct):
    """The process is up."""

    status: str
    version: str


class Readiness(msgspec.Struct):
    """Whether this process can do its work, and if not, why."""

    status: str
    schema_version: int | None
    expected_schema_version: int
    queue_lag_seconds: float | None
    reasons: list[str]


@get("/health", operation_id="health", tags=["health"])
async def health() -> Health:
    """Answer while the process is alive (no database check: see /health/ready)."""
    return Health(status="ok", version=__version__)


@get("/health/ready", operation_id="ready", tags=["health"])
async def ready(request: Request) -> Response[Readiness]:
    """200 when the database answers, the schema is current and the queue is not lagging; 503 with reasons otherwise."""
    expected = latest_version()
    reasons: list[str] = []
    version: int | None = None
    lag: float | None = None
    try:
        async with request.app.state.pool.connection(timeout=2) as conn:
            table = await fetch_one(conn, "migrations_table_exists", {})
            if table and table["present"]:
                row = await fetch_one(conn, "schema_version", {})
                version = row["version"] if row else None
            if version == expected:
                queue = await fetch_one(conn, "queue_lag", {})
                lag = float(queue["queue_lag_seconds"]) if queue else None
    except (psycopg.Error, PoolTimeout, OSError):
        reasons.append("database unreachable")
    else:
        if version != expected:
            reasons.append(f"schema version {version}, expected {expected}: run `relay migrate`")
        limit = request.app.state.settings.ready_max_queue_lag_seconds
        if lag is not None and lag > limit:
            reasons.append(f"queue lag {lag:.0f} s is over {limit:g} s: add workers or check them")
    body = Readiness("ready" if not reasons else "not_ready", version, expected, lag, reasons)
    return Response(body, status_code=200 if not reasons else 503)
