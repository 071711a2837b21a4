"""Real `relay api` and `relay worker` processes on the test database, one set per test module.

A module sets STACK_ENV (extra environment, e.g. a short retry schedule), or a function
stack_env(request) returning it, and WORKERS (how many worker processes) to get the stack
its tests need.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.support import RelayProcess, free_port, relay_env, wait_for_http

# Short retries so that failure paths finish within a test.
DEFAULT_ENV = {"RELAY_RETRY_SCHEDULE": "1s,1s", "RELAY_POLL_INTERVAL": "0.2"}


@dataclass
class Stack:
    """One API process and its workers."""

    base_url: str
    env: dict[str, str]
    logs: Path
    api: RelayProcess
    workers: list[RelayProcess] = field(default_factory=list)

    def start_worker(self, name: str | None = None) -> RelayProcess:
        name = name or f"worker-{len(self.workers)}"
        worker = RelayProcess(["worker", "--concurrency", "64"], self.env, self.logs / f"{name}.log")
        self.workers.append(worker)
        return worker


@pytest.fixture(scope="module")
def stack(conninfo: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start the module's API and workers; stop them (cleanly) after its last test."""
    logs = tmp_path_factory.mktemp("relay-logs")
    extra = dict(getattr(request.module, "STACK_ENV", {}))
    if hasattr(request.module, "stack_env"):  # a module that needs other fixtures (a receiver's port) first
        extra.update(request.module.stack_env(request))
    env = relay_env(conninfo, **{**DEFAULT_ENV, **extra})
    # Each module starts with no failed logins counted: every test connects from 127.0.0.1, and
    # one module's guessing (the fuzzer's) must not get the next module's sign-ins throttled.
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DELETE FROM relay.login_throttle")
    port = free_port()
    api = RelayProcess(["api", "--host", "127.0.0.1", "--port", str(port)], env, logs / "api.log")
    running = Stack(f"http://127.0.0.1:{port}", env, logs, api)
    for _ in range(getattr(request.module, "WORKERS", 1)):
        running.start_worker()
    try:
        wait_for_http(f"{running.base_url}/health", api)
        yield running
    finally:
        codes = {w.log_path.name: w.stop() for w in running.workers}
        api.stop()
        unclean = {name: code for name, code in codes.items() if code not in (0, -9)}
        assert not unclean, f"workers did not stop cleanly: {unclean}; logs in {logs}"


@pytest.fixture(scope="module")
def relay_stack(stack: Stack) -> str:
    """The API's base URL."""
    return stack.base_url


@pytest.fixture
def client(relay_stack: str, auth: dict[str, str]) -> Iterator[httpx.Client]:
    """An HTTP client for the running API, authenticated as a fresh tenant."""
    with httpx.Client(base_url=relay_stack, headers=auth, timeout=30) as http:
        yield http
