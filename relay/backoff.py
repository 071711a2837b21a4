"""Retry schedule: parse it, and turn an attempt number into the delay before the next one."""

from __future__ import annotations

import random
import re

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_STEP = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")

JITTER = 0.2


def parse_schedule(text: str) -> tuple[float, ...]:
    """Parse "5s,5m,30m" into delays in seconds; the delays follow the first attempt."""
    steps = []
    for part in text.split(","):
        match = _STEP.match(part)
        if not match:
            raise ValueError(f"cannot read {part.strip()!r}: use numbers with ms, s, m, h or d")
        steps.append(float(match.group(1)) * _UNITS[match.group(2) or "s"])
    if not steps:
        raise ValueError("the schedule is empty")
    return tuple(steps)


def parse_duration(text: str) -> float:
    """Parse one duration ("90s", "5d", "250ms", bare seconds) into seconds."""
    (seconds,) = parse_schedule(text) if "," not in text else (None,)
    if seconds is None:
        raise ValueError(f"{text!r} is a list; give one duration")
    return seconds


def retry_delay(schedule: tuple[float, ...], attempts_made: int, rng: random.Random | None = None) -> float | None:
    """Return seconds until the next attempt after `attempts_made` attempts, or None when out of retries.

    Each step gets ±20% jitter so that endpoints failing together do not retry in lockstep.
    """
    if attempts_made < 1 or attempts_made > len(schedule):
        return None
    base = schedule[attempts_made - 1]
    spread = (rng or random).uniform(-JITTER, JITTER)
    return max(0.0, base * (1 + spread))
