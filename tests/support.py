"""Shared test helpers: polling with a deadline, free ports, running relay processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

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


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def relay_env(conninfo: str, **extra: str) -> dict[str, str]:
    """Return an environment for a relay subprocess using `conninfo`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RELAY_")}
    env.update({"DATABASE_URL": conninfo, "RELAY_LOG_FORMAT": "json", "RELAY_ALLOWED_NETWORKS": "127.0.0.0/8", **extra})
    return env


class RelayProcess:
    """A `relay …` subprocess whose output goes to a log file the test can read."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "relay", *args], env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO
        )

    def output(self) -> str:
        """Return everything the process has printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        """Stop the process with SIGTERM (SIGKILL after `timeout`) and return its exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


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
