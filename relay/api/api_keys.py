"""`/v1/api-keys`: create (shown once), list (prefix only), revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter
from msgspec import Meta

from relay.api.audit_log import audit
from relay.api.errors import Problem, problem_responses
from relay.api.pagination import Cursor, Limit, Page, page_of
from relay.api.rows import from_row
from relay.api.scopes import normalise
from relay.db.tenant_db import TenantDb
from relay.db.tenants import api_key_row, new_api_key

Scope = Literal["events:write", "read", "admin"]


class ApiKeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new key; `rate_limit` (events per second) overrides the default ingest limit for it.

    `scopes`: `events:write` (send events only), `read` (read everything, change nothing),
    `admin` (everything; the default).
    """

    name: Annotated[str, Meta(min_length=1, max_length=200)]
    rate_limit: Annotated[int, Meta(ge=1, le=1_000_000)] | None = None
    scopes: Annotated[list[Scope], Meta(min_length=1, max_length=3)] = msgspec.field(default_factory=lambda: ["admin"])


class ApiKeyOut(msgspec.Struct):
    """A key as listings show it: never the key itself."""

    id: str
    name: str
    prefix: str
    rate_limit: int | None
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    """The new key, shown this once."""

    key: str = ""


def api_key_out(row: dict[str, Any]) -> ApiKeyOut:
    return from_row(ApiKeyOut, row)


class ApiKeyController(Controller):
    """API keys of the calling tenant."""

    path = "/v1/api-keys"
    tags = ["api-keys"]

    @post("/", operation_id="createApiKey", status_code=201, responses=problem_responses(400, 401))
    async def create(
        self, request: Request, db: NamedDependency[TenantDb], data: JSONBody[ApiKeyCreate]
    ) -> ApiKeyCreated:
        """Create a key; the answer is the only time the key is shown (it is stored hashed)."""
        key = new_api_key()
        stored = api_key_row(data.name, key, data.rate_limit, normalise(data.scopes))
        async with db.transaction():
            row = await db.fetch_one("insert_api_key", **stored)
            assert row is not None
            await audit(db, request, "api_key.created", "api_key", row["id"], name=row["name"], prefix=row["prefix"],
                        scopes=row["scopes"], rate_limit=row["rate_limit"])
        return ApiKeyCreated(**msgspec.structs.asdict(api_key_out(row)), key=key)

    @get("/", operation_id="listApiKeys", responses=problem_responses(400, 401))
    async def list(self, db: NamedDependency[TenantDb], limit: Limit = 50, cursor: Cursor = None) -> Page[ApiKeyOut]:
        """List keys (prefix, name, created, last used, revoked), newest first."""
        rows = await db.fetch_all("list_api_keys", cursor=cursor, limit=limit + 1)
        return page_of([api_key_out(row) for row in rows], limit)

    @delete("/{key_id:str}", operation_id="revokeApiKey", status_code=204, responses=problem_responses(401, 404))
    async def revoke(
        self, request: Request, db: NamedDependency[TenantDb], key_id: Annotated[str, PathParameter(max_length=64)]
    ) -> None:
        """Revoke a key; the next request with it is refused."""
        async with db.transaction():
            row = await db.fetch_one("revoke_api_key", id=key_id)
            if row is None:
                raise Problem(404, f"No active API key {key_id!r}.")
            await audit(db, request, "api_key.revoked", "api_key", key_id, name=row["name"], prefix=row["prefix"])
