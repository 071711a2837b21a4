"""`/health`: liveness, without authentication."""

from __future__ import annotations

import msgspec
from litestar import get

from relay import __version__


class Health(msgspec.Struct):
    """The process is up."""

    status: str
    version: str


@get("/health", operation_id="health", tags=["health"])
async def health() -> Health:
    """Answer while the process is alive (no database check: see readiness)."""
    return Health(status="ok", version=__version__)
