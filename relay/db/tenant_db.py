"""A connection bound to one tenant: every named query it runs is given that tenant's id."""

from __future__ import annotations

import re
from contextlib import AbstractAsyncContextManager
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from relay.db.sql import queries
from relay.db.tenants import Principal
from relay.settings import Settings

# Queries that bind the tenant: as `tenant_id`, or as `tenant_ids` in the statements that serve
# several tenants at once (TenantDb passes the caller's tenant as the only element).
_BINDS_TENANT = re.compile(r"%\(tenant_ids?\)s")
_SCOPED = frozenset(name for name, text in queries.items() if _BINDS_TENANT.search(text))

# Statements that touch no tenant's rows, so there is no tenant to bind.
TENANT_FREE = frozenset({"wake_dispatchers"})  # a NOTIFY


class TenantDb:
    """The request's connection, scoped to the caller's tenant, with the settings it runs under.

    Every query is named (`sql/queries/*.sql`) and gets the tenant added to its parameters;
    a query that does not bind the tenant is refused, and so is a caller's own `tenant_id`,
    so a handler cannot reach another tenant's rows by forgetting or overriding it.
    """

    def __init__(self, conn: AsyncConnection, principal: Principal, settings: Settings) -> None:
        self.conn = conn  # for database functions that take the tenant as an argument
        self.principal = principal
        self.settings = settings

    @property
    def tenant_id(self) -> str:
        """The tenant every query is scoped to."""
        return self.principal.tenant_id

    async def fetch_one(self, query: str, /, **params: Any) -> dict[str, Any] | None:
        """Run the named query for the tenant and return its first row as a dict, or None."""
        cursor = self.conn.cursor(row_factory=dict_row)
        await cursor.execute(queries[query], self._scoped(query, params))
        return await cursor.fetchone()

    async def fetch_all(self, query: str, /, **params: Any) -> list[dict[str, Any]]:
        """Run the named query for the tenant and return its rows as dicts."""
        cursor = self.conn.cursor(row_factory=dict_row)
        await cursor.execute(queries[query], self._scoped(query, params))
        return await cursor.fetchall()

    async def execute(self, query: str, /, **params: Any) -> None:
        """Run the named statement for the tenant, ignoring what it returns."""
        await self.conn.execute(queries[query], self._scoped(query, params))

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """Open a transaction: the statements run inside it commit together or not at all."""
        return self.conn.transaction()

    def _scoped(self, query: str, params: dict[str, Any]) -> dict[str, Any]:
        if "tenant_id" in params or "tenant_ids" in params:
            raise TypeError(f"query {query!r}: the tenant is bound by TenantDb, do not pass it")
        if query not in _SCOPED and query not in TENANT_FREE:
            raise ValueError(f"query {query!r} does not bind %(tenant_id)s, so it cannot run for a tenant")
        return {**params, "tenant_id": self.tenant_id, "tenant_ids": [self.tenant_id]}
