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


def issue_access_token(secret: bytes, user_id: str, tenant_id: str, ttl_seconds: float) -> str:
    """Return a signed access token valid for `ttl_seconds`."""
    now = int(time.time())
    claims = {"sub": user_id, "tid": tenant_id, "typ": "access", "iat": now, "exp": now + int(ttl_seconds)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_access_token(secret: bytes, token: str) -> AccessClaims | None:
    """Return the claims of a valid, unexpired access token, or None."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "tid", "typ"]})
    except jwt.PyJWTError:
        return None
    if (
        claims.get("typ") != "access"
        or not isinstance(claims.get("sub"), str)
        or not isinstance(claims.get("tid"), str)
    ):
        return None
    return AccessClaims(user_id=claims["sub"], tenant_id=claims["tid"])


def looks_like_jwt(credential: str) -> bool:
    """Tell a JWT (three base64url parts) from an API key."""
    return credential.count(".") == 2 and credential.startswith("eyJ")


def new_refresh_token() -> str:
    """Return a fresh refresh token (shown to the client once, stored hashed)."""
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    """Return the stored form of a refresh token."""
    return hashlib.sha256(token.encode()).digest()
