"""Authenticate `/v1` requests: an API key or an access token, as `Authorization: Bearer …` or `X-API-Key`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from psycopg import AsyncConnection

from relay.api.errors import Problem
from relay.db.accounts import signing_key
from relay.db.ratelimit import Allowance, spend
from relay.db.tenants import Principal, authenticate
from relay.tokens import looks_like_jwt, read_access_token

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="relay"'}


def credential_of(request: Request[Any, Any, Any]) -> str | None:
    """Return the presented credential, or None when there is none."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Problem(401, "Use 'Authorization: Bearer <api key or access token>'.", headers=_CHALLENGE)
        return value.strip()
    return request.headers.get("x-api-key") or None


async def provide_connection(state: State) -> AsyncIterator[AsyncConnection]:
    """Lend the request one pooled connection, shared by authentication and the handler."""
    async with state.pool.connection() as conn:
        yield conn


async def jwt_secret(request: Request[Any, Any, Any], conn: AsyncConnection) -> bytes:
    """Return the access-token signing key: RELAY_JWT_SECRET, or the one kept in the database."""
    state = request.app.state
    if state.jwt_secret is None:
        state.jwt_secret = await signing_key(conn)
    return state.jwt_secret


async def provide_principal(request: Request[Any, Any, Any], conn: NamedDependency[AsyncConnection]) -> Principal:
    """Resolve the caller's tenant; every query of the request is scoped to it."""
    credential = credential_of(request)
    if credential is None:
        raise Problem(401, "Credentials are required: send 'Authorization: Bearer <api key>'.", headers=_CHALLENGE)
    if len(credential) > 4096:
        raise Problem(401, "The credentials are not valid.", headers=_CHALLENGE)
    if looks_like_jwt(credential):
        claims = read_access_token(await jwt_secret(request, conn), credential)
        if claims is None:
            raise Problem(401, "The access token is not valid or has expired; refresh it.", headers=_CHALLENGE)
        return Principal(tenant_id=claims.tenant_id, user_id=claims.user_id)
    principal = await authenticate(conn, credential)
    if principal is None:
        raise Problem(401, "The API key is not valid or has been revoked.", headers=_CHALLENGE)
    return principal


async def charge_ingest(request: Request[Any, Any, Any], conn: AsyncConnection, principal: Principal, events: int) -> dict[str, str]:
    """Count `events` against the caller's ingest limit; raise 429 over it; return the RateLimit headers."""
    limit = principal.rate_limit or request.app.state.settings.ingest_rate_limit
    if limit <= 0:
        return {}
    if events > limit:
        raise Problem(
            429, f"A request of {events} events can never fit this key's limit of {limit} events per second; split it.",
            headers={"RateLimit-Limit": str(limit)},
        )
    allowance: Allowance = await spend(conn, principal.subject, events, limit)
    if not allowance.allowed:
        raise Problem(429, f"Ingest limit of {limit} events per second reached; retry after the reset.",
                      headers=allowance.headers())
    return allowance.headers()
