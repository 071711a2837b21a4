"""A connection bound to one tenant: every named query it runs is given that tenant's id."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from relay.db.sql import queries
from relay.db.tenants import Principal
from relay.settings import Settings

# Queries that bind the tenant: as `tenant_id`, or as `tenant_ids` in the statements that serve
# several tenants at once (TenantDb passes the caller's tenant as the only element).
_BINDS_TENANT = re.compile(r"%\(tenant_ids?\)[sb]")
_SCOPED = frozenset(name for name, text in queries.items() if _BINDS_TENANT.search(text))

# Statements that touch no tenant's rows, so there is no tenant to bind.
TENANT_FREE = frozenset({"wake_dispatchers"})  # a NOTIFY


class TenantDb:
    """The request's connection, scoped to the caller's tenant, with the settings it runs under.

    Every query is named (`sql/queries/*.sql`) and gets the tenant added to its parameters;
    a query that does not bind the tenant is refused, and so is a caller's own `tenant_id`,
    so a handler cannot reach another tenant's rows by forgetting or overriding it.
    """

    def __init__(
        self,
        conn: AsyncConnection | None,
        principal: Principal,
        settings: Settings,
        acquire: Callable[[], Awaitable[AsyncConnection]] | None = None,
        jobs: Any = None,
    ) -> None:
        # The connection is taken from the pool on first use (`acquire`), so a request that
        # needs none (an event handed to the group-commit writer) holds none.
        self._conn = conn
        self._acquire = acquire
        self.principal = principal
        self.settings = settings
        self.jobs = jobs  # the API app's procrastinate app, to queue background jobs through

    async def connection(self) -> AsyncConnection:
        """Return the request's connection, taking it from the pool on first use."""
        if self._conn is None:
            if self._acquire is None:
                raise RuntimeError("this TenantDb has no connection and no way to get one")
            self._conn = await self._acquire()
        return self._conn

    @property
    def conn(self) -> AsyncConnection:
        """The connection, once `connection()` has taken it (for functions that take the tenant as an argument)."""
        if self._conn is None:
            raise RuntimeError("call `await db.connection()` first")
        return self._conn

    @property
    def tenant_id(self) -> str:
        """The tenant every query is scoped to."""
        return self.principal.tenant_id

    async def fetch_one(self, query: str, /, **params: Any) -> dict[str, Any] | None:
        """Run the named query for the tenant and return its first row as a dict, or None."""
        cursor = (await self.connection()).cursor(row_factory=dict_row)
        await cursor.execute(queries[query], self._scoped(query, params))
        return await cursor.fetchone()

    async def fetch_all(self, query: str, /, **params: Any) -> list[dict[str, Any]]:
        """Run the named query for the tenant and return its rows as dicts."""
        cursor = (await self.connection()).cursor(row_factory=dict_row)
        await cursor.execute(queries[query], self._scoped(query, params))
        return await cursor.fetchall()

    async def execute(self, query: str, /, **params: Any) -> None:
        """Run the named statement for the tenant, ignoring what it returns."""
        await (await self.connection()).execute(queries[query], self._scoped(query, params))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        """Open a transaction: the statements run inside it commit together or not at all."""
        async with (await self.connection()).transaction() as tx:
            yield tx

    def _scoped(self, query: str, params: dict[str, Any]) -> dict[str, Any]:
        if "tenant_id" in params or "tenant_ids" in params:
            raise TypeError(f"query {query!r}: the tenant is bound by TenantDb, do not pass it")
        if query not in _SCOPED and query not in TENANT_FREE:
            raise ValueError(f"query {query!r} does not bind %(tenant_id)s, so it cannot run for a tenant")
        return {**params, "tenant_id": self.tenant_id, "tenant_ids": [self.tenant_id]}
