"""The login throttle's state machine in PostgreSQL (relay/db/throttle.py): counts, blocks, strikes, clean-up."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
import pytest

from relay.db import throttle

T = TypeVar("T")
LIMITS = throttle.Limits(max_failures=3, window_seconds=60.0)


def run(conninfo: str, work: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T:
    async def go() -> T:
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            return await work(conn)

    return asyncio.run(go())


def subject() -> str:
    return throttle.account_subject(f"t-{uuid.uuid4().hex[:10]}@example.com")


def row(db: psycopg.Connection, name: str) -> tuple:
    return db.execute(
        "SELECT failures, strikes, ceil(extract(epoch FROM blocked_until - now()))::int FROM relay.login_throttle "
        "WHERE subject = %s", (name,)).fetchone()


def fail(conninfo: str, names: list[str], times: int = 1, limits: throttle.Limits = LIMITS) -> list[throttle.Block]:
    async def work(conn: psycopg.AsyncConnection) -> list[throttle.Block]:
        blocks: list[throttle.Block] = []
        for _ in range(times):
            blocks += await throttle.count_failure(conn, limits, names)
        return blocks

    return run(conninfo, work)


def blocked_for(conninfo: str, names: list[str]) -> int | None:
    async def work(conn: psycopg.AsyncConnection) -> int | None:
        try:
            await throttle.check(conn, names)
        except throttle.Throttled as blocked:
            return blocked.retry_after
        return None

    return run(conninfo, work)


def test_the_failure_that_reaches_the_limit_starts_a_block_of_one_window(conninfo: str, db) -> None:
    name = subject()
    assert fail(conninfo, [name], LIMITS.max_failures - 1) == [] and blocked_for(conninfo, [name]) is None
    assert row(db, name)[:2] == (LIMITS.max_failures - 1, 0)
    [block] = fail(conninfo, [name])
    assert block.subject == name and block.kind == "account" and block.strike == 1 and block.seconds == 60
    assert row(db, name) == (0, 1, 60)
    assert blocked_for(conninfo, [name, "address:192.0.2.1"]) == 60


def test_an_address_gets_four_times_as_many_failures(conninfo: str, db) -> None:
    address = f"address:198.51.100.{uuid.uuid4().int % 250}"
    db.execute("DELETE FROM relay.login_throttle WHERE subject = %s", (address,))
    assert fail(conninfo, [address], 4 * LIMITS.max_failures - 1) == []
    assert [b.kind for b in fail(conninfo, [address])] == ["address"]


def test_a_limit_of_one_blocks_at_the_first_failure(conninfo: str, db) -> None:
    name = subject()
    [block] = fail(conninfo, [name], limits=throttle.Limits(1, 30.0))
    assert block.strike == 1 and block.seconds == 30 and row(db, name) == (0, 1, 30)


def test_a_count_starts_again_after_the_window(conninfo: str, db) -> None:
    name = subject()
    fail(conninfo, [name], LIMITS.max_failures - 1)
    db.execute("UPDATE relay.login_throttle SET window_started = now() - interval '61 seconds' WHERE subject = %s",
               (name,))
    assert fail(conninfo, [name]) == [] and row(db, name)[0] == 1


def test_each_strike_doubles_the_block_up_to_a_day_and_strikes_fade_after_a_quiet_day(conninfo: str, db) -> None:
    name = subject()
    lengths = []
    for _ in range(3):
        [block] = fail(conninfo, [name], LIMITS.max_failures)
        lengths.append(block.seconds)
        db.execute("UPDATE relay.login_throttle SET blocked_until = now() - interval '1 second' WHERE subject = %s",
                   (name,))
    assert lengths == [60, 120, 240]
    db.execute("UPDATE relay.login_throttle SET strikes = 40 WHERE subject = %s", (name,))
    [capped] = fail(conninfo, [name], LIMITS.max_failures)
    assert capped.seconds == int(throttle.MAX_BLOCK_SECONDS) and capped.strike == 41
    db.execute("UPDATE relay.login_throttle SET blocked_until = now() - interval '1 second', "
               "updated_at = now() - interval '25 hours' WHERE subject = %s", (name,))
    [fresh] = fail(conninfo, [name], LIMITS.max_failures)  # a quiet day: the slate is clean
    assert fresh.seconds == 60 and fresh.strike == 1


def test_a_success_resets_the_count_and_keeps_the_strikes(conninfo: str, db) -> None:
    address = f"t-{uuid.uuid4().hex[:10]}@example.com"
    name = throttle.account_subject(address)
    fail(conninfo, [name], LIMITS.max_failures)
    db.execute("UPDATE relay.login_throttle SET blocked_until = NULL, failures = 2 WHERE subject = %s", (name,))

    async def succeed(conn: psycopg.AsyncConnection) -> None:
        await throttle.forget_failures(conn, address.upper())  # the same account, however the email is written

    run(conninfo, succeed)
    assert row(db, name)[:2] == (0, 1)


def test_clean_up_removes_quiet_subjects_and_keeps_running_blocks(conninfo: str, db) -> None:
    quiet, blocked, recent = subject(), subject(), subject()
    fail(conninfo, [quiet, recent])
    fail(conninfo, [blocked], LIMITS.max_failures)
    db.execute("UPDATE relay.login_throttle SET updated_at = now() - interval '2 days' WHERE subject = ANY(%s)",
               ([quiet, blocked],))
    db.execute("UPDATE relay.login_throttle SET blocked_until = now() + interval '1 hour' WHERE subject = %s",
               (blocked,))

    async def prune(conn: psycopg.AsyncConnection) -> int:
        return await throttle.prune(conn, LIMITS.window_seconds)

    assert run(conninfo, prune) >= 1
    left = {r[0] for r in db.execute("SELECT subject FROM relay.login_throttle WHERE subject = ANY(%s)",
                                     ([quiet, blocked, recent],)).fetchall()}
    assert left == {blocked, recent}


@pytest.mark.parametrize(("seconds", "words"), [(1, "1 second"), (59, "59 seconds"), (119, "119 seconds"),
                                                 (120, "2 minutes"), (900, "15 minutes"), (3601, "61 minutes"),
                                                 (7200, "2 hours"), (86400, "24 hours")])
def test_waits_are_said_in_words(seconds: int, words: str) -> None:
    assert throttle.describe_wait(seconds) == words
