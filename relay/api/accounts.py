"""`/v1/auth`: register, log in, refresh (rotating), log out, and who am I."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from msgspec import Meta
from psycopg import AsyncConnection

from relay.api.auth import jwt_secret
from relay.api.errors import Problem, problem_responses
from relay.db.accounts import (
    Account,
    RefreshReused,
    authenticate_password,
    issue_refresh_token,
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
    request: Request, conn: AsyncConnection, account: Account, refresh_token: str | None = None
) -> Tokens:
    settings = request.app.state.settings
    refresh = refresh_token or await issue_refresh_token(conn, account, settings.refresh_token_ttl_seconds)
    return Tokens(
        access_token=issue_access_token(
            await jwt_secret(request), account.user_id, account.tenant_id, settings.access_token_ttl_seconds
        ),
        refresh_token=refresh,
        token_type="bearer",
        expires_in=int(settings.access_token_ttl_seconds),
        tenant_id=account.tenant_id,
        user_id=account.user_id,
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
        account = await register(conn, email, data.password, data.tenant_name or email)
        if account is None:
            raise Problem(409, "An account with this email already exists.", field="$.email")
        return await _tokens(request, conn, account)

    @post("/login", operation_id="login", status_code=200, security=_NO_AUTH, responses=problem_responses(400, 401))
    async def login(self, request: Request, conn: NamedDependency[AsyncConnection], data: JSONBody[Login]) -> Tokens:
        """Exchange email and password for tokens."""
        account = await authenticate_password(conn, data.email.strip().lower(), data.password)
        if account is None:
            raise Problem(401, "Wrong email or password.")
        return await _tokens(request, conn, account)

    @post("/refresh", operation_id="refresh", status_code=200, security=_NO_AUTH, responses=problem_responses(400, 401))
    async def refresh(
        self, request: Request, conn: NamedDependency[AsyncConnection], data: JSONBody[RefreshRequest]
    ) -> Tokens:
        """Spend a refresh token for a new access token and a new refresh token (the old one stops working)."""
        ttl = request.app.state.settings.refresh_token_ttl_seconds
        try:
            rotated = await rotate_refresh_token(conn, data.refresh_token, ttl)
        except RefreshReused:
            raise Problem(
                401, "This refresh token was already used; every session of that login is now revoked."
            ) from None
        if rotated is None:
            raise Problem(401, "The refresh token is not valid, has expired or was revoked.")
        account, next_token = rotated
        return await _tokens(request, conn, account, next_token)

    @post("/logout", operation_id="logout", status_code=204, security=_NO_AUTH, responses=problem_responses(400, 401))
    async def logout(self, conn: NamedDependency[AsyncConnection], data: JSONBody[RefreshRequest]) -> None:
        """Revoke a refresh token and every token of the same login."""
        if not await revoke_refresh_family(conn, data.refresh_token):
            raise Problem(401, "The refresh token is not valid.")

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
