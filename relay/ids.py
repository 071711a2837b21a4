"""Opaque, prefixed, time-ordered ids (`evt_…`, `ep_…`) that sort by creation time."""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    """Return `prefix_` + 12 hex digits of milliseconds + 20 random hex digits.

    The same shape as `relay.new_id()` in SQL, so ids made by either sort together.
    """
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(10)}"

