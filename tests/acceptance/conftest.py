"""Real `relay api` and `relay worker` processes on the test database, for end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import RelayProcess, free_port, relay_env, wait_for_http

# Short retries so that failure paths finish within a test.
TEST_SCHEDULE = "1s,1s"


@pytest.fixture(scope="session")
def relay_stack(conninfo: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start one API and one worker process; yield the API's base URL."""
    logs: Path = tmp_path_factory.mktemp("relay-logs")
    port = free_port()
    env = relay_env(conninfo, RELAY_RETRY_SCHEDULE=TEST_SCHEDULE, RELAY_POLL_INTERVAL="0.2")
    api = RelayProcess(["api", "--host", "127.0.0.1", "--port", str(port)], env, logs / "api.log")
    worker = RelayProcess(["worker", "--concurrency", "64"], env, logs / "worker.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/health", api)
        yield base
    finally:
        worker_code = worker.stop()
        api.stop()
        assert worker_code == 0, f"worker did not stop cleanly:\n{worker.output()[-3000:]}"


@pytest.fixture
def client(relay_stack: str, auth: dict[str, str]) -> Iterator[httpx.Client]:
    """An HTTP client for the running API, authenticated as a fresh tenant."""
    with httpx.Client(base_url=relay_stack, headers=auth, timeout=30) as http:
        yield http
