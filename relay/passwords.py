"""Password hashing with argon2id (slow on purpose), and a constant-time miss for unknown accounts."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
# Verified against when the account does not exist, so "no such user" takes as long as "wrong password".
_DUMMY_HASH = _hasher.hash("relay-dummy-password")


def hash_password(password: str) -> str:
    """Return the argon2id hash to store."""
    return _hasher.hash(password)


def check_password(stored_hash: str | None, password: str) -> bool:
    """Tell whether `password` matches; with no stored hash, spend the same time and say no."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
