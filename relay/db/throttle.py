"""Login throttling: failed logins counted in PostgreSQL per account and per client address.

Every API process shares the counts (the `relay.login_throttle` table). Two subjects are
counted for each failed login: `account:<sha256 of the lower-cased email>` — the same for
an email that has no account, so a block says nothing about whether one exists — and
`address:<client address>`. An account may fail RELAY_LOGIN_MAX_FAILURES times within
RELAY_LOGIN_WINDOW; an address ADDRESS_FACTOR times as many (one address tries many
emails; many users can share one address behind a NAT). The failure that reaches a limit
starts a block: until it ends, every login for that account, or from that address, is
answered 429 before any password is looked at (the right password too, or guessing would
go on). The first block lasts one window; each later one (a strike) twice the one before,
up to MAX_BLOCK_SECONDS; strikes are forgotten after STRIKES_FORGOTTEN_AFTER without a
failure. A successful login resets the account's count but keeps its strikes, so a
guesser who keeps coming back still meets ever longer blocks; an address's count is never
reset by a success (or one guesser's own account would reset it).

The check is one statement; counting a failure is one upsert (atomic across processes).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from psycopg import AsyncConnection

from relay.db.sql import fetch_all, fetch_one, queries
from relay.settings import Settings

ADDRESS_FACTOR = 4  # an address may fail 4 times as often as one account
MAX_BLOCK_SECONDS = 86400.0  # a repeat offender's block grows to at most a day (or one window, if longer)
STRIKES_FORGOTTEN_AFTER = 86400.0  # a day without a failure wipes the slate


@dataclass(frozen=True)
class Limits:
    """How many failures each kind of subject may have within the window."""

    max_failures: int
    window_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.login_max_failures, settings.login_window_seconds)

    @property
    def address_max_failures(self) -> int:
        return self.max_failures * ADDRESS_FACTOR


@dataclass(frozen=True)
class Block:
    """A block that a failure has just started on one subject."""

    subject: str
    seconds: int
    strike: int

    @property
    def kind(self) -> str:
        """'account' or 'address'."""
        return self.subject.partition(":")[0]


class Throttled(Exception):
    """A login refused before its password was looked at: the account or the address is blocked."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"blocked for {retry_after} s")
        self.retry_after = retry_after


def account_subject(email: str) -> str:
    """The account's subject: a hash of the email (known or not), so the table holds no addresses in clear."""
    return "account:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def subjects(email: str | None, address: str | None) -> list[str]:
    """The subjects an attempt counts against: the account (when an email is given) and the client address."""
    found = [account_subject(email)] if email is not None else []
    if address:
        found.append("address:" + address)
    return found


async def check(conn: AsyncConnection, names: list[str]) -> None:
    """Raise Throttled when any of these subjects is blocked (one statement)."""
    if not names:
        return
    row = await fetch_one(conn, "login_blocked_for", {"subjects": names})
    if row is not None and row["wait_seconds"] is not None:
        raise Throttled(max(1, row["wait_seconds"]))


async def count_failure(conn: AsyncConnection, limits: Limits, names: list[str]) -> list[Block]:
    """Count one failed attempt against each subject; return the blocks it started (usually none)."""
    if not names:
        return []
    rows = await fetch_all(
        conn,
        "count_login_failure",
        {
            "subjects": names,
            "account_limit": limits.max_failures,
            "address_limit": limits.address_max_failures,
            "window": limits.window_seconds,
            "max_block": MAX_BLOCK_SECONDS,
            "forget_strikes": STRIKES_FORGOTTEN_AFTER,
        },
    )
    return [Block(row["subject"], max(1, row["wait_seconds"]), row["strikes"]) for row in rows if row["blocked_now"]]


async def forget_failures(conn: AsyncConnection, email: str) -> None:
    """Reset the account's count after a successful login (its strikes stay)."""
    await conn.execute(queries["forget_login_failures"], {"subject": account_subject(email)})


async def prune(conn: AsyncConnection, window_seconds: float) -> int:
    """Delete the rows of subjects quiet for long enough that nothing in them counts any more."""
    keep = max(STRIKES_FORGOTTEN_AFTER, window_seconds)
    cursor = await conn.execute(queries["delete_old_login_throttle"], {"keep": keep})
    return cursor.rowcount


def describe_wait(seconds: int) -> str:
    """Say how long to wait in words a person reads: '40 seconds', '15 minutes', '3 hours' (rounded up)."""
    if seconds < 120:
        count, unit = seconds, "second"
    elif seconds < 2 * 3600:
        count, unit = math.ceil(seconds / 60), "minute"
    else:
        count, unit = math.ceil(seconds / 3600), "hour"
    return f"{count} {unit}{'' if count == 1 else 's'}"
