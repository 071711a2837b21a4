"""Access tokens (short-lived JWTs) and refresh tokens (random, stored hashed, rotating)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
REFRESH_PREFIX = "rrt_"


@dataclass(frozen=True)
class AccessClaims:
    """Who an access token speaks for."""

    user_id: str
    tenant_id: str
    issued_at: float  # seconds since the epoch, to the microsecond: a password change refuses older tokens


def issue_access_token(
    secret: bytes, user_id: str, tenant_id: str, ttl_seconds: float, issued_at: float | None = None
) -> str:
    """Return a signed access token valid for `ttl_seconds`.

    `iat` keeps the fraction of a second (RFC 7519 allows it): a token issued just after a
    password change must not look older than the change, and one issued just before must not
    look newer. `issued_at` (a time not before now) lets the caller make sure of the first.
    """
    now = time.time()
    iat = max(now, issued_at) if issued_at is not None else now
    claims = {"sub": user_id, "tid": tenant_id, "typ": "access", "iat": iat, "exp": int(now + ttl_seconds)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_access_token(secret: bytes, token: str) -> AccessClaims | None:
    """Return the claims of a valid, unexpired access token, or None."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "iat", "sub", "tid", "typ"]}
        )
    except jwt.PyJWTError:
        return None
    if (
        claims.get("typ") != "access"
        or not isinstance(claims.get("sub"), str)
        or not isinstance(claims.get("tid"), str)
        or not isinstance(claims.get("iat"), int | float)
    ):
        return None
    return AccessClaims(user_id=claims["sub"], tenant_id=claims["tid"], issued_at=float(claims["iat"]))


def looks_like_jwt(credential: str) -> bool:
    """Tell a JWT (three base64url parts) from an API key."""
    return credential.count(".") == 2 and credential.startswith("eyJ")


def new_refresh_token() -> str:
    """Return a fresh refresh token (shown to the client once, stored hashed)."""
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    """Return the stored form of a refresh token."""
    return hashlib.sha256(token.encode()).digest()
