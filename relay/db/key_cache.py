"""API keys (and users' session cutoffs) remembered by an API process: the hot path authenticates without a round trip.

A revocation reaches every API process at once: `revoke_api_key` sends NOTIFY
`relay_api_keys` with the key's id in the revoking transaction, and each process's
listener drops that key as the notification arrives (a few milliseconds). While the
listener is not connected the cache is not used at all, so a revocation can never be
missed; entries also expire after a minute (which keeps `last_used_at` fresh, as
authentication refreshes it at most once a minute).

The same listener follows `relay_sessions` for SessionCutoffs: a password change refuses
the user's older access tokens on every process the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import psycopg
import structlog

from relay.db.tenants import Principal

log = structlog.get_logger("relay.api")

CHANNEL = "relay_api_keys"
SESSIONS_CHANNEL = "relay_sessions"  # a user id: that user's access tokens issued before now are refused
TTL_SECONDS = 60.0
MAX_KEYS = 10_000
MAX_USERS = 10_000


K = TypeVar("K")
V = TypeVar("V")


class _Expiring(Generic[K, V]):
    """A bounded map whose entries expire `ttl` seconds after they were stored (least recently stored out first)."""

    def __init__(self, ttl: float, limit: int) -> None:
        self.ttl, self.limit = ttl, limit
        self.entries: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        value, stored_at = entry
        if time.monotonic() - stored_at > self.ttl:
            del self.entries[key]
            return None
        return value

    def put(self, key: K, value: V) -> None:
        self.entries[key] = (value, time.monotonic())
        self.entries.move_to_end(key)
        while len(self.entries) > self.limit:
            self.entries.popitem(last=False)


@dataclass(frozen=True, slots=True)
class Cutoff:
    """A user's sessions_valid_after as seconds since the epoch: None when no change ever ended the sessions."""

    at: float | None


class SessionCutoffs:
    """User id → the moment before which that user's access tokens are refused (a password change).

    Consulted only while the listener follows SESSIONS_CHANNEL: a password change sends the
    user's id in its transaction, and the entry is dropped as the notification arrives, so
    every API process refuses the old tokens within milliseconds. A database read racing
    with a notification is not stored (the generation moved on), so it cannot bring back
    what the notification dropped.
    """

    def __init__(self, ttl_seconds: float = TTL_SECONDS, max_users: int = MAX_USERS) -> None:
        self._entries: _Expiring[str, Cutoff] = _Expiring(ttl_seconds, max_users)
        self.listening = False
        self.generation = 0  # moves on with every drop: reads begun before it are not stored

    def get(self, user_id: str) -> Cutoff | None:
        """Return the user's cached cutoff, or None (ask the database)."""
        return self._entries.get(user_id) if self.listening else None

    def put(self, user_id: str, cutoff: Cutoff, generation: int) -> None:
        """Remember what the database said, unless a notification came since the read began (`generation`)."""
        if self.listening and generation == self.generation:
            self._entries.put(user_id, cutoff)

    def forget(self, user_id: str) -> None:
        self.generation += 1
        self._entries.entries.pop(user_id, None)

    def clear(self) -> None:
        self.generation += 1
        self._entries.entries.clear()


class ApiKeyCache:
    """Key hash → principal, for keys known to be live."""

    def __init__(self, ttl_seconds: float = TTL_SECONDS, max_keys: int = MAX_KEYS) -> None:
        self._entries: _Expiring[bytes, Principal] = _Expiring(ttl_seconds, max_keys)
        self.listening = False  # only then is the cache consulted
        self.hits = 0
        self.sessions = SessionCutoffs(ttl_seconds)  # followed by the same listener

    def get(self, key_hash: bytes) -> Principal | None:
        """Return the principal of a cached live key, or None (ask the database)."""
        principal = self._entries.get(key_hash) if self.listening else None
        if principal is not None:
            self.hits += 1
        return principal

    def put(self, key_hash: bytes, principal: Principal) -> None:
        if self.listening:
            self._entries.put(key_hash, principal)

    def forget_key(self, key_id: str) -> None:
        """Drop a revoked key."""
        entries = self._entries.entries
        for key_hash in [h for h, (p, _) in entries.items() if p.key_id == key_id]:
            del entries[key_hash]

    def clear(self) -> None:
        self._entries.entries.clear()

    async def listen(self, conninfo: str) -> None:
        """Follow revocations until cancelled; reconnect after a lost connection (the cache is off meanwhile)."""
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await conn.execute(f"LISTEN {SESSIONS_CHANNEL}")
                    self.clear()  # what was revoked while no one listened is forgotten with the rest
                    self.sessions.clear()
                    self.listening = self.sessions.listening = True
                    delay = 0.5
                    async for note in conn.notifies():
                        if note.channel == SESSIONS_CHANNEL:
                            self.sessions.forget(note.payload)
                        else:
                            self.forget_key(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database went away; keep trying
                log.warning("api.key_cache.listener_lost", error=type(exc).__name__, retry_in=delay)
            finally:
                self.listening = self.sessions.listening = False
                self.clear()
                self.sessions.clear()
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
