"""TenantDb binds the tenant to every query; API reads of endpoints never select the signing secrets."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from relay.db.sql import queries
from relay.db.tenant_db import TenantDb
from relay.db.tenants import Principal
from relay.settings import Settings


class FakeConnection:
    """Records what would be sent to PostgreSQL."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def cursor(self, row_factory: Any = None) -> FakeConnection:
        return self

    async def execute(self, query: str, params: dict[str, Any]) -> None:
        self.sent.append((query, params))

    async def fetchone(self) -> None:
        return None


def tenant_db() -> tuple[TenantDb, FakeConnection]:
    conn = FakeConnection()
    return TenantDb(conn, Principal(tenant_id="ten_a"), Settings()), conn  # type: ignore[arg-type]


def test_every_query_gets_the_tenant() -> None:
    db, conn = tenant_db()
    asyncio.run(db.fetch_one("get_event", id="evt_1"))
    asyncio.run(db.execute("disable_endpoints", endpoint_ids=["ep_1"], reason="manual"))
    [(_, read), (_, disable)] = conn.sent
    assert read["tenant_id"] == "ten_a" and read["id"] == "evt_1"
    assert disable["tenant_ids"] == ["ten_a"]  # statements over several tenants get this one only


def test_a_caller_cannot_choose_the_tenant() -> None:
    db, conn = tenant_db()
    with pytest.raises(TypeError, match="bound by TenantDb"):
        asyncio.run(db.fetch_one("get_event", id="evt_1", tenant_id="ten_b"))
    with pytest.raises(TypeError, match="bound by TenantDb"):
        asyncio.run(db.execute("disable_endpoints", tenant_ids=["ten_b"], endpoint_ids=["ep_1"], reason="manual"))
    assert conn.sent == []


def test_a_query_that_does_not_bind_the_tenant_is_refused() -> None:
    db, conn = tenant_db()
    with pytest.raises(ValueError, match="does not bind"):
        asyncio.run(db.fetch_all("metrics_totals"))
    assert conn.sent == []


ENDPOINT_READS = ("insert_endpoint", "get_endpoint_without_secrets", "list_endpoints", "update_endpoint",
                  "set_endpoint_paused", "set_endpoint_verification")


def _columns(query: str) -> list[str]:
    listed = re.search(r"(?:^SELECT|^RETURNING)\s+(.*?)\s*(?:FROM\b|;)", queries[query], re.DOTALL | re.MULTILINE)
    assert listed, query
    return [column.strip() for column in listed.group(1).split(",")]


def test_endpoint_reads_list_the_same_columns_and_no_secret() -> None:
    shown = _columns("get_endpoint_without_secrets")
    assert "secret" not in shown and "previous_secret" not in shown
    for query in ENDPOINT_READS:
        expected = [*shown, "secret"] if query == "insert_endpoint" else shown  # creation shows the secret once
        assert _columns(query) == expected, query
