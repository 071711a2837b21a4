"""Shared test helpers: polling with a deadline, free ports, running relay processes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

from relay.bench.processes import ChildProcess, relay_command
from relay.bench.processes import free_port as free_port  # re-exported: the tests take it from here

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent


def wait_until(check: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")
        time.sleep(interval)  # polling interval, not synchronisation: the deadline decides
        last = check()
    return last


def relay_env(conninfo: str, **extra: str) -> dict[str, str]:
    """Return an environment for a relay subprocess using `conninfo`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RELAY_")}
    env.update({"DATABASE_URL": conninfo, "RELAY_LOG_FORMAT": "json", "RELAY_ALLOWED_NETWORKS": "127.0.0.0/8", **extra})
    return env


class RelayProcess(ChildProcess):
    """A `relay …` subprocess (run from the repository) whose output goes to a log file the test can read."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        super().__init__(relay_command(*args), env, log_path, cwd=REPO)


def wait_for_http(url: str, proc: RelayProcess, timeout: float = 30) -> None:
    """Wait until `url` answers 200, failing early if the process died."""

    def ready() -> bool:
        if proc.proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.proc.returncode}:\n{proc.output()}")
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout=timeout, what=url)
