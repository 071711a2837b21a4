"""Group commit (issue 12): concurrent single events are written by one statement, each request judged alone."""

from __future__ import annotations

import asyncio
import uuid

import psycopg

from relay.db.events import new_event
from relay.db.group_commit import GroupCommit, Submission, Verdict
from relay.db.pool import open_pool
from relay.db.tenants import create_tenant
from tests.integration.test_ingest import add_endpoint


def submit_all(conninfo: str, submissions: list[Submission]) -> tuple[list[Verdict | BaseException], int]:
    """Submit everything at once to one writer; return each verdict (or error) and how many statements it took."""

    async def run() -> tuple[list[Verdict | BaseException], int]:
        pool = await open_pool(conninfo, min_size=1, max_size=2)
        writer = GroupCommit(pool)
        writer.start()
        try:
            answers = await asyncio.gather(*(writer.submit(s) for s in submissions), return_exceptions=True)
            return list(answers), writer.writes
        finally:
            await writer.stop()
            await pool.close()

    return asyncio.run(run())


def test_one_statement_for_many_requests_and_each_gets_its_own_verdict(conninfo: str, db: psycopg.Connection) -> None:
    tenant_a, _ = create_tenant(db, f"gc-{uuid.uuid4().hex[:6]}")
    tenant_b, _ = create_tenant(db, f"gc-{uuid.uuid4().hex[:6]}")
    endpoint_a = add_endpoint(db, tenant_a)
    endpoint_b = add_endpoint(db, tenant_b)
    # Stored before: a key repeated with the same request (→ the original) and one reused for another (→ conflict).
    original = new_event("order.paid", b'{"n":0}', idempotency_key="same")
    reused = new_event("order.paid", b'{"n":0}', idempotency_key="reused")
    first, _ = submit_all(conninfo, [Submission(tenant_a, "k1", 0, original), Submission(tenant_a, "k1", 0, reused)])
    assert all(isinstance(v, Verdict) and v.created for v in first)

    def a(event, subject="k1", limit=0):  # noqa: ANN001, ANN202
        return Submission(tenant_a, subject, limit, event)

    submissions = [
        *(a(new_event("order.paid", b'{"n":%d}' % i)) for i in range(20)),
        a(new_event("order.paid", b'{"n":0}', idempotency_key="same")),
        a(new_event("order.paid", b'{"n":999}', idempotency_key="reused")),
        a(new_event("order.paid", b'{"n":1}', endpoint_id="ep_nowhere")),
        a(new_event("order.paid", b'{"n":2}', endpoint_id=endpoint_b)),  # another tenant's endpoint: unknown here
        a(new_event("order.paid", b'{"n":3}', endpoint_id=endpoint_a)),
        Submission(tenant_b, "k2", 0, new_event("order.paid", b'{"n":4}', idempotency_key="same")),  # B's own key
        *(a(new_event("limited", b"{}"), subject="k-limited", limit=3) for _ in range(5)),
    ]
    verdicts, writes = submit_all(conninfo, submissions)
    assert writes == 1  # everything that waited went in one statement
    assert all(isinstance(v, Verdict) for v in verdicts), verdicts
    news, same, conflict, nowhere, foreign, targeted, other_tenant = verdicts[:20], *verdicts[20:26]
    limited = verdicts[26:]
    assert all(v.created and v.deliveries == 1 and v.endpoint_known for v in news)
    assert not same.created and not same.conflict and same.event_id == original.id
    assert conflict.conflict and conflict.event_id == reused.id
    assert not nowhere.endpoint_known and not foreign.endpoint_known
    assert targeted.created and targeted.deliveries == 1
    assert other_tenant.created  # tenant B's key "same" is not tenant A's
    assert [v.rate_limited for v in limited] == [False, False, False, True, True]
    assert [v.used for v in limited] == [1, 2, 3, 4, 5]

    stored = {row[0] for row in db.execute("SELECT id FROM relay.events WHERE tenant_id = %s", (tenant_a,))}
    expected = {original.id, reused.id, targeted.event_id, *(v.event_id for v in news),
                *(v.event_id for v in limited[:3])}
    assert stored == expected  # nothing for the conflict, the unknown endpoints or the refused requests
    deliveries = db.execute(
        "SELECT count(*) FROM relay.deliveries WHERE tenant_id = %s AND event_id = ANY(%s)",
        (tenant_a, [v.event_id for v in news]),
    ).fetchone()
    assert deliveries is not None and deliveries[0] == 20


def test_a_lone_request_is_written_at_once(conninfo: str, db: psycopg.Connection) -> None:
    tenant, _ = create_tenant(db, f"gc-{uuid.uuid4().hex[:6]}")
    verdicts, writes = submit_all(conninfo, [Submission(tenant, "k", 0, new_event("a.b", b"{}"))])
    assert writes == 1 and isinstance(verdicts[0], Verdict) and verdicts[0].created


def test_when_the_database_is_unreachable_every_request_in_the_group_fails(db: psycopg.Connection) -> None:
    tenant, _ = create_tenant(db, f"gc-{uuid.uuid4().hex[:6]}")
    unreachable = "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=1"

    async def run() -> list[Verdict | BaseException]:
        pool = await open_pool(unreachable, min_size=0, max_size=1, wait=False, timeout=1)
        writer = GroupCommit(pool)
        writer.start()
        try:
            return list(await asyncio.gather(
                *(writer.submit(Submission(tenant, "k", 0, new_event("a.b", b"{}"))) for _ in range(5)),
                return_exceptions=True,
            ))
        finally:
            await writer.stop()
            await pool.close()

    answers = asyncio.run(run())
    assert len(answers) == 5 and all(isinstance(answer, Exception) for answer in answers)
