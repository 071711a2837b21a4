"""Who is looking: the dashboard's pages need an open session, except the sign-in pages and the assets."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request
from litestar.config.csrf import CSRFConfig
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.response import Redirect
from litestar.types import ASGIApp, Receive, Scope, Send
from psycopg import Error as DatabaseError

from relay.db.accounts import signing_key
from relay.ui.session import COOKIE, SIGNING_KEY_NAME, SessionUser, session_user, unsign

OPEN_PATHS = frozenset({"/ui/login", "/ui/signup"})
SESSION_USER = "relay.session_user"  # where the guard leaves the SessionUser in the ASGI scope's state
FRAGMENT_HEADER = "x-relay-fragment"  # set by relay.js on the requests that refresh a part of a page


async def dashboard_key(request: Request[Any, Any, Any], csrf: CSRFConfig) -> bytes:
    """Return the key that signs session cookies and CSRF tokens, loading it once from the database.

    It is kept in the database so that every API process (`relay api --workers N`) signs
    and checks with the same key, and a restart does not log anybody out.
    """
    state = request.app.state
    key: bytes | None = getattr(state, "dashboard_key", None)
    if key is None:
        async with state.pool.connection() as conn:
            key = await signing_key(conn, SIGNING_KEY_NAME)
        state.dashboard_key = key
        csrf.secret = key.hex()  # Litestar's CSRF middleware reads it on every request
    return key


class DashboardGuard(ASGIMiddleware):
    """Send visitors without a session to the sign-in page; give pages the signed-in user."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, csrf: CSRFConfig) -> None:
        self.csrf = csrf

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Run the page for a signed-in user; redirect (or 401 for a page fragment) otherwise."""
        request: Request[Any, Any, Any] = Request(scope, receive)
        try:
            key = await dashboard_key(request, self.csrf)
            user = await self._user(request, key)
        except DatabaseError:
            await unavailable(request)(scope, receive, send)
            return
        if user is None and scope["path"] not in OPEN_PATHS:
            await sign_in_first(request)(scope, receive, send)
            return
        scope.setdefault("state", {})[SESSION_USER] = user
        await next_app(scope, receive, send)

    async def _user(self, request: Request[Any, Any, Any], key: bytes) -> SessionUser | None:
        cookie = request.cookies.get(COOKIE)
        token = unsign(cookie, key) if cookie else None
        if token is None:
            return None
        async with request.app.state.pool.connection() as conn:
            return await session_user(conn, token)


def sign_in_first(request: Request[Any, Any, Any]) -> ASGIApp:
    """Answer a visitor without a session: to the sign-in page, then back here."""
    from litestar import Response

    if request.headers.get(FRAGMENT_HEADER):
        return Response(b"", status_code=401).to_asgi_response(None, request)  # relay.js reloads the page
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"/ui/login?next={quote(target, safe='/')}", status_code=303).to_asgi_response(None, request)


def unavailable(request: Request[Any, Any, Any]) -> ASGIApp:
    from litestar import Response
    from litestar.enums import MediaType

    body = ("<!doctype html><title>Relay is unavailable</title><h1>The database is not answering</h1>"
            "<p>Relay cannot reach PostgreSQL right now; this page will work again when it does.</p>")
    return Response(body, status_code=503, media_type=MediaType.HTML, headers={"Retry-After": "5"}).to_asgi_response(
        None, request
    )


def session_of(request: Request[Any, Any, Any]) -> SessionUser | None:
    """Return the signed-in user the guard found for this request (None on the sign-in pages)."""
    return request.scope.get("state", {}).get(SESSION_USER)
