"""API keys remembered by an API process, so the hot path authenticates without a database round trip.

A revocation reaches every API process at once: `revoke_api_key` sends NOTIFY
`relay_api_keys` with the key's id in the revoking transaction, and each process's
listener drops that key as the notification arrives (a few milliseconds). While the
listener is not connected the cache is not used at all, so a revocation can never be
missed; entries also expire after a minute (which keeps `last_used_at` fresh, as
authentication refreshes it at most once a minute).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator

import psycopg
import structlog

from relay.db.tenants import Principal

log = structlog.get_logger("relay.api")

CHANNEL = "relay_api_keys"
TTL_SECONDS = 60.0
MAX_KEYS = 10_000


class ApiKeyCache:
    """Key hash → principal, for keys known to be live."""

    def __init__(self, ttl_seconds: float = TTL_SECONDS, max_keys: int = MAX_KEYS) -> None:
        self.ttl = ttl_seconds
        self.max_keys = max_keys
        self._entries: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()
        self.listening = False  # only then is the cache consulted
        self.hits = 0

    def get(self, key_hash: bytes) -> Principal | None:
        """Return the principal of a cached live key, or None (ask the database)."""
        if not self.listening:
            return None
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        principal, stored_at = entry
        if time.monotonic() - stored_at > self.ttl:
            del self._entries[key_hash]
            return None
        self.hits += 1
        return principal

    def put(self, key_hash: bytes, principal: Principal) -> None:
        if not self.listening:
            return
        self._entries[key_hash] = (principal, time.monotonic())
        self._entries.move_to_end(key_hash)
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)

    def forget_key(self, key_id: str) -> None:
        """Drop a revoked key."""
        for key_hash in [h for h, (p, _) in self._entries.items() if p.key_id == key_id]:
            del self._entries[key_hash]

    def clear(self) -> None:
        self._entries.clear()

    async def listen(self, conninfo: str) -> None:
        """Follow revocations until cancelled; reconnect after a lost connection (the cache is off meanwhile)."""
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.clear()  # what was revoked while no one listened is forgotten with the rest
                    self.listening = True
                    delay = 0.5
                    async for note in conn.notifies():
                        self.forget_key(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database went away; keep trying
                log.warning("api.key_cache.listener_lost", error=type(exc).__name__, retry_in=delay)
            finally:
                self.listening = False
                self.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


@contextlib.asynccontextmanager
async def following_revocations(cache: ApiKeyCache, conninfo: str) -> AsyncIterator[ApiKeyCache]:
    """Run the cache's listener for the life of the app."""
    task = asyncio.create_task(cache.listen(conninfo), name="relay-key-cache")
    try:
        yield cache
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
