"""Dashboard sessions: a random token in a signed, HttpOnly, SameSite cookie; its hash in the database."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from psycopg import AsyncConnection

from relay.db.accounts import Account
from relay.db.audit import Actor, record
from relay.db.sql import fetch_one, queries
from relay.ids import new_id
from relay.tokens import hash_token

COOKIE = "relay_session"
COOKIE_PATH = "/ui"
SIGNING_KEY_NAME = "dashboard"  # in relay.signing_keys: shared by every API process, so any of them reads the cookie


@dataclass(frozen=True)
class SessionUser:
    """Who a dashboard session belongs to."""

    tenant_id: str
    user_id: str
    email: str
    tenant_name: str


def sign(token: str, key: bytes) -> str:
    """Return the cookie value for a session token: the token and its HMAC."""
    mac = hmac.new(key, token.encode(), hashlib.sha256).hexdigest()
    return f"{token}.{mac}"


def unsign(value: str, key: bytes) -> str | None:
    """Return the token of a cookie value whose signature is right, else None (no database read for forgeries)."""
    token, _, mac = value.rpartition(".")
    if not token or len(value) > 256:
        return None
    expected = hmac.new(key, token.encode(), hashlib.sha256).hexdigest()
    return token if hmac.compare_digest(mac, expected) else None


async def start_session(conn: AsyncConnection, account: Account, ttl_seconds: float) -> str:
    """Store a new session for `account` and return its token (for the cookie, never stored as is)."""
    token = secrets.token_urlsafe(32)
    await conn.execute(
        queries["insert_dashboard_session"],
        {"id": new_id("ses"), "tenant_id": account.tenant_id, "user_id": account.user_id,
         "token_hash": hash_token(token), "ttl": ttl_seconds},
    )
    return token


async def session_user(conn: AsyncConnection, token: str) -> SessionUser | None:
    """Return the user of an open session, or None for an unknown, expired or ended one."""
    row = await fetch_one(conn, "dashboard_session_user", {"token_hash": hash_token(token)})
    return SessionUser(row["tenant_id"], row["user_id"], row["email"], row["tenant_name"]) if row else None


async def end_session(conn: AsyncConnection, token: str, address: str | None = None) -> None:
    """End a session (audited as `session.ended`): every API process refuses it from the next request on."""
    async with conn.transaction():
        ended = await fetch_one(conn, "end_dashboard_session", {"token_hash": hash_token(token)})
        if ended is not None:
            await record(conn, tenant_id=ended["tenant_id"], actor=Actor("user", ended["user_id"], address),
                         action="session.ended", target_type="user", target_id=ended["user_id"],
                         details={"session_id": ended["id"], "via": "dashboard"})
