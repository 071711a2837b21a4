"""Tenants and their API keys (stored as SHA-256 hashes, shown once)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import psycopg

from relay.db.sql import fetch_one, queries
from relay.ids import new_id

KEY_PREFIX = "rly_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant every query of the request is scoped to, and the key or user."""

    tenant_id: str
    key_id: str | None = None
    user_id: str | None = None
    rate_limit: int | None = None  # the key's own ingest limit; None = the default
    key_prefix: str | None = None  # the key's display prefix (what the audit log names), never the key
    scopes: frozenset[str] = frozenset({"admin"})  # relay/api/scopes.py; users and old keys: admin

    @property
    def subject(self) -> str:
        """What rate limits count against: the API key, or the user of an access token."""
        return self.key_id or self.user_id or self.tenant_id


def hash_key(api_key: str) -> bytes:
    """Return the stored form of an API key.

    A fast hash is right here (unlike passwords): keys are 190 random bits, so
    there is nothing to brute-force, and every request pays for the hash.
    """
    return hashlib.sha256(api_key.encode()).digest()


def new_api_key() -> str:
    """Return a fresh API key: a recognisable prefix and 32 random url-safe characters."""
    return KEY_PREFIX + secrets.token_urlsafe(24)


def api_key_row(
    name: str, api_key: str, rate_limit: int | None = None, scopes: list[str] | None = None
) -> dict[str, object]:
    """Return the parameters that store a new key (its hash and display prefix, never the key), tenant aside."""
    return {
        "id": new_id("key"),
        "name": name,
        "prefix": api_key[:12],
        "key_hash": hash_key(api_key),
        "rate_limit": rate_limit,
        "scopes": scopes or ["admin"],
    }


def create_tenant(conn: psycopg.Connection, name: str, key_name: str = "default") -> tuple[str, str]:
    """Create a tenant and its first API key in one transaction; return (tenant_id, api_key)."""
    tenant_id = new_id("ten")
    api_key = new_api_key()
    with conn.transaction():
        conn.execute(queries["create_tenant"], {"id": tenant_id, "name": name})
        conn.execute(queries["insert_api_key"], {**api_key_row(key_name, api_key), "tenant_id": tenant_id})
    return tenant_id, api_key


async def authenticate(conn: psycopg.AsyncConnection, api_key: str) -> Principal | None:
    """Return the principal of a live key, or None for an unknown or revoked one."""
    row = await fetch_one(conn, "authenticate_api_key", {"key_hash": hash_key(api_key)})
    if row is None:
        return None
    return Principal(
        tenant_id=row["tenant_id"], key_id=row["id"], rate_limit=row["rate_limit"],
        key_prefix=row["prefix"], scopes=frozenset(row["scopes"]),
    )
