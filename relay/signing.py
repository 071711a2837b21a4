"""Standard Webhooks signing: `whsec_` secrets and `v1,<base64 HMAC-SHA256>` signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def new_secret(size: int = 24) -> str:
    """Return a fresh endpoint secret: `whsec_` + base64 of `size` random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(size)).decode()


def secret_key(secret: str) -> bytes:
    """Return the HMAC key bytes inside a `whsec_` secret."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return one `v1,<signature>` over `id.timestamp.body`."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signature_header(keys: list[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the `webhook-signature` value: one signature per key, space-separated (for rotation)."""
    return " ".join(sign(key, msg_id, timestamp, body) for key in keys)


def verify(secret: str, msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """Tell whether any signature in `header` was made with `secret` (constant-time compare)."""
    expected = sign(secret_key(secret), msg_id, timestamp, body).encode()
    return any(hmac.compare_digest(expected, candidate.encode()) for candidate in header.split())


def legacy_signature(secret: str, body: bytes) -> str:
    """Return the `x-relay-signature` value: `sha256=` + hex HMAC-SHA256 of the body.

    The key is the whole secret string as given (`whsec_…`), as receivers written for
    body-only HMAC schemes use the secret they were handed.
    """
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
