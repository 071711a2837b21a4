"""Users and their refresh tokens: register, log in, rotate, revoke."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from psycopg import AsyncConnection

from relay.db.sql import fetch_one, queries
from relay.ids import new_id
from relay.passwords import check_password, hash_password
from relay.tokens import hash_token, new_refresh_token


@dataclass(frozen=True)
class Account:
    """A user and the tenant it belongs to."""

    user_id: str
    tenant_id: str
    email: str


class RefreshReused(Exception):
    """A refresh token was presented again after it was rotated: its family is now revoked."""


class _EmailTaken(Exception):
    pass


async def register(conn: AsyncConnection, email: str, password: str, tenant_name: str) -> Account | None:
    """Create a tenant and its first user in one transaction; None (nothing stored) when the email is taken."""
    password_hash = hash_password(password)
    try:
        async with conn.transaction():
            tenant_id = new_id("ten")
            await conn.execute(queries["create_tenant"], {"id": tenant_id, "name": tenant_name})
            row = await fetch_one(
                conn,
                "insert_user",
                {"id": new_id("usr"), "tenant_id": tenant_id, "email": email, "password_hash": password_hash},
            )
            if row is None:
                raise _EmailTaken
    except _EmailTaken:
        return None
    return Account(row["id"], row["tenant_id"], row["email"])


async def authenticate_password(conn: AsyncConnection, email: str, password: str) -> Account | None:
    """Return the account when the password matches (constant time whether or not the email exists)."""
    row = await fetch_one(conn, "user_by_email", {"email": email})
    if not check_password(row["password_hash"] if row else None, password) or row is None:
        return None
    return Account(row["id"], row["tenant_id"], row["email"])


async def issue_refresh_token(
    conn: AsyncConnection, account: Account, ttl_seconds: float, family_id: str | None = None
) -> str:
    """Store a new refresh token (hashed) and return it; a login starts a new family."""
    token = new_refresh_token()
    await conn.execute(
        queries["insert_refresh_token"],
        {
            "id": new_id("rft"),
            "tenant_id": account.tenant_id,
            "user_id": account.user_id,
            "family_id": family_id or "fam_" + secrets.token_hex(12),
            "token_hash": hash_token(token),
            "ttl": ttl_seconds,
        },
    )
    return token


async def rotate_refresh_token(conn: AsyncConnection, token: str, ttl_seconds: float) -> tuple[Account, str] | None:
    """Spend a refresh token and return its account with the next token of its family.

    Raises RefreshReused (after revoking the family) when the token was already spent:
    someone else holds a copy. Returns None for an unknown, expired or revoked token.
    """
    token_hash = hash_token(token)
    async with conn.transaction():
        spent = await fetch_one(conn, "use_refresh_token", {"token_hash": token_hash})
        if spent is None:
            known = await fetch_one(conn, "refresh_token_by_hash", {"token_hash": token_hash})
            if known is not None and known["used_at"] is not None:
                await conn.execute(queries["revoke_token_family"], {"family_id": known["family_id"]})
                reused = True
            else:
                reused = False
        else:
            reused = False
            user = await fetch_one(conn, "get_user", {"tenant_id": spent["tenant_id"], "id": spent["user_id"]})
            if user is None:
                return None
            account = Account(user["id"], user["tenant_id"], user["email"])
            next_token = await issue_refresh_token(conn, account, ttl_seconds, family_id=spent["family_id"])
    if reused:
        raise RefreshReused
    if spent is None:
        return None
    return account, next_token


async def revoke_refresh_family(conn: AsyncConnection, token: str) -> bool:
    """Revoke every token descended from the same login as `token`; tell whether it was known."""
    known = await fetch_one(conn, "refresh_token_by_hash", {"token_hash": hash_token(token)})
    if known is None:
        return False
    await conn.execute(queries["revoke_token_family"], {"family_id": known["family_id"]})
    return True


async def signing_key(conn: AsyncConnection, name: str = "access_tokens") -> bytes:
    """Return the shared signing key `name` (access tokens, dashboard cookies), making it on first use."""
    row = await fetch_one(conn, "signing_key", {"name": name, "secret": secrets.token_bytes(32)})
    assert row is not None
    return bytes(row["secret"])
