"""Authenticate `/v1` requests by API key (`Authorization: Bearer …` or `X-API-Key`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from psycopg import AsyncConnection

from relay.api.errors import Problem
from relay.db.tenants import Principal, authenticate

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="relay"'}


def credential_of(request: Request[Any, Any, Any]) -> str | None:
    """Return the presented credential, or None when there is none."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Problem(401, "Use 'Authorization: Bearer <api key>'.", headers=_CHALLENGE)
        return value.strip()
    return request.headers.get("x-api-key") or None


async def provide_connection(state: State) -> AsyncIterator[AsyncConnection]:
    """Lend the request one pooled connection, shared by authentication and the handler."""
    async with state.pool.connection() as conn:
        yield conn


async def provide_principal(request: Request[Any, Any, Any], conn: NamedDependency[AsyncConnection]) -> Principal:
    """Resolve the caller's tenant; every query of the request is scoped to it."""
    credential = credential_of(request)
    if credential is None:
        raise Problem(401, "An API key is required: send 'Authorization: Bearer <api key>'.", headers=_CHALLENGE)
    if len(credential) > 512:
        raise Problem(401, "The API key is not valid.", headers=_CHALLENGE)
    principal = await authenticate(conn, credential)
    if principal is None:
        raise Problem(401, "The API key is not valid or has been revoked.", headers=_CHALLENGE)
    return principal
