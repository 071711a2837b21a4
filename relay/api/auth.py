"""Authentication by default: every route but a short public list needs an API key or an access token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from psycopg import AsyncConnection

from relay.api.errors import Problem, answer_error
from relay.api.scopes import allows, required_scope
from relay.db.accounts import sessions_valid_after, signing_key
from relay.db.audit import Actor
from relay.db.key_cache import ApiKeyCache, Cutoff
from relay.db.ratelimit import Allowance, spend
from relay.db.tenant_db import TenantDb
from relay.db.tenants import Principal, authenticate, hash_key
from relay.tokens import AccessClaims, looks_like_jwt, read_access_token

# The routes anyone may call, by path; every other route answers 401 without valid credentials.
PUBLIC_PATHS = frozenset(
    {
        "/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/logout",  # how credentials are got
        "/health", "/health/ready",  # probes carry no credentials
        "/metrics",  # Prometheus scrapes without credentials
    }
)
DOCS_PATH = "/schema"  # the OpenAPI document and Swagger UI, and everything under it
DASHBOARD_PATH = "/ui"  # the dashboard signs its users in with a session cookie (relay/ui/guard.py), not API keys

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="relay"'}
TENANT_DB = "relay.tenant_db"  # where the middleware leaves the request's TenantDb in the ASGI scope's state


def is_public(path: str) -> bool:
    """Tell whether the route with this path (as the route table writes it: `/v1/endpoints/{endpoint_id}`) is public."""
    return (
        path in PUBLIC_PATHS or path == "/"
        or any(path == prefix or path.startswith(prefix + "/") for prefix in (DOCS_PATH, DASHBOARD_PATH))
    )


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
    """Lend a public route's handler one pooled connection (authenticated routes get theirs in a TenantDb)."""
    async with state.pool.connection() as conn:
        yield conn


async def jwt_secret(request: Request[Any, Any, Any]) -> bytes:
    """Return the access-token signing key: RELAY_JWT_SECRET, or the one kept in the database (read once)."""
    state = request.app.state
    if state.jwt_secret is None:
        async with state.pool.connection() as conn:
            state.jwt_secret = await signing_key(conn)
    return state.jwt_secret


async def principal_of(request: Request[Any, Any, Any], credential: str) -> Principal:
    """Resolve a credential to the caller's tenant (and key or user); raise 401 for one that is not valid.

    Access tokens are checked by their signature, and against the user's last password
    change; API keys come from the process's key cache (relay/db/key_cache.py) when it has
    them. Both caches are kept current by notifications, so the hot path costs no round trip.
    """
    if looks_like_jwt(credential):
        claims = read_access_token(await jwt_secret(request), credential)
        if claims is None:
            raise Problem(401, "The access token is not valid or has expired; refresh it.", headers=_CHALLENGE)
        if await _session_ended(request, claims):
            raise Problem(401, "The session of this access token has ended (the password was changed); sign in again.",
                          headers=_CHALLENGE)
        return Principal(tenant_id=claims.tenant_id, user_id=claims.user_id)
    cache: ApiKeyCache = request.app.state.key_cache
    key_hash = hash_key(credential)
    principal = cache.get(key_hash)
    if principal is None:
        async with request.app.state.pool.connection() as conn:
            principal = await authenticate(conn, credential)
        if principal is None:
            raise Problem(401, "The API key is not valid or has been revoked.", headers=_CHALLENGE)
        cache.put(key_hash, principal)
    return principal


async def _session_ended(request: Request[Any, Any, Any], claims: AccessClaims) -> bool:
    """Tell whether the token was issued before its user's last password change (or the user is gone).

    The user's cutoff comes from the process's cache, which the listener drops on every
    change (NOTIFY relay_sessions); the database is asked on a miss, and always while the
    listener is down.
    """
    cutoffs = request.app.state.key_cache.sessions
    cutoff = cutoffs.get(claims.user_id)
    if cutoff is None:
        generation = cutoffs.generation
        async with request.app.state.pool.connection() as conn:
            cutoff = Cutoff(await sessions_valid_after(conn, claims.user_id))
        cutoffs.put(claims.user_id, cutoff, generation)
    return cutoff.at is not None and claims.issued_at < cutoff.at


class Authentication(ASGIMiddleware):
    """Authenticate each request to a route that is not public, before its handler runs.

    The handler's TenantDb takes a pooled connection on first use and gives it back when
    the request ends; a request that needs none (single-event ingest, which goes through
    the group-commit writer) holds none.
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Answer 401 (as a problem document) or run the handler with the caller's TenantDb."""
        request: Request[Any, Any, Any] = Request(scope, receive)
        # OPTIONS only lists a route's methods, and browsers send CORS preflights without credentials.
        if request.method == "OPTIONS" or is_public(scope["path_template"]):
            await next_app(scope, receive, send)
            return
        async with AsyncExitStack() as stack:
            try:
                db = await _tenant_db(request, stack)
            except Exception as exc:  # no handler runs yet to turn it into a problem document
                await answer_error(request, exc)(scope, receive, send)
                return
            scope.setdefault("state", {})[TENANT_DB] = db
            scope["user"] = db.principal
            await next_app(scope, receive, send)


async def _tenant_db(request: Request[Any, Any, Any], stack: AsyncExitStack) -> TenantDb:
    credential = credential_of(request)
    if credential is None:  # refused before taking a connection: anonymous traffic costs the database nothing
        raise Problem(401, "Credentials are required: send 'Authorization: Bearer <api key>'.", headers=_CHALLENGE)
    if len(credential) > 4096:
        raise Problem(401, "The credentials are not valid.", headers=_CHALLENGE)
    principal = await principal_of(request, credential)
    needed = required_scope(request.method, request.scope["path_template"])
    if not allows(principal.scopes, needed):
        have = ", ".join(sorted(principal.scopes))
        raise Problem(
            403, f"This API key lacks the '{needed}' scope this route needs (it has: {have}).",
            required_scope=needed,
        )
    pool = request.app.state.pool

    async def acquire() -> AsyncConnection:
        return await stack.enter_async_context(pool.connection())

    return TenantDb(None, principal, request.app.state.settings, acquire=acquire, jobs=request.app.state.jobs)


def provide_tenant_db(request: Request[Any, Any, Any]) -> TenantDb:
    """Give the handler the caller's TenantDb, opened by the Authentication middleware."""
    db: TenantDb | None = request.scope.get("state", {}).get(TENANT_DB)
    if db is None:  # a public route asked for tenant data: there is no tenant to scope it to
        raise Problem(401, "Credentials are required: send 'Authorization: Bearer <api key>'.", headers=_CHALLENGE)
    return db


async def charge_ingest(db: TenantDb, events: int) -> dict[str, str]:
    """Count `events` against the caller's ingest limit; raise 429 over it; return the RateLimit headers."""
    limit = db.principal.rate_limit or db.settings.ingest_rate_limit
    if limit <= 0:
        return {}
    if events > limit:
        raise Problem(
            429,
            f"A request of {events} events can never fit this key's limit of {limit} events per second; split it.",
            headers={"RateLimit-Limit": str(limit)},
        )
    allowance: Allowance = await spend(await db.connection(), db.principal.subject, events, limit)
    if not allowance.allowed:
        detail = f"Ingest limit of {limit} events per second reached; retry after the reset."
        raise Problem(429, detail, headers=allowance.headers())
    return allowance.headers()


def client_address(request: Request[Any, Any, Any]) -> str | None:
    """The caller's address: the socket's peer, or a trusted proxy's `X-Forwarded-For` (RELAY_TRUSTED_PROXIES)."""
    return request.client.host if request.client else None


def actor_of(request: Request[Any, Any, Any]) -> Actor:
    """Who is making this request, for the audit log: the user, the API key's prefix, or anonymous."""
    principal = request.scope.get("user")
    address = client_address(request)
    if isinstance(principal, Principal):
        if principal.user_id:
            return Actor("user", principal.user_id, address)
        return Actor("api_key", principal.key_prefix or principal.key_id, address)
    return Actor.anonymous(address)
