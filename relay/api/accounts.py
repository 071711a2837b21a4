"""`/v1/auth`: register, log in, refresh (rotating), log out, change the password, and who am I.

Logins, refresh-token use and password changes are throttled (relay/db/throttle.py):
past the limit they answer 429 with Retry-After, the same for every email.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from msgspec import Meta
from psycopg import AsyncConnection

from relay.api.auth import client_address, jwt_secret
from relay.api.errors import Problem, problem_responses
from relay.db import throttle
from relay.db.accounts import (
    Account,
    PasswordChangedMeanwhile,
    RefreshReused,
    WrongPassword,
    change_password,
    count_failed_login,
    issue_refresh_token,
    log_in,
    register,
    revoke_refresh_family,
    rotate_refresh_token,
)
from relay.db.tenant_db import TenantDb
from relay.tokens import issue_access_token

Email = Annotated[str, Meta(min_length=3, max_length=320, pattern=r"^[^@ \t\r\n]+@[^@ \t\r\n]+\.[^@ \t\r\n]+$")]
Password = Annotated[str, Meta(min_length=10, max_length=256, description="At least 10 characters.")]
RefreshToken = Annotated[str, Meta(min_length=1, max_length=512)]


class Registration(msgspec.Struct, forbid_unknown_fields=True):
    """A new account: it gets a tenant of its own."""

    email: Email
    password: Password
    tenant_name: Annotated[str, Meta(min_length=1, max_length=200)] | None = None


class Login(msgspec.Struct, forbid_unknown_fields=True):
    """Email and password."""

    email: Annotated[str, Meta(max_length=320)]
    password: Annotated[str, Meta(max_length=256)]


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    """The current password (checked, and throttled like a login) and the new one."""

    current_password: Annotated[str, Meta(max_length=256)]
    new_password: Password


class RefreshRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A refresh token to spend (it is replaced by the one in the answer)."""

    refresh_token: RefreshToken


class Tokens(msgspec.Struct):
    """An access token (short-lived JWT) and the refresh token that renews it."""

    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    tenant_id: str
    user_id: str


class UserOut(msgspec.Struct):
    id: str
    email: str


class KeyOut(msgspec.Struct):
    id: str


class Me(msgspec.Struct):
    """Who the credentials speak for."""

    tenant_id: str
    tenant_name: str
    user: UserOut | None
    api_key: KeyOut | None


_NO_AUTH: list[dict[str, list[str]]] = []


async def _tokens(
    request: Request, conn: AsyncConnection, account: Account, refresh_token: str | None = None,
    issued_at: float | None = None,
) -> Tokens:
    settings = request.app.state.settings
    refresh = refresh_token or await issue_refresh_token(conn, account, settings.refresh_token_ttl_seconds)
    return Tokens(
        access_token=issue_access_token(
            await jwt_secret(request), account.user_id, account.tenant_id, settings.access_token_ttl_seconds,
            issued_at=issued_at,
        ),
        refresh_token=refresh,
        token_type="bearer",
        expires_in=int(settings.access_token_ttl_seconds),
        tenant_id=account.tenant_id,
        user_id=account.user_id,
    )


def too_many_attempts(blocked: throttle.Throttled) -> Problem:
    """The 429 of a blocked login: the same words for every email, and when to try again."""
    return Problem(
        429,
        f"Too many failed sign-in attempts; try again in {throttle.describe_wait(blocked.retry_after)}.",
        headers={"Retry-After": str(blocked.retry_after)},
    )


class AccountController(Controller):
    """Accounts and sessions."""

    path = "/v1/auth"
    tags = ["auth"]

    @post("/register", operation_id="register", status_code=201, security=_NO_AUTH,
          responses=problem_responses(400, 403, 409))
    async def register(
        self, request: Request, conn: NamedDependency[AsyncConnection], data: JSONBody[Registration]
    ) -> Tokens:
        """Create an account and its tenant; answers with tokens. 403 when sign-up is turned off."""
        if not request.app.state.settings.signup_enabled:
            raise Problem(403, "Sign-up is turned off on this Relay; ask its operator for an API key.")
        email = data.email.strip().lower()
        account = await register(conn, email, data.password, data.tenant_name or email,
                                 address=client_address(request), via="api")
        if account is None:
            raise Problem(409, "An account with this email already exists.", field="$.email")
        return await _tokens(request, conn, account)

    @post("/login", operation_id="login", status_code=200, security=_NO_AUTH,
          responses=problem_responses(400, 401, 429))
    async def login(self, request: Request, conn: NamedDependency[AsyncConnection], data: JSONBody[Login]) -> Tokens:
        """Exchange email and password for tokens; 429 with Retry-After after too many failures."""
        limits = throttle.Limits.of(request.app.state.settings)
        try:
            async with conn.transaction():  # the audit row of a success commits with its refresh token
                account = await log_in(conn, data.email.strip().lower(), data.password, limits=limits,
                                       address=client_address(request), via="api")
                tokens = await _tokens(request, conn, account) if account else None
        except throttle.Throttled as blocked:
            raise too_many_attempts(blocked) from None
        if tokens is None:
            raise Problem(401, "Wrong email or password.")
        return tokens

    @post("/refresh", operation_id="refresh", status_code=200, security=_NO_AUTH,
          responses=problem_responses(400, 401, 429))
    async def refresh(
        self, request: Request, conn: NamedDependency[AsyncConnection], data: JSONBody[RefreshRequest]
    ) -> Tokens:
        """Spend a refresh token for a new access token and a new refresh token (the old one stops working).

        Refused refresh tokens count against the client address, as failed logins do.
        """
        settings = request.app.state.settings
        address = client_address(request)
        names = throttle.subjects(None, address)
        try:
            await throttle.check(conn, names)
        except throttle.Throttled as blocked:
            raise too_many_attempts(blocked) from None
        try:
            rotated = await rotate_refresh_token(conn, data.refresh_token, settings.refresh_token_ttl_seconds, address)
            detail = "The refresh token is not valid, has expired or was revoked."
        except RefreshReused:
            rotated, detail = None, "This refresh token was already used; every session of that login is now revoked."
        if rotated is None:
            async with conn.transaction():
                await count_failed_login(conn, throttle.Limits.of(settings), names, email=None, user=None,
                                         address=address, via="refresh", audit_failure=False)
            raise Problem(401, detail)
        account, next_token = rotated
        return await _tokens(request, conn, account, next_token)

    @post("/logout", operation_id="logout", status_code=204, security=_NO_AUTH, responses=problem_responses(400, 401))
    async def logout(
        self, request: Request, conn: NamedDependency[AsyncConnection], data: JSONBody[RefreshRequest]
    ) -> None:
        """Revoke a refresh token and every token of the same login."""
        if not await revoke_refresh_family(conn, data.refresh_token, client_address(request)):
            raise Problem(401, "The refresh token is not valid.")

    @post("/password", operation_id="change_password", status_code=200,
          responses=problem_responses(400, 401, 403, 409, 422, 429))
    async def set_password(
        self, request: Request, db: NamedDependency[TenantDb], data: JSONBody[PasswordChange]
    ) -> Tokens:
        """Change the signed-in user's password; every other session ends; answers the tokens of the one that goes on.

        Every refresh token and dashboard session of the user is revoked, and access tokens
        issued before the change are refused on every API process. The answer carries new
        tokens for the caller (as Firebase's password update does), so the session that made
        the change continues. Needs a user's access token: API keys have no password (403).
        A wrong current password is 403 and counts as a failed login.
        """
        principal = db.principal
        if principal.user_id is None:
            raise Problem(403, "API keys have no password: change it with an access token of the user "
                               "(POST /v1/auth/login).")
        if data.new_password == data.current_password:
            raise Problem(422, "The new password must differ from the current one.", field="$.new_password")
        settings = request.app.state.settings
        conn = await db.connection()
        account = Account(principal.user_id, principal.tenant_id, "")
        try:
            changed = await change_password(
                conn, account, data.current_password, data.new_password, limits=throttle.Limits.of(settings),
                address=client_address(request), refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
            )
        except throttle.Throttled as blocked:
            raise too_many_attempts(blocked) from None
        except WrongPassword:
            raise Problem(403, "The current password is not right.", field="$.current_password") from None
        except PasswordChangedMeanwhile:
            raise Problem(409, "The password was changed by another request meanwhile; sign in again.") from None
        return await _tokens(request, conn, changed.account, changed.refresh_token,
                             issued_at=changed.sessions_valid_after)

    @get("/me", operation_id="me", responses=problem_responses(401))
    async def me(self, db: NamedDependency[TenantDb]) -> Me:
        """Say which tenant (and user or API key) the credentials belong to."""
        principal = db.principal
        tenant = await db.fetch_one("tenant_name")
        user: dict[str, Any] | None = None
        if principal.user_id:
            user = await db.fetch_one("get_user", id=principal.user_id)
            if user is None:
                raise Problem(401, "The account no longer exists.")
        return Me(
            tenant_id=principal.tenant_id,
            tenant_name=tenant["name"] if tenant else "",
            user=UserOut(user["id"], user["email"]) if user else None,
            api_key=KeyOut(principal.key_id) if principal.key_id else None,
        )
