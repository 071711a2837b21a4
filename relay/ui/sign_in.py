"""Signing in and out of the dashboard, and signing up when RELAY_SIGNUP_ENABLED.

Sign-in is throttled with the API's login (relay/db/throttle.py: the same counts, shared):
past the limit the page says when to try again, with status 429 and Retry-After.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from psycopg import AsyncConnection

from relay.api.auth import client_address
from relay.db import throttle
from relay.db.accounts import log_in, register
from relay.ui.pages import page, redirect, safe_next
from relay.ui.session import COOKIE, COOKIE_PATH, end_session, sign, start_session, unsign

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
MIN_PASSWORD = 10  # as POST /v1/auth/register


def session_cookie(request: Request[Any, Any, Any], value: str, max_age: int) -> Cookie:
    """The session cookie: signed, HttpOnly, SameSite=Lax, only sent to /ui; Secure when Relay is served over HTTPS."""
    public_url = request.app.state.settings.public_url or ""
    return Cookie(key=COOKIE, value=value, path=COOKIE_PATH, httponly=True, samesite="lax", max_age=max_age,
                  secure=public_url.startswith("https://") or request.url.scheme == "https")


class SignInController(Controller):
    """The sign-in, sign-out and sign-up pages."""

    path = "/ui"
    include_in_schema = False

    @get("/login")
    async def login_form(self, request: Request, next: str | None = None) -> Template:
        """Show the sign-in form."""
        return page(request, "login.html", next=safe_next(next),
                    signup=request.app.state.settings.signup_enabled, error=None, email="")

    @post("/login")
    async def login(
        self, request: Request, conn: NamedDependency[AsyncConnection], data: Annotated[dict[str, str], Form]
    ) -> Template | Redirect:
        """Check the email and password; start a session; go where the visitor was heading."""
        email = (data.get("email") or "").strip().lower()[:320]
        password = (data.get("password") or "")[:256]
        target = safe_next(data.get("next"))
        settings = request.app.state.settings

        def again(error: str, status: int) -> Template:
            return page(request, "login.html", next=target, signup=settings.signup_enabled, error=error, email=email,
                        status_code=status)

        try:
            async with conn.transaction():  # a success's audit row commits with its session
                account = await log_in(conn, email, password, limits=throttle.Limits.of(settings),
                                       address=client_address(request), via="dashboard")
                response = await _signed_in(request, conn, account, target) if account else None
        except throttle.Throttled as blocked:
            refused = again(f"Too many failed sign-in attempts. Try again in "
                            f"{throttle.describe_wait(blocked.retry_after)}.", 429)
            refused.headers["Retry-After"] = str(blocked.retry_after)
            return refused
        return again("Wrong email or password.", 401) if response is None else response

    @post("/logout")
    async def logout(self, request: Request, conn: NamedDependency[AsyncConnection]) -> Redirect:
        """End the session everywhere (the cookie alone can no longer open it) and go to the sign-in page."""
        cookie = request.cookies.get(COOKIE)
        token = unsign(cookie, request.app.state.dashboard_key) if cookie else None
        if token:
            await end_session(conn, token, client_address(request))
        response = redirect("/ui/login", "You are signed out.")
        response.cookies.append(session_cookie(request, "", 0))
        return response

    @get("/signup")
    async def signup_form(self, request: Request) -> Template | Redirect:
        """Show the sign-up form (when sign-up is enabled)."""
        if not request.app.state.settings.signup_enabled:
            return redirect("/ui/login", "Sign-up is turned off here; ask your Relay operator for an account.")
        return page(request, "signup.html", error=None, email="", tenant_name="")

    @post("/signup")
    async def signup(
        self, request: Request, conn: NamedDependency[AsyncConnection], data: Annotated[dict[str, str], Form]
    ) -> Template | Redirect:
        """Create a tenant and its first user, and sign them in."""
        if not request.app.state.settings.signup_enabled:
            return redirect("/ui/login", "Sign-up is turned off here; ask your Relay operator for an account.")
        email = (data.get("email") or "").strip().lower()
        password = data.get("password") or ""
        tenant_name = (data.get("tenant_name") or "").strip() or email

        def again(error: str, status: int) -> Template:
            return page(request, "signup.html", error=error, email=email[:320], tenant_name=tenant_name[:200],
                        status_code=status)

        if not (3 <= len(email) <= 320 and "@" in email.strip("@")):
            return again("Enter a valid email address.", 422)
        if not (MIN_PASSWORD <= len(password) <= 256):
            return again(f"Choose a password of {MIN_PASSWORD} to 256 characters.", 422)
        if len(tenant_name) > 200:
            return again("The organisation name can be at most 200 characters.", 422)
        if password != data.get("password_again"):
            return again("The two passwords are not the same.", 422)
        account = await register(conn, email, password, tenant_name, address=client_address(request),
                                 via="dashboard")
        if account is None:
            return again("An account with this email already exists; sign in instead.", 409)
        return await _signed_in(request, conn, account, "/ui")


async def _signed_in(request: Request, conn: AsyncConnection, account: Any, target: str) -> Redirect:
    ttl = request.app.state.settings.session_ttl_seconds
    token = await start_session(conn, account, ttl)
    key = request.app.state.dashboard_key
    response = redirect(target)
    response.cookies.append(session_cookie(request, sign(token, key), int(ttl)))
    return response


@get("/", include_in_schema=False)
async def root() -> Redirect:
    """The dashboard is the front page."""
    return Redirect("/ui", status_code=302)
