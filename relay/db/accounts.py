"""Users and their refresh tokens: register, log in (throttled), change the password, rotate, revoke.

Each of these writes its audit row (relay/db/audit.py) in the transaction of the change.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from relay.db import throttle
from relay.db.audit import Actor, record
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


class WrongPassword(Exception):
    """The current password given for a change is not the user's."""


class PasswordChangedMeanwhile(Exception):
    """Another change of the same user's password committed between the check and this one."""


class _EmailTaken(Exception):
    pass


@dataclass(frozen=True)
class PasswordChanged:
    """A changed password: the one session that continues (a new refresh token) and the new cutoff."""

    account: Account
    refresh_token: str
    sessions_valid_after: float  # seconds since the epoch; access tokens issued before it are refused


async def register(
    conn: AsyncConnection, email: str, password: str, tenant_name: str, *, address: str | None = None,
    via: str = "api",
) -> Account | None:
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
            await record(conn, tenant_id=tenant_id, actor=Actor("user", row["id"], address), action="signup",
                         target_type="user", target_id=row["id"], details={"email": email, "via": via})
    except _EmailTaken:
        return None
    return Account(row["id"], row["tenant_id"], row["email"])


async def log_in(
    conn: AsyncConnection, email: str, password: str, *, limits: throttle.Limits, address: str | None, via: str
) -> Account | None:
    """Check a login against the throttle, then the password; record the outcome; None for a wrong one.

    The password check takes as long whether or not the email has an account.

    Raises throttle.Throttled — before the password is looked at, and alike for every email —
    while the account or the address is blocked. A failure is counted (and may start a
    block) and audited as `login.failed`; a success resets the account's count and is
    audited as `login.succeeded`. Run it in a transaction with what the login starts (a
    refresh token, a dashboard session), so that its audit row commits with it.
    """
    names = throttle.subjects(email, address)
    await throttle.check(conn, names)
    if not email or not password:  # not a guess (no account has an empty email or password): not counted
        return None
    row = await fetch_one(conn, "user_by_email", {"email": email})
    if check_password(row["password_hash"] if row else None, password) and row is not None:
        account = Account(row["id"], row["tenant_id"], row["email"])
        await throttle.forget_failures(conn, email)
        await record(conn, tenant_id=account.tenant_id, actor=Actor("user", account.user_id, address),
                     action="login.succeeded", target_type="user", target_id=account.user_id,
                     details={"email": email, "via": via})
        return account
    await count_failed_login(conn, limits, names, email=email, user=row, address=address, via=via)
    return None


async def count_failed_login(
    conn: AsyncConnection, limits: throttle.Limits, names: list[str], *, email: str | None,
    user: dict[str, Any] | None, address: str | None, via: str, audit_failure: bool = True,
) -> None:
    """Count a failed attempt against `names` and audit it (`login.failed`, and `login.throttled` for a new block).

    The tenant of the rows is the user's, or none when the email belongs to no account.
    The password tried never appears anywhere. A refused refresh token (`audit_failure`
    False) is counted, and audited only when it starts a block.
    """
    blocks = await throttle.count_failure(conn, limits, names)
    tenant_id = user["tenant_id"] if user else None
    target_id = user["id"] if user else None
    actor = Actor.anonymous(address)
    base = {"email": email, "via": via} if email is not None else {"via": via}
    if audit_failure:
        await record(conn, tenant_id=tenant_id, actor=actor, action="login.failed",
                     target_type="user" if target_id else None, target_id=target_id, details=base)
    for block in blocks:
        await record(conn, tenant_id=tenant_id, actor=actor, action="login.throttled",
                     target_type="user" if target_id else None, target_id=target_id,
                     details={**base, "blocked": block.kind, "seconds": block.seconds, "strike": block.strike})


async def change_password(
    conn: AsyncConnection, account: Account, current_password: str, new_password: str, *,
    limits: throttle.Limits, address: str | None, refresh_ttl_seconds: float,
) -> PasswordChanged:
    """Change a user's password and end every session of the user; return the one session that continues.

    Throttled like a login (raises throttle.Throttled before looking at the password); a
    wrong current password counts as a failed login and raises WrongPassword. In one
    transaction: the new hash, the cutoff that refuses older access tokens, every refresh
    token and dashboard session of the user revoked, the notification that tells every API
    process, the audit row, and a new refresh token for the caller.
    """
    row = await fetch_one(conn, "user_with_password", {"tenant_id": account.tenant_id, "id": account.user_id})
    if row is None:
        raise WrongPassword
    account = Account(row["id"], row["tenant_id"], row["email"])
    names = throttle.subjects(row["email"], address)
    await throttle.check(conn, names)
    if not check_password(row["password_hash"], current_password):
        async with conn.transaction():
            await count_failed_login(conn, limits, names, email=row["email"], user=row, address=address,
                                     via="password_change")
        raise WrongPassword
    new_hash = hash_password(new_password)  # slow on purpose: before the transaction, which then stays short
    who = {"tenant_id": account.tenant_id, "user_id": account.user_id}
    async with conn.transaction():
        changed = await fetch_one(conn, "change_password", {
            "tenant_id": account.tenant_id, "id": account.user_id, "old_hash": row["password_hash"],
            "new_hash": new_hash,
        })
        if changed is None:
            raise PasswordChangedMeanwhile
        refresh_tokens = (await conn.execute(queries["revoke_user_refresh_tokens"], who)).rowcount
        dashboard_sessions = (await conn.execute(queries["end_user_dashboard_sessions"], who)).rowcount
        await conn.execute(queries["notify_sessions_ended"], {"user_id": account.user_id})
        await record(conn, tenant_id=account.tenant_id, actor=Actor("user", account.user_id, address),
                     action="password.changed", target_type="user", target_id=account.user_id,
                     details={"refresh_tokens_revoked": refresh_tokens, "dashboard_sessions_ended": dashboard_sessions})
        await throttle.forget_failures(conn, row["email"])
        refresh_token = await issue_refresh_token(conn, account, refresh_ttl_seconds)
    return PasswordChanged(account, refresh_token, float(changed["sessions_valid_after"]))


async def sessions_valid_after(conn: AsyncConnection, user_id: str) -> float | None:
    """Return the moment (seconds since the epoch) before which the user's access tokens are refused.

    None when no password change ever set one; infinity when the user no longer exists.
    """
    row = await fetch_one(conn, "sessions_valid_after", {"user_id": user_id})
    if row is None:
        return float("inf")
    return None if row["sessions_valid_after"] is None else float(row["sessions_valid_after"])


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


async def rotate_refresh_token(
    conn: AsyncConnection, token: str, ttl_seconds: float, address: str | None = None
) -> tuple[Account, str] | None:
    """Spend a refresh token and return its account with the next token of its family.

    Raises RefreshReused (after revoking the family, audited as `token_family.revoked`) when
    the token was already spent: someone else holds a copy. Returns None for an unknown,
    expired or revoked token.
    """
    token_hash = hash_token(token)
    async with conn.transaction():
        spent = await fetch_one(conn, "use_refresh_token", {"token_hash": token_hash})
        if spent is None:
            known = await fetch_one(conn, "refresh_token_by_hash", {"token_hash": token_hash})
            if known is not None and known["used_at"] is not None:
                await conn.execute(queries["revoke_token_family"], {"family_id": known["family_id"]})
                await record(conn, tenant_id=known["tenant_id"], actor=Actor.anonymous(address),
                             action="token_family.revoked", target_type="user", target_id=known["user_id"],
                             details={"family_id": known["family_id"], "reason": "spent refresh token used again"})
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


async def revoke_refresh_family(conn: AsyncConnection, token: str, address: str | None = None) -> bool:
    """Revoke every token descended from the same login as `token` (audited as `logout`); tell whether it was known."""
    async with conn.transaction():
        known = await fetch_one(conn, "refresh_token_by_hash", {"token_hash": hash_token(token)})
        if known is None:
            return False
        await conn.execute(queries["revoke_token_family"], {"family_id": known["family_id"]})
        await record(conn, tenant_id=known["tenant_id"], actor=Actor("user", known["user_id"], address),
                     action="logout", target_type="user", target_id=known["user_id"],
                     details={"family_id": known["family_id"]})
    return True


async def signing_key(conn: AsyncConnection, name: str = "access_tokens") -> bytes:
    """Return the shared signing key `name` (access tokens, dashboard cookies), making it on first use."""
    row = await fetch_one(conn, "signing_key", {"name": name, "secret": secrets.token_bytes(32)})
    assert row is not None
    return bytes(row["secret"])
