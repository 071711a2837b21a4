"""Opaque, prefixed, time-ordered ids (`evt_…`, `ep_…`) that sort by creation time."""

from __future__ import annotations

import secrets
import threading
import time

_lock = threading.Lock()
_last = (0, 0)  # (milliseconds, random part) of the last id made by this process


def new_id(prefix: str) -> str:
    """Return `prefix_` + 12 hex digits of milliseconds + 20 hex digits, random but monotonic per process.

    The same shape as `relay.new_id()` in SQL, so ids made by either sort together. Ids made
    by one process sort in the order they were made, also within one millisecond (the random
    part of the next one is the previous one's plus one, as monotonic ULIDs do): two audit rows
    written in one transaction list in the order they happened.
    """
    global _last
    with _lock:
        millis = int(time.time() * 1000)
        last_millis, last_random = _last
        if millis <= last_millis and last_random < (1 << 80) - 1:
            millis, random_part = last_millis, last_random + 1
        else:
            random_part = secrets.randbits(79)  # leaves room to count up within the millisecond
        _last = (millis, random_part)
    return f"{prefix}_{millis:012x}{random_part:020x}"
